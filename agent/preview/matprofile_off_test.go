//go:build !matprofile

package preview

func matCount() int { return 0 }
