package liveness

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
)

// A face shown on a screen and filmed again carries the display's pixel
// grid, which beats with the camera's into a moiré: a narrow-band periodic
// pattern over the whole screen, the face included. Skin has no periodic
// texture; a striped shirt, corduroy, blinds or a mesh chair behind a
// person do, but not on the face. moireScore therefore asks two questions
// at one frequency: is there a narrow spectral peak common to the tiles
// around the face (their spectra averaged, Welch-style, so that a peak
// has to recur and noise averages out), and is that same frequency a peak
// on the face itself?

// Surround tiles: moireTile pixels square at native resolution, on a
// moireGrid × moireGrid grid centred on the face, without its centre tile
// (so the face confirms a peak found independently of it) and without
// tiles that leave the image.
const (
	moireTile = 128
	moireGrid = 3
)

// The face crop is moireLarge pixels square at native resolution when the
// face box is at least moireLargeFace wide, else moireSmall, so that it
// stays on the face and off the clothes.
const (
	moireLarge     = 128
	moireLargeFace = 170
	moireSmall     = 64
)

// Periods (pixels) searched for a peak: finer is below the camera's
// resolution, coarser is lighting and shading.
const (
	moireMinPeriod = 2.2
	moireMaxPeriod = 12.0
)

// greyImage is an 8-bit grey image, row-major.
type greyImage struct {
	pix  []byte
	w, h int
}

func greyOf(img gocv.Mat) (greyImage, error) {
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(img, &grey, gocv.ColorBGRToGray)
	b, err := grey.DataPtrUint8()
	if err != nil || len(b) != grey.Rows()*grey.Cols() {
		return greyImage{}, errors.New("grey image: unexpected layout")
	}
	return greyImage{pix: slices.Clone(b), w: grey.Cols(), h: grey.Rows()}, nil
}

// block returns the n×n block at (x0, y0) as float64, or nil when it
// leaves the image.
func (g greyImage) block(x0, y0, n int) []float64 {
	if n <= 0 || x0 < 0 || y0 < 0 || x0 > g.w-n || y0 > g.h-n { // no overflow for huge x0, y0
		return nil
	}
	out := make([]float64, n*n)
	for y := 0; y < n; y++ {
		row := g.pix[(y0+y)*g.w+x0:]
		for x := 0; x < n; x++ {
			out[y*n+x] = float64(row[x])
		}
	}
	return out
}

// spectrum is the magnitude spectrum of an n×n block (mean removed, Hann
// window against edge leakage), indexed v*n+u with v taken mod n. Only
// the half plane u ≥ 0 is used: the spectrum of a real block is symmetric.
type spectrum struct {
	n   int
	mag []float64
}

func spectrumOf(pix []float64, n int) spectrum {
	var mean float64
	for _, v := range pix {
		mean += v
	}
	mean /= float64(len(pix))
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
	}
	buf := make([]byte, 4*n*n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			binary.LittleEndian.PutUint32(buf[4*(y*n+x):], math.Float32bits(float32((pix[y*n+x]-mean)*win[x]*win[y])))
		}
	}
	in, err := gocv.NewMatFromBytes(n, n, gocv.MatTypeCV32F, buf)
	if err != nil {
		return spectrum{n: n, mag: make([]float64, n*n)}
	}
	defer in.Close()
	out := gocv.NewMat()
	defer out.Close()
	gocv.DFT(in, &out, gocv.DftComplexOutput)
	parts := gocv.Split(out)
	defer func() {
		for _, p := range parts {
			p.Close()
		}
	}()
	abs := gocv.NewMat()
	defer abs.Close()
	gocv.Magnitude(parts[0], parts[1], &abs)
	v, err := abs.DataPtrFloat32()
	mag := make([]float64, n*n)
	if err == nil && len(v) == n*n {
		for i, x := range v {
			mag[i] = float64(x)
		}
	}
	return spectrum{n: n, mag: mag}
}

func (s spectrum) at(u, v int) float64 { return s.mag[((v%s.n+s.n)%s.n)*s.n+(u%s.n+s.n)%s.n] }

func ring(u, v int) int { return int(math.Round(math.Hypot(float64(u), float64(v)))) }

// rings groups the half plane's magnitudes by integer radius.
func (s spectrum) rings() map[int][]float64 {
	out := map[int][]float64{}
	for v := -s.n / 2; v < s.n/2; v++ {
		for u := 0; u < s.n/2; u++ {
			r := ring(u, v)
			out[r] = append(out[r], s.at(u, v))
		}
	}
	return out
}

// ringTable gives, for every index of an n×n spectrum, the integer
// radius of its frequency; -1 outside the half plane u < n/2.
func ringTable(n int) []int {
	t := make([]int, n*n)
	for i := range t {
		t[i] = -1
	}
	for v := -n / 2; v < n/2; v++ {
		for u := 0; u < n/2; u++ {
			t[((v+n)%n)*n+u] = ring(u, v)
		}
	}
	return t
}

