package synth

import (
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bwsagent/bwsagent/face/geom"
)

func TestNewHeadErrors(t *testing.T) {
	img, lm := testPhoto(t)
	nan := lm
	nan[30].X = math.NaN()
	var collapsed [68]geom.Point
	for i := range collapsed {
		collapsed[i] = geom.Point{X: 300, Y: 200}
	}
	tests := []struct {
		name string
		img  image.Image
		lm   [68]geom.Point
	}{
		{"nil image", nil, lm},
		{"tiny image", image.NewRGBA(image.Rect(0, 0, 4, 4)), lm},
		{"NaN landmark", img, nan},
		{"collapsed landmarks", img, collapsed},
	}
	for _, tc := range tests {
		if _, err := NewHead(tc.img, tc.lm); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: err = %v, want ErrBadInput", tc.name, err)
		}
	}
}

func TestRenderFrontalReproducesPhoto(t *testing.T) {
	img, lm := testPhoto(t)
	h, err := NewHead(img, lm)
	if err != nil {
		t.Fatal(err)
	}
	out := h.Render(geom.Pose{}, RenderOptions{})
	if out.Bounds() != img.Bounds() {
		t.Fatalf("bounds %v, want %v", out.Bounds(), img.Bounds())
	}
	// Measured: 0 inside the face and over the frame (every triangle maps
	// onto itself and samples exactly at pixel centres).
	if d := meanAbsDiff(out, img, faceRect(lm)); d > 0.1 {
		t.Errorf("frontal render differs inside the face by %.3f", d)
	}
	if d := meanAbsDiff(out, img, img.Bounds()); d > 0.1 {
		t.Errorf("frontal render differs over the frame by %.3f", d)
	}
	// The fitted mesh passes through the given landmarks.
	got := h.Landmarks(geom.Pose{})
	for i := range lm {
		if math.Hypot(got[i].X-lm[i].X, got[i].Y-lm[i].Y) > 1e-6 {
			t.Fatalf("landmark %d at %v, want %v", i, got[i], lm[i])
		}
	}
}

func TestRenderTurns(t *testing.T) {
	img, lm := testPhoto(t)
	h, err := NewHead(img, lm)
	if err != nil {
		t.Fatal(err)
	}
	front := h.Landmarks(geom.Pose{})
	eyeMid := func(p [68]geom.Point) float64 { return (p[39].X + p[42].X) / 2 }
	tests := []struct {
		pose  geom.Pose
		check func(l [68]geom.Point) bool
		what  string
	}{
		{geom.Pose{Yaw: 20}, func(l [68]geom.Point) bool {
			return l[geom.NoseTip].X > front[geom.NoseTip].X+15 && l[geom.NoseTip].X > eyeMid(l)+10
		}, "yaw +20: nose tip toward image right"},
		{geom.Pose{Yaw: -20}, func(l [68]geom.Point) bool {
			return l[geom.NoseTip].X < front[geom.NoseTip].X-15
		}, "yaw -20: nose tip toward image left"},
		{geom.Pose{Pitch: 15}, func(l [68]geom.Point) bool {
			return l[geom.NoseTip].Y < front[geom.NoseTip].Y-10
		}, "pitch +15: nose tip up"},
		{geom.Pose{Roll: 15}, func(l [68]geom.Point) bool {
			return l[45].Y < l[36].Y-10
		}, "roll +15: counter-clockwise"},
	}
	for _, tc := range tests {
		l := h.Landmarks(tc.pose)
		if !tc.check(l) {
			t.Errorf("%s: nose %v (front %v)", tc.what, l[geom.NoseTip], front[geom.NoseTip])
		}
		out := h.Render(tc.pose, RenderOptions{})
		d := meanAbsDiff(out, img, faceRect(lm))
		t.Logf("%s: mean abs diff to the photo inside the face %.1f", tc.what, d)
		if d < 3 {
			t.Errorf("%s: render barely differs from the photo", tc.what)
		}
		// Far corners are background: they must not move.
		corner := image.Rect(0, 0, 40, 40)
		if d := meanAbsDiff(out, img, corner); d > 0.5 {
			t.Errorf("%s: background moved (%.2f)", tc.what, d)
		}
	}
}

