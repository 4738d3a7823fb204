package synth

import (
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bwsagent/bwsagent/face/geom"
)

func TestPlaneRotationIdentity(t *testing.T) {
	H := PlaneRotation(640, 480, 0, 0, 0, 1, geom.Point{})
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(H[i][j]-want) > 1e-12 {
				t.Fatalf("PlaneRotation(identity) = %v", H)
			}
		}
	}
	img, _ := testPhoto(t)
	out := WarpHomography(img, H)
	if d := meanAbsDiff(out, img, img.Bounds()); d != 0 {
		t.Errorf("identity warp differs by %v", d)
	}
}

func applyH(H [3][3]float64, p geom.Point) geom.Point {
	w := H[2][0]*p.X + H[2][1]*p.Y + H[2][2]
	return geom.Point{
		X: (H[0][0]*p.X + H[0][1]*p.Y + H[0][2]) / w,
		Y: (H[1][0]*p.X + H[1][1]*p.Y + H[1][2]) / w,
	}
}

// TestPlaneRotationGeometry: a print turned like a head turning right
// (yaw > 0) keeps its centre, and its right edge recedes (gets shorter)
// while its left edge comes closer (gets taller); pitch and roll likewise.
func TestPlaneRotationGeometry(t *testing.T) {
	const w, h = 640, 480
	edgeLen := func(H [3][3]float64, a, b geom.Point) float64 {
		p, q := applyH(H, a), applyH(H, b)
		return math.Hypot(p.X-q.X, p.Y-q.Y)
	}
	left := [2]geom.Point{{X: 0, Y: 0}, {X: 0, Y: h}}
	right := [2]geom.Point{{X: w, Y: 0}, {X: w, Y: h}}
	top := [2]geom.Point{{X: 0, Y: 0}, {X: w, Y: 0}}
	bottom := [2]geom.Point{{X: 0, Y: h}, {X: w, Y: h}}
	centre := geom.Point{X: w / 2, Y: h / 2}
	tests := []struct {
		name             string
		yaw, pitch, roll float64
		near, far        [2]geom.Point
		centreX, centreY float64
		scale            float64
		shift            geom.Point
	}{
		{"yaw right", 25, 0, 0, left, right, w / 2, h / 2, 1, geom.Point{}},
		{"yaw left", -25, 0, 0, right, left, w / 2, h / 2, 1, geom.Point{}},
		{"pitch up", 0, 20, 0, bottom, top, w / 2, h / 2, 1, geom.Point{}},
		{"shifted, scaled", 15, 0, 0, left, right, w/2 + 40, h/2 - 20, 0.7, geom.Point{X: 40, Y: -20}},
	}
	for _, tc := range tests {
		H := PlaneRotation(w, h, tc.yaw, tc.pitch, tc.roll, tc.scale, tc.shift)
		c := applyH(H, centre)
		if math.Abs(c.X-tc.centreX) > 1e-9 || math.Abs(c.Y-tc.centreY) > 1e-9 {
			t.Errorf("%s: centre maps to %v", tc.name, c)
		}
		n, f := edgeLen(H, tc.near[0], tc.near[1]), edgeLen(H, tc.far[0], tc.far[1])
		if !(n > f*1.05) {
			t.Errorf("%s: near edge %.1f px, far edge %.1f px", tc.name, n, f)
		}
	}
	// Roll > 0 is counter-clockwise on screen: the right end of the
	// horizontal centre line rises.
	H := PlaneRotation(w, h, 0, 0, 20, 1, geom.Point{})
	if p := applyH(H, geom.Point{X: w, Y: h / 2}); !(p.Y < h/2-50) {
		t.Errorf("roll 20: right midpoint at %v", p)
	}
}