// whitened divides every magnitude by its ring's mean (rt is
// ringTable(s.n)), so that each tile weighs the same in an average
// whatever its contrast.
func (s spectrum) whitened(rt []int) spectrum {
	sum, cnt := make([]float64, s.n), make([]int, s.n)
	for i, r := range rt {
		if r >= 0 {
			sum[r] += s.mag[i]
			cnt[r]++
		}
	}
	for r := range sum {
		if cnt[r] > 0 {
			sum[r] /= float64(cnt[r])
		}
	}
	out := spectrum{n: s.n, mag: make([]float64, len(s.mag))}
	for i, r := range rt {
		if r >= 0 && sum[r] > 0 {
			out.mag[i] = s.mag[i] / sum[r]
		}
	}
	return out
}

func medians(rings map[int][]float64) map[int]float64 {
	out := make(map[int]float64, len(rings))
	for r, xs := range rings {
		slices.Sort(xs)
		out[r] = xs[len(xs)/2]
	}
	return out
}

// moireOf is the coherent moiré score (moireScore) of face f in img
// (8-bit BGR), centred between the eyes and the mouth.
func moireOf(img gocv.Mat, f *face.Face) float64 {
	g, err := greyOf(img)
	if err != nil {
		return 0
	}
	k := f.Landmarks.Keypoints()
	cx := (k[0].X + k[1].X + k[3].X + k[4].X) / 4
	cy := (k[0].Y + k[1].Y + k[3].Y + k[4].Y) / 4
	return moireScore(g, cx, cy, f.Box.W)
}

// moireScore is log10 of the coherent moiré around the face centred at
// (cx, cy), faceW pixels wide: the lesser of the surround's strongest
// narrow peak (over its ring's median) and the face's own peak at that
// frequency (the best of the bins around it, over its ring's median).
// Frequencies of JPEG's 8×8 blocks (multiples of N/8 on either axis) are
// skipped. 0 when the face crop or every surround tile leaves the image,
// and when the face has no peak there.
func moireScore(g greyImage, cx, cy, faceW float64) float64 {
	if !(cx >= 0 && cy >= 0 && cx < float64(g.w) && cy < float64(g.h)) || !finite(faceW) {
		return 0
	}
	n := moireSmall
	if faceW >= moireLargeFace {
		n = moireLarge
	}
	facePix := g.block(int(cx)-n/2, int(cy)-n/2, n)
	if facePix == nil {
		return 0
	}
	var avg spectrum
	rt := ringTable(moireTile)
	tiles := 0
	for j := range moireGrid {
		for i := range moireGrid {
			if i == moireGrid/2 && j == moireGrid/2 {
				continue // the face's own tile: the surround must find the peak without it
			}
			x0 := int(cx) + (i-moireGrid/2)*moireTile - moireTile/2
			y0 := int(cy) + (j-moireGrid/2)*moireTile - moireTile/2
			pix := g.block(x0, y0, moireTile)
			if pix == nil {
				continue
			}
			w := spectrumOf(pix, moireTile).whitened(rt)
			if tiles == 0 {
				avg = w
			} else {
				for k, v := range w.mag {
					avg.mag[k] += v
				}
			}
			tiles++
		}
	}
	if tiles == 0 {
		return 0
	}
	surround, u, v := peakIn(avg)
	if surround <= 0 {
		return 0
	}
	face := spectrumOf(facePix, n)
	med := medians(face.rings())
	fu, fv := int(math.Round(float64(u*n)/moireTile)), int(math.Round(float64(v*n)/moireTile))
	best := 0.0
	for dv := -1; dv <= 1; dv++ {
		for du := -1; du <= 1; du++ {
			if m := med[ring(fu+du, fv+dv)]; m > 0 {
				best = math.Max(best, face.at(fu+du, fv+dv)/m)
			}
		}
	}
	// Below 0 (the face under its ring's median there) means no moiré.
	return math.Max(0, math.Log10(math.Min(surround, best)))
}

// peakIn finds the strongest in-band frequency of s over its ring's
// median: the ratio and (u, v).
func peakIn(s spectrum) (ratio float64, pu, pv int) {
	n := s.n
	fmin, fmax := float64(n)/moireMaxPeriod, float64(n)/moireMinPeriod
	block := n / 8
	rings := map[int][]float64{}
	type cand struct{ u, v, r int }
	var cands []cand
	for v := -n / 2; v < n/2; v++ {
		for u := 0; u < n/2; u++ {
			f := math.Hypot(float64(u), float64(v))
			if f < fmin || f > fmax || nearMultiple(u, block) || nearMultiple(v, block) {
				continue
			}
			r := ring(u, v)
			rings[r] = append(rings[r], s.at(u, v))
			cands = append(cands, cand{u, v, r})
		}
	}
	med := medians(rings)
	for _, c := range cands {
		if m := med[c.r]; m > 0 && s.at(c.u, c.v)/m > ratio {
			ratio, pu, pv = s.at(c.u, c.v)/m, c.u, c.v
		}
	}
	return ratio, pu, pv
}

func nearMultiple(k, m int) bool {
	if k < 0 {
		k = -k
	}
	r := k % m
	return k >= m && (r == 0 || r == 1 || r == m-1)
}
