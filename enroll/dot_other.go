//go:build !amd64

package enroll

// dotInt8 is the inner loop of identification.
func dotInt8(a, b []int8) int32 { return dotInt8Go(a, b[:len(a)]) }
