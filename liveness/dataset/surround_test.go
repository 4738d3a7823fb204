package dataset

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// alignedPhoto draws what LFW's deep-funnel alignment makes of a photo:
// its content turned by 12° in a 200×200 image, black wedges around it.
// The content is grey with a pure black blob (dark clothing) at its centre.
func alignedPhoto() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 200, 200))
	s, c := math.Sincos(12 * math.Pi / 180)
	for y := range 200 {
		for x := range 200 {
			u, v := float64(x)-100, float64(y)-100
			ru, rv := c*u+s*v, -s*u+c*v
			var g uint8
			switch {
			case math.Hypot(u, v) < 20:
				g = 0 // dark content
			case math.Abs(ru) < 85 && math.Abs(rv) < 85:
				g = 120
			}
			img.SetRGBA(x, y, color.RGBA{g, g, g, 255})
		}
	}
	return img
}

func TestContentMask(t *testing.T) {
	m := contentMask(alignedPhoto())
	tests := []struct {
		p    image.Point
		want uint8
	}{
		{image.Pt(100, 100), 255}, // the black blob inside the content is content
		{image.Pt(100, 30), 255},
		{image.Pt(2, 2), 0}, // a padding wedge
		{image.Pt(197, 197), 0},
		{image.Pt(5, 100), 0}, // outside the turned square
	}
	for _, tt := range tests {
		if got := m.AlphaAt(tt.p.X, tt.p.Y).A; got != tt.want {
			t.Errorf("mask at %v = %d, want %d", tt.p, got, tt.want)
		}
	}
}

func TestExtendPhoto(t *testing.T) {
	// A photo in the middle of a frame, red on its left half and blue on
	// its right; the rest is unknown (black, as a resampled photo leaves it).
	const w, h = 320, 240
	photo := image.Rect(100, 60, 220, 180)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	valid := image.NewAlpha(img.Bounds())
	for y := photo.Min.Y; y < photo.Max.Y; y++ {
		for x := photo.Min.X; x < photo.Max.X; x++ {
			c := color.RGBA{200, 40, 40, 255}
			if x >= 160 {
				c = color.RGBA{40, 40, 200, 255}
			}
			img.SetRGBA(x, y, c)
			valid.SetAlpha(x, y, color.Alpha{A: 255})
		}
	}
	out := extendPhoto(img, valid)

	// The photo's middle is kept.
	if got := out.RGBAAt(130, 120); got != (color.RGBA{200, 40, 40, 255}) {
		t.Errorf("photo pixel changed: %v", got)
	}
	// The surround continues each side's colour and is never black.
	redness := func(x, y int) int { c := out.RGBAAt(x, y); return int(c.R) - int(c.B) }
	if l, r := redness(90, 120), redness(230, 120); l <= 0 || r >= 0 {
		t.Errorf("beside the photo, red−blue is %d left and %d right; want the red and the blue half continued", l, r)
	}
	if l, r := redness(5, 120), redness(314, 120); l <= r {
		t.Errorf("far out, red−blue is %d left and %d right; want the left redder", l, r)
	}
	// No edge anywhere around the photo: neighbouring pixels outside the
	// photo differ little (the photo's own red/blue boundary excepted).
	worst := 0
	for y := 0; y < h-1; y++ {
		for x := 0; x < w-1; x++ {
			if image.Pt(x, y).In(photo.Inset(-2)) {
				continue
			}
			a, r, d := out.RGBAAt(x, y), out.RGBAAt(x+1, y), out.RGBAAt(x, y+1)
			for _, n := range []color.RGBA{r, d} {
				worst = max(worst, absDiff(a.R, n.R), absDiff(a.G, n.G), absDiff(a.B, n.B))
			}
			if max(a.R, a.G, a.B) < 40 {
				t.Fatalf("black surround at (%d, %d): %v", x, y, a)
			}
		}
	}
	if worst > 12 {
		t.Errorf("a step of %d between neighbours outside the photo: an edge", worst)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
