package geom

import (
	"fmt"
	"math"
)

// Affine is a 2-D affine map: dst = A[:, :2]·src + A[:, 2], the same layout
// as OpenCV's 2×3 warp matrices.
type Affine [2][3]float64

// Apply maps p.
func (a Affine) Apply(p Point) Point {
	return Point{
		a[0][0]*p.X + a[0][1]*p.Y + a[0][2],
		a[1][0]*p.X + a[1][1]*p.Y + a[1][2],
	}
}

// Invert returns the inverse map, or ErrDegenerate (wrapped) when a is
// singular or not finite.
func (a Affine) Invert() (Affine, error) {
	det := a[0][0]*a[1][1] - a[0][1]*a[1][0]
	scale := math.Max(math.Max(math.Abs(a[0][0]), math.Abs(a[0][1])), math.Max(math.Abs(a[1][0]), math.Abs(a[1][1])))
	if !finite(det) || !(math.Abs(det) > 1e-14*scale*scale) || !finite(a[0][2]) || !finite(a[1][2]) {
		return Affine{}, fmt.Errorf("invert affine %v: %w", a, ErrDegenerate)
	}
	id := 1 / det
	i00, i01 := a[1][1]*id, -a[0][1]*id
	i10, i11 := -a[1][0]*id, a[0][0]*id
	return Affine{
		{i00, i01, -(i00*a[0][2] + i01*a[1][2])},
		{i10, i11, -(i10*a[0][2] + i11*a[1][2])},
	}, nil
}

// SimilarityTransform returns the least-squares similarity (rotation,
// uniform scale, translation; no reflection) mapping src onto dst — the
// Umeyama (1991) estimate, which in 2-D has a closed form: with centred
// points treated as complex numbers, s·e^{iθ} = Σ conj(a)·b / Σ |a|².
// This is the transform used to align a face to the 5-point ArcFace
// template (and equals skimage's SimilarityTransform.estimate).
//
// It needs at least two distinct source points and equal lengths.
func SimilarityTransform(src, dst []Point) (Affine, error) {
	if len(src) != len(dst) {
		return Affine{}, fmt.Errorf("similarity transform: %d source vs %d destination points: %w", len(src), len(dst), ErrDegenerate)
	}
	n := len(src)
	if n < 2 {
		return Affine{}, fmt.Errorf("similarity transform: %d points: %w", n, ErrDegenerate)
	}
	var sx, sy, dx, dy float64
	for i := range src {
		if !finite(src[i].X) || !finite(src[i].Y) || !finite(dst[i].X) || !finite(dst[i].Y) {
			return Affine{}, fmt.Errorf("similarity transform: point %d not finite: %w", i, ErrDegenerate)
		}
		sx += src[i].X
		sy += src[i].Y
		dx += dst[i].X
		dy += dst[i].Y
	}
	fn := float64(n)
	sx, sy, dx, dy = sx/fn, sy/fn, dx/fn, dy/fn
	var re, im, norm float64
	for i := range src {
		ax, ay := src[i].X-sx, src[i].Y-sy
		bx, by := dst[i].X-dx, dst[i].Y-dy
		re += ax*bx + ay*by
		im += ax*by - ay*bx
		norm += ax*ax + ay*ay
	}
	if !(norm > 1e-12*(1+sx*sx+sy*sy)) {
		return Affine{}, fmt.Errorf("similarity transform: source points coincide: %w", ErrDegenerate)
	}
	c, s := re/norm, im/norm // scale·cos θ, scale·sin θ
	return Affine{
		{c, -s, dx - (c*sx - s*sy)},
		{s, c, dy - (s*sx + c*sy)},
	}, nil
}
