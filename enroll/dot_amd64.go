package enroll

import "golang.org/x/sys/cpu"

//go:noescape
func dotInt8AVX2(a, b *int8, n int) int32

// useAVX2 is fixed at start-up by the CPU; it is read-only afterwards.
var useAVX2 = cpu.X86.HasAVX2

// dotInt8 is the inner loop of identification.
func dotInt8(a, b []int8) int32 {
	b = b[:len(a)]
	if useAVX2 && len(a) >= 32 && len(a)%32 == 0 {
		return dotInt8AVX2(&a[0], &b[0], len(a))
	}
	return dotInt8Go(a, b)
}
