package session

import (
	"image"
	"math"

	"gocv.io/x/gocv"
)

// BWS UI's motion trigger (../shared/bws-contract.md): the green channel of
// the central 3/4 of the frame scaled to motionHeight px high; a centred
// template W/4 × 3H/8 of the reference is searched exhaustively over
// ±W/4 × ±H/4 in the current image; movement % = offset / max offset × 100.
// (ours) "offset / max offset" is the Euclidean length of the best shift
// over that of the largest shift, hypot(W/4, H/4); the search is
// coarse-to-fine (every 2nd shift and pixel, then ±2 around the best at
// full resolution) so it costs ~1 ms in Go and in the kiosk page's JS,
// which implements the same function (kiosk/static/motion.js).
const motionHeight = 160

// grey is a motion image: one byte per pixel, row-major.
type grey struct {
	pix  []uint8
	w, h int
}

// motionImage prepares m (BGR) for MotionPercent.
func motionImage(m gocv.Mat) (grey, bool) {
	w, h := m.Cols(), m.Rows()
	if w < 8 || h < 8 {
		return grey{}, false
	}
	crop := m.Region(image.Rect(w/8, h/8, w-w/8, h-h/8))
	defer crop.Close()
	cw, ch := crop.Cols(), crop.Rows()
	sw := max(8, int(math.Round(float64(cw)*motionHeight/float64(ch))))
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(crop, &small, image.Pt(sw, motionHeight), 0, 0, gocv.InterpolationArea)
	chans := gocv.Split(small)
	defer func() {
		for _, c := range chans {
			_ = c.Close()
		}
	}()
	if len(chans) < 2 {
		return grey{}, false
	}
	return grey{pix: chans[1].ToBytes(), w: sw, h: motionHeight}, true
}

// MotionPercent is the movement between ref and cur in percent of the
// largest shift searched (0..100); images of different sizes give 0.
func MotionPercent(ref, cur []uint8, w, h int) float64 {
	if w < 8 || h < 8 || len(ref) != w*h || len(cur) != w*h {
		return 0
	}
	tw, th := w/4, 3*h/8
	x0, y0 := (w-tw)/2, (h-th)/2
	mx, my := w/4, h/4
	// Keep the shifted template inside the image.
	mx = min(mx, x0, w-x0-tw)
	my = min(my, y0, h-y0-th)
	sad := func(dx, dy, step int) int {
		s := 0
		for y := 0; y < th; y += step {
			r := ref[(y0+y)*w+x0:]
			c := cur[(y0+y+dy)*w+x0+dx:]
			for x := 0; x < tw; x += step {
				d := int(r[x]) - int(c[x])
				if d < 0 {
					d = -d
				}
				s += d
			}
		}
		return s
	}
	best, bx, by := math.MaxInt, 0, 0
	// Coarse: even shifts only (0 included), every 2nd pixel.
	for dy := -my / 2 * 2; dy <= my; dy += 2 {
		for dx := -mx / 2 * 2; dx <= mx; dx += 2 {
			// Prefer the smaller shift on ties so a flat image reads 0.
			if s := sad(dx, dy, 2); s < best || (s == best && dx*dx+dy*dy < bx*bx+by*by) {
				best, bx, by = s, dx, dy
			}
		}
	}
	// Fine: ±2 around the coarse best, every pixel.
	cx, cy := bx, by
	best, bx, by = math.MaxInt, cx, cy
	for dy := max(-my, cy-2); dy <= min(my, cy+2); dy++ {
		for dx := max(-mx, cx-2); dx <= min(mx, cx+2); dx++ {
			if s := sad(dx, dy, 1); s < best || (s == best && dx*dx+dy*dy < bx*bx+by*by) {
				best, bx, by = s, dx, dy
			}
		}
	}
	if mx == 0 && my == 0 {
		return 0
	}
	return 100 * math.Hypot(float64(bx), float64(by)) / math.Hypot(float64(mx), float64(my))
}
