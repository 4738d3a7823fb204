// Package rates turns comparison scores into the error rates biometrics is
// judged by (ISO/IEC 19795-1 names): FMR/FNMR for recognition, APCER/BPCER
// for presentation-attack detection, the equal error rate, and DET curves.
// Scores are "higher means more alike" (or "more live").
package rates

import (
	"math"
	"sort"
)

// Scores holds the scores of mated (genuine, bona fide) and non-mated
// (impostor, attack) comparisons. A pair is accepted when score > threshold.
type Scores struct {
	Genuine  []float64
	Impostor []float64
}

// sorted returns ascending copies.
func (s Scores) sorted() (g, i []float64) {
	g = append([]float64(nil), s.Genuine...)
	i = append([]float64(nil), s.Impostor...)
	sort.Float64s(g)
	sort.Float64s(i)
	return g, i
}

// At returns FMR (impostors accepted) and FNMR (genuine rejected) at a threshold.
func (s Scores) At(threshold float64) (fmr, fnmr float64) {
	return fracAbove(s.Impostor, threshold), 1 - fracAbove(s.Genuine, threshold)
}

func fracAbove(xs []float64, t float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	n := 0
	for _, x := range xs {
		if x > t {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

// ThresholdAtFMR is the lowest threshold at which at most fmr of the
// impostor scores are accepted.
func (s Scores) ThresholdAtFMR(fmr float64) float64 {
	_, imp := s.sorted()
	if len(imp) == 0 {
		return math.Inf(-1)
	}
	k := int(math.Floor(fmr * float64(len(imp)))) // impostors allowed above
	if k >= len(imp) {
		return math.Inf(-1)
	}
	return imp[len(imp)-1-k]
}

// FNMRAtFMR is the false non-match rate at the threshold ThresholdAtFMR(fmr).
func (s Scores) FNMRAtFMR(fmr float64) (fnmr, threshold float64) {
	t := s.ThresholdAtFMR(fmr)
	_, fnmr = s.At(t)
	return fnmr, t
}

// EER is the equal error rate: where FMR and FNMR cross, averaged there.
func (s Scores) EER() (eer, threshold float64) {
	g, imp := s.sorted()
	if len(g) == 0 || len(imp) == 0 {
		return math.NaN(), math.NaN()
	}
	best := math.Inf(1)
	for _, t := range candidates(g, imp, 4000) {
		fmr := float64(len(imp)-upper(imp, t)) / float64(len(imp))
		fnmr := float64(upper(g, t)) / float64(len(g))
		if d := math.Abs(fmr - fnmr); d < best {
			best, eer, threshold = d, (fmr+fnmr)/2, t
		}
	}
	return eer, threshold
}

// upper is the number of xs (ascending) <= t.
func upper(xs []float64, t float64) int {
	return sort.Search(len(xs), func(i int) bool { return xs[i] > t })
}

// candidates are thresholds spread over the observed scores: every genuine
// score (they are few and decide FNMR) plus up to n impostor quantiles.
func candidates(g, imp []float64, n int) []float64 {
	out := append([]float64(nil), g...)
	step := max(1, len(imp)/n)
	for i := 0; i < len(imp); i += step {
		out = append(out, imp[i])
	}
	return append(out, imp[len(imp)-1])
}

// Point is one operating point of a DET curve.
type Point struct{ FMR, FNMR, Threshold float64 }

// DET returns the curve's operating points, FMR descending.
func (s Scores) DET() []Point {
	g, imp := s.sorted()
	if len(g) == 0 || len(imp) == 0 {
		return nil
	}
	ts := candidates(g, imp, 2000)
	sort.Float64s(ts)
	pts := make([]Point, 0, len(ts))
	for _, t := range ts {
		pts = append(pts, Point{
			FMR:       float64(len(imp)-upper(imp, t)) / float64(len(imp)),
			FNMR:      float64(upper(g, t)) / float64(len(g)),
			Threshold: t,
		})
	}
	return pts
}
