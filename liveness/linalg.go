package liveness

import "math"

// solve solves A·x = b for a small dense system by Gaussian elimination
// with partial pivoting. A and b are overwritten. ok is false when A is
// singular to working precision or not finite.
func solve(A [][]float64, b []float64) (x []float64, ok bool) {
	n := len(b)
	var scale float64
	for _, row := range A {
		for _, v := range row {
			scale = math.Max(scale, math.Abs(v))
		}
	}
	if !(scale > 0) || !finite(scale) {
		return nil, false
	}
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(A[r][c]) > math.Abs(A[p][c]) {
				p = r
			}
		}
		if !(math.Abs(A[p][c]) > 1e-13*scale) {
			return nil, false
		}
		A[c], A[p] = A[p], A[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < n; r++ {
			f := A[r][c] / A[c][c]
			if f == 0 {
				continue
			}
			for k := c; k < n; k++ {
				A[r][k] -= f * A[c][k]
			}
			b[r] -= f * b[c]
		}
	}
	x = make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < n; k++ {
			s -= A[r][k] * x[k]
		}
		x[r] = s / A[r][r]
		if !finite(x[r]) {
			return nil, false
		}
	}
	return x, true
}

// invert returns A⁻¹ for a small dense matrix (A is overwritten).
func invert(A [][]float64) ([][]float64, bool) {
	n := len(A)
	inv := make([][]float64, n)
	for i := range inv {
		inv[i] = make([]float64, n)
	}
	for c := 0; c < n; c++ {
		cp := make([][]float64, n)
		for r := range cp {
			cp[r] = append([]float64(nil), A[r]...)
		}
		e := make([]float64, n)
		e[c] = 1
		x, ok := solve(cp, e)
		if !ok {
			return nil, false
		}
		for r := 0; r < n; r++ {
			inv[r][c] = x[r]
		}
	}
	return inv, true
}
