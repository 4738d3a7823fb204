//go:build matprofile

package preview

import "gocv.io/x/gocv"

func matCount() int { return gocv.MatProfile.Count() }
