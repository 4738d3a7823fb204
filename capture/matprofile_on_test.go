//go:build matprofile

package capture

import (
	"io"

	"gocv.io/x/gocv"
)

const matProfileEnabled = true

func matCount() int                     { return gocv.MatProfile.Count() }
func writeMatProfile(w io.Writer) error { return gocv.MatProfile.WriteTo(w, 1) }
