package dataset

import (
	"image"
	"math"

	"github.com/bwsagent/bwsagent/face/geom"
)

// A portrait cut wider than its photo needs a surround. It must hold no
// face (a stretched copy of the photo put a blurred second face behind
// the head) and no straight edge (the photo's border, or the black wedges
// that LFW's deep-funnel alignment leaves at its corners, read as a
// print's border or a screen's bezel). extendPhoto continues the photo's
// own colours outward, smoothly, like an out-of-focus room.

// contentThreshold: a pixel whose brightest channel is above it is photo
// content. Alignment padding is exact black, JPEG ringing lifts it to ~10.
const contentThreshold = 24

// contentMask marks a photo's content: the convex hull of its pixels that
// are not black. Deep-funnel padding is the outside of a warped
// rectangle, so it lies outside that hull; dark scenery inside the photo
// (a black suit, a dark backdrop) is inside and kept.
func contentMask(img image.Image) *image.Alpha {
	b := img.Bounds()
	var pts []geom.Point
	for y := b.Min.Y; y < b.Max.Y; y++ {
		first, last := -1, -1
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if max(r, g, bl)>>8 > contentThreshold {
				if first < 0 {
					first = x
				}
				last = x
			}
		}
		if first >= 0 {
			x0, x1 := float64(first), float64(last+1)
			pts = append(pts, geom.Point{X: x0, Y: float64(y)}, geom.Point{X: x1, Y: float64(y)},
				geom.Point{X: x0, Y: float64(y + 1)}, geom.Point{X: x1, Y: float64(y + 1)})
		}
	}
	hull := geom.ConvexHull(pts)
	m := image.NewAlpha(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if geom.InsideConvex(hull, geom.Point{X: float64(x) + 0.5, Y: float64(y) + 0.5}) {
				m.Pix[m.PixOffset(x, y)] = 255
			}
		}
	}
	return erode(m, contentInset)
}

// contentInset (source pixels) drops a photo's outermost pixels: scanned
// press photos and aligned ones have a dark, ringing seam there.
const contentInset = 3

// surroundRamp is the width in frame pixels over which the photo blends
// into its extension.
const surroundRamp = 36

// fillBlur is the radius of the two box blurs over the fill.
const fillBlur = 6

// extendPhoto returns img with every pixel outside valid (alpha < 255)
// replaced by a smooth continuation of the pixels inside, blended over
// surroundRamp pixels at the boundary. img and valid share bounds.
func extendPhoto(img *image.RGBA, valid *image.Alpha) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	// Two pixels in from the boundary: a resampled photo's edge is mixed
	// with whatever lay outside it.
	inside := erode(valid, 2)
	colour := make([]float32, 3*w*h)
	weight := make([]float32, w*h)
	for y := range h {
		for x := range w {
			if inside.Pix[inside.PixOffset(x+b.Min.X, y+b.Min.Y)] != 255 {
				continue
			}
			i := img.PixOffset(x+b.Min.X, y+b.Min.Y)
			k := y*w + x
			weight[k] = 1
			for c := range 3 {
				colour[3*k+c] = float32(img.Pix[i+c])
			}
		}
	}
	pushPull(colour, weight, w, h)
	// The pyramid's cells show as faint blocks; a blur hides them, as a
	// lens's depth of field would.
	fill := image.NewRGBA(image.Rect(0, 0, w, h))
	for k := range w * h {
		for c := range 3 {
			fill.Pix[4*k+c] = clamp8(float64(colour[3*k+c]))
		}
		fill.Pix[4*k+3] = 255
	}
	fill = boxBlur(boxBlur(fill, fillBlur), fillBlur)

	// Alpha of the photo: 0 outside, rising to 1 surroundRamp pixels in.
	blend := boxBlurAlpha(inside, surroundRamp)
	out := image.NewRGBA(b)
	for y := range h {
		for x := range w {
			a := 2*float64(blend[y*w+x]) - 1
			a = math.Min(math.Max(a, 0), 1)
			a = a * a * (3 - 2*a)
			if inside.Pix[inside.PixOffset(x+b.Min.X, y+b.Min.Y)] != 255 {
				a = 0
			}
			i := img.PixOffset(x+b.Min.X, y+b.Min.Y)
			j := fill.PixOffset(x, y)
			for c := range 3 {
				out.Pix[i+c] = clamp8(a*float64(img.Pix[i+c]) + (1-a)*float64(fill.Pix[j+c]))
			}
			out.Pix[i+3] = 255
		}
	}
	return out
}