func TestLandmarksMatchProject(t *testing.T) {
	img, lm := testPhoto(t)
	h, err := NewHead(img, lm)
	if err != nil {
		t.Fatal(err)
	}
	model := h.Model()
	for _, p := range []geom.Pose{{}, {Yaw: 30}, {Yaw: -12, Pitch: 18, Roll: -7}} {
		want := geom.Project(model[:], p, h.Translation(), h.Camera())
		got := h.Landmarks(p)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%v: landmark %d %v != %v", p, i, got[i], want[i])
			}
		}
		// And the pose solver reads the same pose back from them (the
		// person's model differs from the canonical one only where the
		// photo's landmarks do).
		fit, err := geom.SolvePose(got, h.Camera())
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(fit.Pose.Yaw-p.Yaw) > 0.5 || math.Abs(fit.Pose.Pitch-p.Pitch) > 0.5 || math.Abs(fit.Pose.Roll-p.Roll) > 0.5 {
			t.Errorf("SolvePose(Landmarks(%v)) = %v", p, fit.Pose)
		}
	}
}

func TestRenderOptions(t *testing.T) {
	img, lm := testPhoto(t)
	h, err := NewHead(img, lm)
	if err != nil {
		t.Fatal(err)
	}
	p := geom.Pose{Yaw: 10}
	base := h.Render(p, RenderOptions{})
	noisy := RenderOptions{Noise: 8, Seed: 42}
	a, b := h.Render(p, noisy), h.Render(p, noisy)
	if meanAbsDiff(a, b, a.Bounds()) != 0 {
		t.Error("same seed, different images")
	}
	if d := meanAbsDiff(a, base, a.Bounds()); d < 3 || d > 10 {
		t.Errorf("σ=8 noise changed pixels by %.2f on average", d)
	}
	c := h.Render(p, RenderOptions{Noise: 8, Seed: 43})
	if meanAbsDiff(a, c, a.Bounds()) == 0 {
		t.Error("different seeds, same noise")
	}
	dark := h.Render(p, RenderOptions{Light: 0.5})
	r0, _, _, _ := base.At(320, 100).RGBA()
	r1, _, _, _ := dark.At(320, 100).RGBA()
	if math.Abs(float64(r1>>8)-float64(r0>>8)/2) > 1 {
		t.Errorf("Light 0.5: %d -> %d", r0>>8, r1>>8)
	}
	// Shift moves the head, not the room.
	shift := geom.Point{X: 30, Y: -10}
	moved := h.Render(geom.Pose{}, RenderOptions{Shift: shift})
	nose := lm[geom.NoseTip]
	src := image.Rect(int(nose.X)-10, int(nose.Y)-10, int(nose.X)+10, int(nose.Y)+10)
	if d := meanAbsDiffShifted(moved, img, src, 30, -10); d > 2 {
		t.Errorf("shifted nose patch differs by %.2f", d)
	}
	if d := meanAbsDiff(moved, img, image.Rect(0, 0, 40, 40)); d > 0.5 {
		t.Errorf("shift moved the background (%.2f)", d)
	}
}

// meanAbsDiffShifted compares a at rect+(dx,dy) with b at rect.
func meanAbsDiffShifted(a, b image.Image, rect image.Rectangle, dx, dy int) float64 {
	var sum float64
	var n int
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		for x := rect.Min.X; x < rect.Max.X; x++ {
			r1, g1, b1, _ := a.At(x+dx, y+dy).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			sum += math.Abs(float64(r1)-float64(r2)) + math.Abs(float64(g1)-float64(g2)) + math.Abs(float64(b1)-float64(b2))
			n += 3
		}
	}
	return sum / float64(n) / 257
}

