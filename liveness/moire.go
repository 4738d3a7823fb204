package liveness

import (
	"errors"
	"image"
	"math"
	"math/cmplx"
	"slices"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
)

// A face shown on a screen and filmed again carries the display's pixel
// grid, which beats with the camera's into a moiré: a narrow-band periodic
// pattern over the face. Skin has no periodic texture, so its spectrum is
// smooth and decays with frequency. moireScore measures the strongest
// narrow spectral peak in a native-resolution crop of the face's centre,
// against the spectrum's local level.

// The analysed crop is moireLarge pixels square at native resolution
// (enough periods of a 2–12 px pattern for a sharp peak) when the face box
// is at least moireLargeFace wide, else moireSmall, so that the crop stays
// on the face and off the clothes.
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

// moireCrop cuts the face's centre (between the eyes and the mouth) at
// native resolution, grey, as float64; n is the crop's side.
func moireCrop(img gocv.Mat, f *face.Face) (pix []float64, n int, err error) {
	n = moireSmall
	if f.Box.W >= moireLargeFace {
		n = moireLarge
	}
	k := f.Landmarks.Keypoints()
	cx := (k[0].X + k[1].X + k[3].X + k[4].X) / 4
	cy := (k[0].Y + k[1].Y + k[3].Y + k[4].Y) / 4
	r := image.Rect(int(cx)-n/2, int(cy)-n/2, int(cx)+n/2, int(cy)+n/2)
	if !r.In(image.Rect(0, 0, img.Cols(), img.Rows())) {
		return nil, 0, errors.New("moiré crop outside the image")
	}
	region := img.Region(r)
	defer region.Close()
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(region, &grey, gocv.ColorBGRToGray)
	b, err := grey.DataPtrUint8()
	if err != nil || len(b) != n*n {
		return nil, 0, errors.New("moiré crop: unexpected layout")
	}
	pix = make([]float64, len(b))
	for i, v := range b {
		pix[i] = float64(v)
	}
	return pix, n, nil
}

// moireScore is log10 of the strongest narrow spectral peak over the
// median of its frequency ring, for periods in [moireMinPeriod,
// moireMaxPeriod]. Frequencies of JPEG's 8×8 blocks (multiples of N/8 on
// either axis) are skipped.
func moireScore(pix []float64, n int) float64 {
	// Remove the mean and a Hann window against edge leakage.
	var mean float64
	for _, v := range pix {
		mean += v
	}
	mean /= float64(len(pix))
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
	}
	data := make([]complex128, n*n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			data[y*n+x] = complex((pix[y*n+x]-mean)*win[x]*win[y], 0)
		}
	}
	fft2(data, n)
	mag := make([]float64, n*n)
	for i, c := range data {
		mag[i] = cmplx.Abs(c)
	}
	// Rings of integer radius; the peak is compared with its ring's median.
	fmin, fmax := float64(n)/moireMaxPeriod, float64(n)/moireMinPeriod
	rings := map[int][]float64{}
	type cand struct {
		v float64
		r int
	}
	var cands []cand
	block := n / 8
	for v := -n / 2; v < n/2; v++ {
		for u := 0; u < n/2; u++ { // half plane: the spectrum is symmetric
			f := math.Hypot(float64(u), float64(v))
			if f < fmin || f > fmax {
				continue
			}
			if nearMultiple(u, block) || nearMultiple(v, block) {
				continue
			}
			m := mag[((v+n)%n)*n+u]
			ri := int(math.Round(f))
			rings[ri] = append(rings[ri], m)
			cands = append(cands, cand{m, ri})
		}
	}
	med := map[int]float64{}
	for r, xs := range rings {
		slices.Sort(xs)
		med[r] = xs[len(xs)/2]
	}
	best := 0.0
	for _, c := range cands {
		if m := med[c.r]; m > 0 {
			best = math.Max(best, c.v/m)
		}
	}
	if best <= 0 {
		return 0
	}
	return math.Log10(best)
}

func nearMultiple(k, m int) bool {
	if k < 0 {
		k = -k
	}
	r := k % m
	return k >= m && (r == 0 || r == 1 || r == m-1)
}

// fft2 is an in-place 2-D FFT of an n×n row-major array (n a power of 2).
func fft2(a []complex128, n int) {
	row := make([]complex128, n)
	for y := 0; y < n; y++ {
		copy(row, a[y*n:(y+1)*n])
		fft(row)
		copy(a[y*n:], row)
	}
	for x := 0; x < n; x++ {
		for y := 0; y < n; y++ {
			row[y] = a[y*n+x]
		}
		fft(row)
		for y := 0; y < n; y++ {
			a[y*n+x] = row[y]
		}
	}
}

// fft is an in-place iterative radix-2 FFT (len(a) a power of 2).
func fft(a []complex128) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := 0; k < size/2; k++ {
				u, v := a[start+k], a[start+k+size/2]*wk
				a[start+k], a[start+k+size/2] = u+v, u-v
				wk *= w
			}
		}
	}
}
