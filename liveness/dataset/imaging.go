package dataset

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// Frame size of every generated sample: a webcam's 640×480.
const (
	FrameW = 640
	FrameH = 480
)

func newFrame() *image.RGBA { return image.NewRGBA(image.Rect(0, 0, FrameW, FrameH)) }

// room paints a plausible indoor background: a wall with a lighting
// gradient, a few rectangular objects (door, frames, shelves), a floor
// band and sensor-like noise. It contains no face.
func room(rng *rand.Rand) *image.RGBA {
	img := newFrame()
	base := [3]float64{140 + 80*rng.Float64(), 130 + 80*rng.Float64(), 120 + 80*rng.Float64()}
	gx, gy := rng.Float64()*0.5-0.25, rng.Float64()*0.4-0.2
	for y := 0; y < FrameH; y++ {
		for x := 0; x < FrameW; x++ {
			l := 1 + gx*(float64(x)/FrameW-0.5) + gy*(float64(y)/FrameH-0.5)
			i := img.PixOffset(x, y)
			for c := 0; c < 3; c++ {
				img.Pix[i+c] = clamp8(base[c] * l)
			}
			img.Pix[i+3] = 255
		}
	}
	for k := 2 + rng.IntN(4); k > 0; k-- {
		w, h := 40+rng.IntN(220), 40+rng.IntN(300)
		x, y := rng.IntN(FrameW), rng.IntN(FrameH)
		col := color.RGBA{uint8(30 + rng.IntN(200)), uint8(30 + rng.IntN(200)), uint8(30 + rng.IntN(200)), 255}
		draw.Draw(img, image.Rect(x-w/2, y-h/2, x+w/2, y+h/2), image.NewUniform(col), image.Point{}, draw.Src)
	}
	if rng.IntN(2) == 0 {
		fy := FrameH - 40 - rng.IntN(80)
		col := color.RGBA{uint8(60 + rng.IntN(120)), uint8(50 + rng.IntN(100)), uint8(40 + rng.IntN(80)), 255}
		draw.Draw(img, image.Rect(0, fy, FrameW, FrameH), image.NewUniform(col), image.Point{}, draw.Src)
	}
	// Wall texture: noise smoothed out, so the room itself looks like
	// neither a print nor a screen to the PAD model's context crop.
	addNoise(img, 4, rng)
	return boxBlur(img, 2)
}

// placeTransform maps a source of size sw×sh centred in the frame, scaled
// by s and moved by (dx, dy).
func placeTransform(sw, sh int, s, dx, dy float64) f64.Aff3 {
	tx := FrameW/2 + dx - s*float64(sw)/2
	ty := FrameH/2 + dy - s*float64(sh)/2
	return f64.Aff3{s, 0, tx, 0, s, ty}
}

// transformOnto draws src through the affine map m onto dst (bilinear,
// over).
func transformOnto(dst *image.RGBA, src image.Image, m f64.Aff3) {
	xdraw.BiLinear.Transform(dst, m, src, src.Bounds(), xdraw.Over, nil)
}

// paper turns a photo into the look of a print: a compressed tonal range
// (paper white and ink black), a warm tint, a little softness, and a white
// margin of marginFrac of the shorter side around it. It returns the print
// and the margin in pixels (where the photo's origin lands).
func paper(src *image.RGBA, marginFrac float64, rng *rand.Rand) (*image.RGBA, int) {
	b := src.Bounds()
	m := int(marginFrac * float64(min(b.Dx(), b.Dy())))
	out := image.NewRGBA(image.Rect(0, 0, b.Dx()+2*m, b.Dy()+2*m))
	white := color.RGBA{uint8(235 + rng.IntN(20)), uint8(232 + rng.IntN(20)), uint8(222 + rng.IntN(25)), 255}
	draw.Draw(out, out.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	lo, hi := 12+16*rng.Float64(), 225+20*rng.Float64()
	tint := [3]float64{1, 0.97 + 0.03*rng.Float64(), 0.9 + 0.08*rng.Float64()}
	soft := boxBlur(src, 1)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			si := soft.PixOffset(x, y)
			di := out.PixOffset(x+m, y+m)
			for c := 0; c < 3; c++ {
				v := float64(soft.Pix[si+c]) / 255
				out.Pix[di+c] = clamp8((lo + (hi-lo)*v) * tint[c])
			}
			out.Pix[di+3] = 255
		}
	}
	return out, m
}

