package geom

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkDelaunay verifies orientation, the empty-circumcircle property,
// edge manifoldness and that the triangles tile the convex hull.
func checkDelaunay(t *testing.T, name string, pts []Point, tris [][3]int, wantUsed int) {
	t.Helper()
	ext := 0.0
	for _, p := range pts {
		ext = math.Max(ext, math.Max(math.Abs(p.X), math.Abs(p.Y)))
	}
	tol := 1e-9 * ext * ext * ext * ext
	used := map[int]bool{}
	edges := map[[2]int]int{}
	var area float64
	for _, tr := range tris {
		a, b, c := pts[tr[0]], pts[tr[1]], pts[tr[2]]
		o := orient(a, b, c)
		if !(o > 0) {
			t.Fatalf("%s: triangle %v not counter-clockwise (%g)", name, tr, o)
		}
		area += o / 2
		for k := 0; k < 3; k++ {
			used[tr[k]] = true
			e := [2]int{tr[k], tr[(k+1)%3]}
			edges[e]++
			if edges[e] > 1 {
				t.Fatalf("%s: directed edge %v used twice (overlap)", name, e)
			}
		}
		for i, p := range pts {
			if i == tr[0] || i == tr[1] || i == tr[2] || p == a || p == b || p == c {
				continue
			}
			if ic := inCircle(a, b, c, p); ic > tol {
				t.Fatalf("%s: point %d %v inside circumcircle of %v (%g)", name, i, p, tr, ic)
			}
		}
	}
	if wantUsed >= 0 && len(used) != wantUsed {
		t.Errorf("%s: %d points used, want %d", name, len(used), wantUsed)
	}
	if hull := hullArea(pts); math.Abs(area-hull) > 1e-6*hull {
		t.Errorf("%s: triangles cover %g, convex hull %g", name, area, hull)
	}
}

// hullArea is the area of the convex hull.
func hullArea(pts []Point) float64 {
	h := ConvexHull(pts)
	var a float64
	for i := range h {
		j := (i + 1) % len(h)
		a += h[i].X*h[j].Y - h[j].X*h[i].Y
	}
	return a / 2
}

func TestDelaunay(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	grid := func(nx, ny int, step float64) []Point {
		var p []Point
		for y := 0; y < ny; y++ {
			for x := 0; x < nx; x++ {
				p = append(p, Point{float64(x) * step, float64(y) * step})
			}
		}
		return p
	}
	random := func(n int) []Point {
		p := make([]Point, n)
		for i := range p {
			p[i] = Point{rng.Float64() * 640, rng.Float64() * 480}
		}
		return p
	}
	withDups := random(100)
	withDups = append(withDups, withDups[:30]...)
	withDups = append(withDups, Point{math.NaN(), 1}, Point{withDups[5].X + 1e-13, withDups[5].Y})
	circle := make([]Point, 0, 33)
	for i := range 32 {
		s, c := math.Sincos(float64(i) * 2 * math.Pi / 32)
		circle = append(circle, Point{100 + 50*c, 100 + 50*s})
	}
	circle = append(circle, Point{100, 100})

	tests := []struct {
		name     string
		pts      []Point
		wantUsed int // -1: don't check
		wantTris int // -1: don't check
	}{
		{"triangle", []Point{{0, 0}, {1, 0}, {0, 1}}, 3, 1},
		{"square", []Point{{0, 0}, {1, 0}, {1, 1}, {0, 1}}, 4, 2},
		{"grid 10x8", grid(10, 8, 10), 80, 2 * 9 * 7},
		{"fine grid", grid(30, 30, 0.37), 900, 2 * 29 * 29},
		{"random 500", random(500), 500, -1},
		{"duplicates", withDups, 100, -1},
		{"cocircular", circle, 33, 32},
	}
	for _, tc := range tests {
		tris := Delaunay(tc.pts)
		if tc.wantTris >= 0 && len(tris) != tc.wantTris {
			t.Errorf("%s: %d triangles, want %d", tc.name, len(tris), tc.wantTris)
		}
		var finitePts []Point
		for _, p := range tc.pts {
			if finite(p.X) && finite(p.Y) {
				finitePts = append(finitePts, p)
			}
		}
		// Indices refer to tc.pts; NaN points are unused, so checking
		// against the original slice is fine apart from the hull.
		checkDelaunay(t, tc.name, replaceNaN(tc.pts, finitePts[0]), tris, tc.wantUsed)
		if again := Delaunay(tc.pts); !slices.Equal(again, tris) {
			t.Errorf("%s: not deterministic", tc.name)
		}
	}
}

func replaceNaN(pts []Point, with Point) []Point {
	out := slices.Clone(pts)
	for i, p := range out {
		if !finite(p.X) || !finite(p.Y) {
			out[i] = with
		}
	}
	return out
}

func TestDelaunayDegenerate(t *testing.T) {
	tests := []struct {
		name string
		pts  []Point
	}{
		{"empty", nil},
		{"two", []Point{{0, 0}, {1, 1}}},
		{"all equal", []Point{{3, 3}, {3, 3}, {3, 3}, {3, 3}}},
		{"collinear", []Point{{0, 0}, {1, 1}, {2, 2}, {3, 3}}},
		{"NaN", []Point{{math.NaN(), 0}, {1, 1}, {2, 0}}},
	}
	for _, tc := range tests {
		if got := Delaunay(tc.pts); len(got) != 0 {
			t.Errorf("%s: got %v, want no triangles", tc.name, got)
		}
	}
}

func BenchmarkDelaunay1000(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	p := make([]Point, 1000)
	for i := range p {
		p[i] = Point{rng.Float64() * 640, rng.Float64() * 480}
	}
	b.ReportAllocs()
	for b.Loop() {
		Delaunay(p)
	}
}
