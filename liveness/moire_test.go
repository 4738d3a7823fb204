package liveness

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bwsagent/bwsagent/face"
)

// moireScene is a 640×480 grey scene: smooth shading with fine noise (a
// camera image without periodic texture), a face-sized disc at (320, 220),
// and a grating of the given period added where in(x, y) holds.
func moireScene(period, amp float64, in func(x, y int) bool) greyImage {
	const w, h = 640, 480
	rng := rand.New(rand.NewPCG(1, 2))
	g := greyImage{pix: make([]byte, w*h), w: w, h: h}
	s, c := math.Sincos(0.6)
	for y := range h {
		for x := range w {
			v := 110 + 40*math.Sin(float64(x)/90) + 25*math.Cos(float64(y)/70) + rng.NormFloat64()*4
			if math.Hypot(float64(x-320), float64(y-220)) < 110 {
				v += 30 // the face: brighter, smooth
			}
			if in(x, y) {
				v *= 1 + amp*math.Cos(2*math.Pi*(c*float64(x)+s*float64(y))/period)
			}
			g.pix[y*w+x] = byte(math.Max(0, math.Min(255, v)))
		}
	}
	return g
}

// TestMoireScore: a grating over the whole scene (a screen) scores above
// MaxMoire; none, or one only on the clothes or the background (corduroy,
// blinds, a mesh chair) — not on the face — scores below it.
func TestMoireScore(t *testing.T) {
	max := DefaultConfig().MaxMoire
	everywhere := func(x, y int) bool { return true }
	below := func(x, y int) bool { return y > 350 }                          // the shirt
	beside := func(x, y int) bool { return x < 180 && y > 100 }              // a chair's mesh
	onlyFar := func(x, y int) bool { return math.Abs(float64(x-320)) > 200 } // blinds
	tests := []struct {
		name   string
		period float64
		amp    float64
		in     func(x, y int) bool
		screen bool
	}{
		{"no pattern", 5, 0, everywhere, false},
		{"screen, 5 px moiré at 6 %", 5, 0.06, everywhere, true},
		{"screen, 3.5 px moiré at 8 %", 3.5, 0.08, everywhere, true},
		{"screen, 9 px moiré at 5 %", 9, 0.05, everywhere, true},
		{"striped shirt", 5, 0.3, below, false},
		{"mesh chair beside the head", 4, 0.4, beside, false},
		{"blinds far behind", 6, 0.4, onlyFar, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := moireScore(moireScene(tt.period, tt.amp, tt.in), 320, 220, 200)
			if tt.screen != (got > max) {
				t.Errorf("moiré score %.2f, MaxMoire %.2f: want screen=%v", got, max, tt.screen)
			}
		})
	}
}

func TestMoireScoreEdges(t *testing.T) {
	g := moireScene(5, 0.06, func(x, y int) bool { return true })
	for _, c := range []struct{ x, y, w float64 }{{5, 5, 200}, {635, 240, 80}, {320, -50, 100}, {math.NaN(), 10, 50}} {
		if got := moireScore(g, c.x, c.y, c.w); got != 0 {
			t.Errorf("face at (%v, %v): score %.2f, want 0 (crop leaves the image)", c.x, c.y, got)
		}
	}
	if got := moireScore(greyImage{pix: make([]byte, 100*100), w: 100, h: 100}, 50, 50, 60); got != 0 {
		t.Errorf("image smaller than a tile: score %.2f, want 0", got)
	}
}

// BenchmarkMoireScore is the moiré measurement of one 640×480 sample with
// a 200-px face (part of Analyze).
func BenchmarkMoireScore(b *testing.B) {
	face.SetThreads(1)
	g := moireScene(5, 0.06, func(x, y int) bool { return true })
	for b.Loop() {
		moireScore(g, 320, 220, 200)
	}
}

// FuzzMoireScore feeds arbitrary image content, sizes and face positions
// (a face box comes from the models, the pixels from the upload): no
// panic, and a score that is finite and not negative.
func FuzzMoireScore(f *testing.F) {
	f.Add(uint16(320), uint16(240), 160.0, 120.0, 100.0, []byte{1, 2, 3})
	f.Add(uint16(0), uint16(0), 0.0, 0.0, 0.0, []byte{})
	f.Add(uint16(400), uint16(300), 200.0, 150.0, 250.0, []byte{0, 255})
	f.Add(uint16(300), uint16(300), math.Inf(1), math.NaN(), -5.0, []byte{9})
	f.Fuzz(func(t *testing.T, w, h uint16, cx, cy, faceW float64, pix []byte) {
		w, h = w%500, h%500
		g := greyImage{pix: make([]byte, int(w)*int(h)), w: int(w), h: int(h)}
		if len(pix) > 0 {
			for i := range g.pix {
				g.pix[i] = pix[i%len(pix)] ^ byte(i*31)
			}
		}
		s := moireScore(g, cx, cy, faceW)
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
			t.Fatalf("score %v", s)
		}
	})
}
