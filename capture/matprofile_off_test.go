//go:build !matprofile

package capture

import "io"

const matProfileEnabled = false

func matCount() int                   { return 0 }
func writeMatProfile(io.Writer) error { return nil }