// TestRenderExtremes: no panics and a full-size image for any pose.
func TestRenderExtremes(t *testing.T) {
	img, lm := testPhoto(t)
	h, err := NewHead(img, lm)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []geom.Pose{
		{Yaw: 90}, {Yaw: -180}, {Pitch: 90}, {Pitch: -90}, {Roll: 180},
		{Yaw: math.NaN()}, {Pitch: math.Inf(1)}, {Yaw: 1e9},
	} {
		for _, o := range []RenderOptions{{}, {Shift: geom.Point{X: 1e6, Y: -1e6}}, {Noise: math.Inf(1), Light: math.NaN()}} {
			if out := h.Render(p, o); out.Bounds() != img.Bounds() {
				t.Errorf("%v %+v: bounds %v", p, o, out.Bounds())
			}
		}
	}
	// A head whose landmarks lie partly outside the frame still builds.
	var off [68]geom.Point
	for i, q := range lm {
		off[i] = geom.Point{X: q.X + 250, Y: q.Y + 120}
	}
	if h2, err := NewHead(img, off); err != nil {
		t.Errorf("off-frame landmarks: %v", err)
	} else {
		h2.Render(geom.Pose{Yaw: 30}, RenderOptions{})
	}
	// Garbage landmarks either fail cleanly or render.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var junk [68]geom.Point
		for i := range junk {
			junk[i] = geom.Point{X: rng.Float64()*800 - 80, Y: rng.Float64()*600 - 60}
			if rng.IntN(4) == 0 {
				junk[i] = lm[i]
			}
		}
		if h3, err := NewHead(img, junk); err == nil {
			h3.Render(geom.Pose{Yaw: 20, Pitch: -10}, RenderOptions{})
		} else if !errors.Is(err, ErrBadInput) {
			t.Errorf("unexpected error type: %v", err)
		}
	}
}

// TestRenderStrip renders yaw and pitch sweeps as PNG strips to look at
// (set SYNTH_STRIP_DIR to keep them, SYNTH_STRIP_MARKS to draw the
// landmarks; otherwise they go to t.TempDir()). It also checks that the
// nose moves monotonically and that the room far from the head never
// changes.
func TestRenderStrip(t *testing.T) {
	img, lm := testPhoto(t)
	h, err := NewHead(img, lm)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("SYNTH_STRIP_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	sweeps := []struct {
		name string
		pose func(a float64) geom.Pose
		nose func(l [68]geom.Point) float64 // must grow with a
	}{
		{"yaw", func(a float64) geom.Pose { return geom.Pose{Yaw: a} },
			func(l [68]geom.Point) float64 { return l[geom.NoseTip].X }},
		{"pitch", func(a float64) geom.Pose { return geom.Pose{Pitch: a} },
			func(l [68]geom.Point) float64 { return -l[geom.NoseTip].Y }},
	}
	for _, sw := range sweeps {
		var frames []image.Image
		prev := math.Inf(-1)
		for a := -30.0; a <= 30; a += 15 {
			p := sw.pose(a)
			out := h.Render(p, RenderOptions{})
			l := h.Landmarks(p)
			if v := sw.nose(l); v <= prev {
				t.Errorf("%v: nose did not move the right way (%.1f after %.1f)", p, v, prev)
			} else {
				prev = v
			}
			if d := meanAbsDiff(out, img, image.Rect(0, 0, 120, 480)); d > 0.5 {
				t.Errorf("%v: left band changed by %.2f", p, d)
			}
			if os.Getenv("SYNTH_STRIP_MARKS") != "" {
				markLandmarks(out, l, color.RGBA{0, 255, 0, 255})
			}
			frames = append(frames, crop(out, image.Rect(180, 60, 540, 480)))
		}
		path := filepath.Join(dir, sw.name+"_strip.png")
		savePNG(t, path, hstack(frames...))
		t.Logf("wrote %s", path)
	}
}

func crop(img *image.RGBA, r image.Rectangle) image.Image { return img.SubImage(r) }

func BenchmarkRender640x480(b *testing.B) {
	img, lm := testPhoto(b)
	h, err := NewHead(img, lm)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Render(geom.Pose{Yaw: 20, Pitch: -5, Roll: 3}, RenderOptions{})
	}
}

func BenchmarkRender640x480Noise(b *testing.B) {
	img, lm := testPhoto(b)
	h, err := NewHead(img, lm)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		h.Render(geom.Pose{Yaw: 20}, RenderOptions{Noise: 5, Light: 1.1, Seed: 1})
	}
}

func BenchmarkNewHead(b *testing.B) {
	img, lm := testPhoto(b)
	for b.Loop() {
		if _, err := NewHead(img, lm); err != nil {
			b.Fatal(err)
		}
	}
}