// boxBlur is a separable box blur of radius r (r = 0 copies).
func boxBlur(src *image.RGBA, r int) *image.RGBA {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	tmp := image.NewRGBA(image.Rect(0, 0, w, h))
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(tmp, tmp.Bounds(), src, b.Min, draw.Src)
	if r <= 0 {
		return tmp
	}
	pass := func(dst, s *image.RGBA, dx, dy int) {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				var acc [4]int
				n := 0
				for k := -r; k <= r; k++ {
					xx, yy := x+k*dx, y+k*dy
					if xx < 0 || yy < 0 || xx >= w || yy >= h {
						continue
					}
					i := s.PixOffset(xx, yy)
					for c := 0; c < 4; c++ {
						acc[c] += int(s.Pix[i+c])
					}
					n++
				}
				i := dst.PixOffset(x, y)
				for c := 0; c < 4; c++ {
					dst.Pix[i+c] = uint8(acc[c] / n)
				}
			}
		}
	}
	pass(out, tmp, 1, 0)
	pass(tmp, out, 0, 1)
	return tmp
}

// addNoise adds Gaussian noise of σ sigma to the colour channels.
func addNoise(img *image.RGBA, sigma float64, rng *rand.Rand) {
	if sigma <= 0 {
		return
	}
	for i := 0; i+3 < len(img.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			img.Pix[i+c] = clamp8(float64(img.Pix[i+c]) + rng.NormFloat64()*sigma)
		}
	}
}

// camera applies what a webcam adds to any scene: a gain, a gamma and a
// slight softness (no noise: see scene.liveFrames).
func camera(img *image.RGBA, gain, gamma float64, blur int) *image.RGBA {
	out := img
	if blur > 0 {
		out = boxBlur(img, blur)
	}
	for i := 0; i+3 < len(out.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			v := float64(out.Pix[i+c]) / 255
			out.Pix[i+c] = clamp8(255 * math.Pow(v*gain, gamma))
		}
		out.Pix[i+3] = 255
	}
	return out
}

// flatten composites img over a background and makes it opaque.
func flatten(bg *image.RGBA, layers ...*image.RGBA) *image.RGBA {
	out := newFrame()
	draw.Draw(out, out.Bounds(), bg, image.Point{}, draw.Src)
	for _, l := range layers {
		draw.Draw(out, out.Bounds(), l, image.Point{}, draw.Over)
	}
	return out
}

// moire multiplies the pixels where mask is opaque by an interference
// grating: the beat between a screen's pixel grid and the camera's.
func moire(img, mask *image.RGBA, period, angle, amp float64) {
	s, c := math.Sincos(angle)
	for y := 0; y < FrameH; y++ {
		for x := 0; x < FrameW; x++ {
			i := img.PixOffset(x, y)
			a := float64(mask.Pix[i+3]) / 255
			if a == 0 {
				continue
			}
			t := (c*float64(x) + s*float64(y)) / period
			f := 1 + a*amp*math.Cos(2*math.Pi*t)
			for k := 0; k < 3; k++ {
				img.Pix[i+k] = clamp8(float64(img.Pix[i+k]) * f)
			}
		}
	}
}

// glare adds a soft specular highlight where mask is opaque.
func glare(img, mask *image.RGBA, cx, cy, radius, peak float64) {
	for y := 0; y < FrameH; y++ {
		for x := 0; x < FrameW; x++ {
			i := img.PixOffset(x, y)
			a := float64(mask.Pix[i+3]) / 255
			if a == 0 {
				continue
			}
			d2 := ((float64(x)-cx)*(float64(x)-cx) + (float64(y)-cy)*(float64(y)-cy)) / (radius * radius)
			add := a * peak * math.Exp(-d2)
			for k := 0; k < 3; k++ {
				img.Pix[i+k] = clamp8(float64(img.Pix[i+k]) + add)
			}
		}
	}
}

// gammaRGBA applies a display gamma and black level to img.
func gammaRGBA(img *image.RGBA, gamma, black float64) {
	var lut [256]uint8
	for v := range lut {
		lut[v] = clamp8(black + (255-black)*math.Pow(float64(v)/255, gamma))
	}
	for i := 0; i+3 < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2] = lut[img.Pix[i]], lut[img.Pix[i+1]], lut[img.Pix[i+2]]
	}
}

func clamp8(v float64) uint8 {
	switch {
	case !(v > 0):
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// toRGBA returns img as a 0-origin *image.RGBA (a copy).
func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}

func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
