package rates

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

func TestRates(t *testing.T) {
	s := Scores{
		Genuine:  []float64{0.9, 0.8, 0.7, 0.6, 0.2},
		Impostor: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05, 0.0, -0.1, -0.2},
	}
	tests := []struct {
		fmr, wantFNMR, wantT float64
	}{
		{0.1, 0.2, 0.5}, // one impostor (0.6) above 0.5; genuine 0.2 rejected
		{0.0, 0.4, 0.6}, // none above 0.6: 0.6 and 0.2 rejected (accept is score > t)
		{0.2, 0.2, 0.4}, //
		{1.0, 0.0, math.Inf(-1)},
	}
	for _, tt := range tests {
		fnmr, thr := s.FNMRAtFMR(tt.fmr)
		if math.Abs(fnmr-tt.wantFNMR) > 1e-9 || thr != tt.wantT {
			t.Errorf("FNMRAtFMR(%v) = %v at %v, want %v at %v", tt.fmr, fnmr, thr, tt.wantFNMR, tt.wantT)
		}
	}
	fmr, fnmr := s.At(0.55)
	if math.Abs(fmr-0.1) > 1e-9 || math.Abs(fnmr-0.2) > 1e-9 {
		t.Errorf("At(0.55) = %v, %v", fmr, fnmr)
	}
}

func TestEEROfGaussians(t *testing.T) {
	// Two unit Gaussians 2σ apart cross at 1σ from each: EER = Φ(−1) ≈ 15.87 %.
	r := rand.New(rand.NewSource(1))
	var s Scores
	for i := 0; i < 20000; i++ {
		s.Genuine = append(s.Genuine, 2+r.NormFloat64())
		s.Impostor = append(s.Impostor, r.NormFloat64())
	}
	eer, thr := s.EER()
	if math.Abs(eer-0.1587) > 0.01 || math.Abs(thr-1) > 0.1 {
		t.Fatalf("EER = %.4f at %.3f, want ≈0.1587 at ≈1", eer, thr)
	}
	det := s.DET()
	for i := 1; i < len(det); i++ {
		if det[i].FMR > det[i-1].FMR || det[i].FNMR < det[i-1].FNMR {
			t.Fatalf("DET not monotone at %d: %+v then %+v", i, det[i-1], det[i])
		}
	}
	path := filepath.Join(t.TempDir(), "det.png")
	if err := PlotDET(path, "test", "FMR", "FNMR", []Curve{{"gauss", s}}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
		t.Fatalf("plot not written: %v", err)
	}
}

func TestEmpty(t *testing.T) {
	var s Scores
	if eer, _ := s.EER(); !math.IsNaN(eer) {
		t.Errorf("EER of no scores = %v, want NaN", eer)
	}
	if s.DET() != nil {
		t.Error("DET of no scores not nil")
	}
}