func TestWarpHomographyDegenerate(t *testing.T) {
	img, _ := testPhoto(t)
	for _, H := range [][3][3]float64{
		{},
		{{1, 0, 0}, {2, 0, 0}, {0, 0, 1}},
		{{math.NaN(), 0, 0}, {0, 1, 0}, {0, 0, 1}},
	} {
		out := WarpHomography(img, H)
		if out.Bounds() != img.Bounds() {
			t.Fatalf("bounds %v", out.Bounds())
		}
		for _, v := range out.Pix {
			if v != 0 {
				t.Fatalf("degenerate H %v drew pixels", H)
			}
		}
	}
	// A print turned 89° is a sliver: most of the frame stays transparent.
	out := WarpHomography(img, PlaneRotation(640, 480, 89, 0, 0, 1, geom.Point{}))
	var opaque int
	for i := 3; i < len(out.Pix); i += 4 {
		if out.Pix[i] != 0 {
			opaque++
		}
	}
	if opaque > 640*480/20 {
		t.Errorf("89° print covers %d pixels", opaque)
	}
}

// TestWarpCylinder: flat and unturned is the identity; bent, the centre
// column stays while the edges are foreshortened (the covered width
// shrinks and edge columns get shorter).
func TestWarpCylinder(t *testing.T) {
	img, _ := testPhoto(t)
	flat := WarpCylinder(img, 0, 0)
	if d := meanAbsDiff(flat, img, img.Bounds()); d > 0.01 {
		t.Errorf("flat cylinder differs by %v", d)
	}
	covered := func(im *image.RGBA) (minX, maxX int, colHeight func(x int) int) {
		minX, maxX = im.Rect.Dx(), -1
		colHeight = func(x int) int {
			n := 0
			for y := 0; y < im.Rect.Dy(); y++ {
				if im.Pix[y*im.Stride+4*x+3] != 0 {
					n++
				}
			}
			return n
		}
		for x := 0; x < im.Rect.Dx(); x++ {
			if colHeight(x) > 0 {
				minX = min(minX, x)
				maxX = max(maxX, x)
			}
		}
		return minX, maxX, colHeight
	}
	for _, k := range []float64{0.8, 1.5} {
		bent := WarpCylinder(img, k, 0)
		cx := 320
		if d := meanAbsDiff(bent, img, image.Rect(cx, 0, cx+1, 480)); d > 1 {
			t.Errorf("curvature %v: centre column changed by %.2f", k, d)
		}
		minX, maxX, colH := covered(bent)
		if maxX-minX >= 630 {
			t.Errorf("curvature %v: covers x %d..%d, edges not compressed", k, minX, maxX)
		}
		if !(colH(minX+2) < colH(cx)) {
			t.Errorf("curvature %v: edge column height %d not below centre %d", k, colH(minX+2), colH(cx))
		}
	}
	// Turned toward image-right (the pose convention), the right half
	// recedes and is squeezed more than the left half.
	turned := WarpCylinder(img, 1, 30)
	minX, maxX, _ := covered(turned)
	if !(maxX-320 < 320-minX) {
		t.Errorf("turned cylinder covers x %d..%d", minX, maxX)
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), 1e9, 2 * math.Pi, -1} {
		WarpCylinder(img, bad, 0)
		WarpCylinder(img, 1, bad)
	}
}

// TestAttackStrip saves the planar attacks next to each other for a look.
func TestAttackStrip(t *testing.T) {
	img, _ := testPhoto(t)
	dir := os.Getenv("SYNTH_STRIP_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	frames := []image.Image{
		WarpHomography(img, PlaneRotation(640, 480, -25, 0, 0, 0.8, geom.Point{})),
		WarpHomography(img, PlaneRotation(640, 480, 25, 10, 5, 0.8, geom.Point{X: 20})),
		WarpCylinder(img, 1.2, 0),
		WarpCylinder(img, 1.2, 25),
	}
	path := filepath.Join(dir, "attack_strip.png")
	savePNG(t, path, hstack(frames...))
	t.Logf("wrote %s", path)
}

func BenchmarkWarpHomography(b *testing.B) {
	img, _ := testPhoto(b)
	H := PlaneRotation(640, 480, 20, 5, 3, 0.9, geom.Point{X: 10})
	for b.Loop() {
		WarpHomography(img, H)
	}
}

func BenchmarkWarpCylinder(b *testing.B) {
	img, _ := testPhoto(b)
	for b.Loop() {
		WarpCylinder(img, 1, 20)
	}
}
