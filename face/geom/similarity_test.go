package geom

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// arcFace112 returns the standard 5-point ArcFace template for 112×112 crops.
func arcFace112() []Point {
	return []Point{
		{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366},
		{41.5493, 92.3655}, {70.7299, 92.2041},
	}
}

func TestSimilarityTransformRecovers(t *testing.T) {
	tests := []struct {
		name               string
		scale, angle       float64 // angle in degrees
		tx, ty, noise, tol float64
	}{
		{"identity", 1, 0, 0, 0, 0, 1e-9},
		{"scale+shift", 2.5, 0, 10, -4, 0, 1e-9},
		{"rotate 30", 0.7, 30, 100, 50, 0, 1e-9},
		{"rotate -170", 3, -170, -20, 7, 0, 1e-9},
		{"noisy", 1.3, 12, 5, 5, 0.5, 0.05},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range tests {
		s, c := math.Sincos(tc.angle * deg2rad)
		want := Affine{{tc.scale * c, -tc.scale * s, tc.tx}, {tc.scale * s, tc.scale * c, tc.ty}}
		src := make([]Point, 0, 40)
		for range 40 {
			src = append(src, Point{rng.Float64() * 200, rng.Float64() * 200})
		}
		dst := make([]Point, len(src))
		for i, p := range src {
			dst[i] = want.Apply(p)
			dst[i].X += rng.NormFloat64() * tc.noise
			dst[i].Y += rng.NormFloat64() * tc.noise
		}
		got, err := SimilarityTransform(src, dst)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for r := 0; r < 2; r++ {
			for k := 0; k < 2; k++ {
				if math.Abs(got[r][k]-want[r][k]) > tc.tol {
					t.Errorf("%s: got %v want %v", tc.name, got, want)
				}
			}
			if math.Abs(got[r][2]-want[r][2]) > tc.tol*200 {
				t.Errorf("%s: translation got %v want %v", tc.name, got, want)
			}
		}
	}
}

func TestSimilarityArcFace(t *testing.T) {
	// Landmarks of a face 3× larger, rotated by 10°, somewhere in a frame.
	s, c := math.Sincos(10 * deg2rad)
	fwd := Affine{{3 * c, -3 * s, 200}, {3 * s, 3 * c, 120}}
	tmpl := arcFace112()
	src := make([]Point, len(tmpl))
	for i, p := range tmpl {
		src[i] = fwd.Apply(p)
	}
	A, err := SimilarityTransform(src, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range src {
		if q := A.Apply(p); math.Hypot(q.X-tmpl[i].X, q.Y-tmpl[i].Y) > 1e-9 {
			t.Errorf("point %d maps to %v, want %v", i, q, tmpl[i])
		}
	}
	inv, err := A.Invert()
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range tmpl {
		if q := inv.Apply(p); math.Hypot(q.X-src[i].X, q.Y-src[i].Y) > 1e-9 {
			t.Errorf("inverse point %d maps to %v, want %v", i, q, src[i])
		}
	}
}

func TestSimilarityDegenerate(t *testing.T) {
	p := []Point{{1, 1}, {1, 1}, {1, 1}}
	tests := []struct {
		name     string
		src, dst []Point
	}{
		{"length mismatch", p, p[:2]},
		{"one point", p[:1], p[:1]},
		{"coincident", p, []Point{{0, 0}, {1, 0}, {0, 1}}},
		{"NaN", []Point{{0, 0}, {math.NaN(), 1}}, []Point{{0, 0}, {1, 1}}},
	}
	for _, tc := range tests {
		if _, err := SimilarityTransform(tc.src, tc.dst); !errors.Is(err, ErrDegenerate) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if _, err := (Affine{{1, 2, 0}, {2, 4, 0}}).Invert(); !errors.Is(err, ErrDegenerate) {
		t.Errorf("singular affine inverted: %v", err)
	}
}
