package synth

import (
	"image"
	"image/draw"
	"math"
)

// texture is a 0-origin RGBA copy of a source image with bilinear lookup.
// Pixel (i, j) is centred on (i, j), matching the landmark convention of
// package geom.
type texture struct {
	pix  []uint8
	w, h int
}

// newTexture always copies, so later changes to img cannot leak into a
// Head.
func newTexture(img image.Image) texture {
	b := img.Bounds()
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	return texture{pix: rgba.Pix, w: b.Dx(), h: b.Dy()}
}

// sampleTo writes the bilinear sample at (x, y), clamped to the border, to
// dst[0:4].
func (t *texture) sampleTo(dst []uint8, x, y float64) {
	if !(x > 0) {
		x = 0
	}
	if !(y > 0) {
		y = 0
	}
	if x > float64(t.w-1) {
		x = float64(t.w - 1)
	}
	if y > float64(t.h-1) {
		y = float64(t.h - 1)
	}
	x0, y0 := int(x), int(y)
	fx, fy := x-float64(x0), y-float64(y0)
	x1, y1 := min(x0+1, t.w-1), min(y0+1, t.h-1)
	stride := 4 * t.w
	p00 := t.pix[y0*stride+4*x0:]
	p10 := t.pix[y0*stride+4*x1:]
	p01 := t.pix[y1*stride+4*x0:]
	p11 := t.pix[y1*stride+4*x1:]
	w00 := (1 - fx) * (1 - fy)
	w10 := fx * (1 - fy)
	w01 := (1 - fx) * fy
	w11 := fx * fy
	for c := 0; c < 4; c++ {
		v := w00*float64(p00[c]) + w10*float64(p10[c]) + w01*float64(p01[c]) + w11*float64(p11[c])
		dst[c] = uint8(v + 0.5)
	}
}

// copyRGBA returns a fresh 0-origin copy of the texture.
func (t *texture) copyRGBA() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, t.w, t.h))
	copy(out.Pix, t.pix)
	return out
}

func clamp255(v float64) uint8 {
	switch {
	case v <= 0 || math.IsNaN(v):
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}