// pushPull fills the pixels of weight 0 from their surroundings (the
// push-pull scheme of Gortler et al.): averages weighted by coverage are
// pushed down a pyramid of halvings, then pulled back up, each level's
// gaps taking the bilinearly upsampled coarser level. The fill is smooth
// and holds no structure of its own. colour has 3 values a pixel.
func pushPull(colour, weight []float32, w, h int) {
	if w <= 1 && h <= 1 {
		return
	}
	cw, ch := (w+1)/2, (h+1)/2
	cc := make([]float32, 3*cw*ch)
	cwt := make([]float32, cw*ch)
	for y := range ch {
		for x := range cw {
			var sum [3]float32
			var sw float32
			for dy := range 2 {
				for dx := range 2 {
					xx, yy := 2*x+dx, 2*y+dy
					if xx >= w || yy >= h {
						continue
					}
					k := yy*w + xx
					wt := weight[k]
					sw += wt
					for c := range 3 {
						sum[c] += wt * colour[3*k+c]
					}
				}
			}
			k := y*cw + x
			if sw > 0 {
				for c := range 3 {
					cc[3*k+c] = sum[c] / sw
				}
			}
			cwt[k] = min(sw, 1)
		}
	}
	pushPull(cc, cwt, cw, ch)
	for y := range h {
		fy := math.Max((float64(y)+0.5)/2-0.5, 0)
		y0 := min(int(fy), ch-1)
		y1 := min(y0+1, ch-1)
		ty := float32(fy - float64(y0))
		for x := range w {
			k := y*w + x
			wt := weight[k]
			if wt >= 1 {
				continue
			}
			fx := math.Max((float64(x)+0.5)/2-0.5, 0)
			x0 := min(int(fx), cw-1)
			x1 := min(x0+1, cw-1)
			tx := float32(fx - float64(x0))
			for c := range 3 {
				at := func(xx, yy int) float32 { return cc[3*(yy*cw+xx)+c] }
				up := (1-ty)*((1-tx)*at(x0, y0)+tx*at(x1, y0)) + ty*((1-tx)*at(x0, y1)+tx*at(x1, y1))
				colour[3*k+c] = wt*colour[3*k+c] + (1-wt)*up
			}
		}
	}
}

// erode shrinks the opaque (255) part of m by r pixels (a square
// neighbourhood).
func erode(m *image.Alpha, r int) *image.Alpha {
	b := m.Bounds()
	out := image.NewAlpha(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := uint8(255)
			for dy := -r; dy <= r && v == 255; dy++ {
				for dx := -r; dx <= r; dx++ {
					p := image.Pt(x+dx, y+dy)
					if !p.In(b) || m.Pix[m.PixOffset(p.X, p.Y)] != 255 {
						v = 0
						break
					}
				}
			}
			out.Pix[out.PixOffset(x, y)] = v
		}
	}
	return out
}

// boxBlurAlpha returns m's opacity in [0, 1], averaged over a square of
// radius r (outside m counts as transparent).
func boxBlurAlpha(m *image.Alpha, r int) []float32 {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	// Summed-area table: the ramp radius is large.
	sat := make([]float64, (w+1)*(h+1))
	for y := range h {
		var row float64
		for x := range w {
			row += float64(m.Pix[m.PixOffset(x+b.Min.X, y+b.Min.Y)]) / 255
			sat[(y+1)*(w+1)+x+1] = sat[y*(w+1)+x+1] + row
		}
	}
	out := make([]float32, w*h)
	n := float64((2*r + 1) * (2*r + 1))
	for y := range h {
		y0, y1 := max(y-r, 0), min(y+r+1, h)
		for x := range w {
			x0, x1 := max(x-r, 0), min(x+r+1, w)
			s := sat[y1*(w+1)+x1] - sat[y0*(w+1)+x1] - sat[y1*(w+1)+x0] + sat[y0*(w+1)+x0]
			out[y*w+x] = float32(s / n)
		}
	}
	return out
}
