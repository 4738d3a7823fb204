package face

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestBlazeBoxCalibration re-measures on LFW how BlazeFace's box relates to
// the RFB detector's square box (which the landmark model was trained on)
// and fails if blazeToSquare or blazeShiftY drift from the data. Run with -v
// to reprint the figures.
func TestBlazeBoxCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("calibration reads 372 LFW images")
	}
	e := engine(t)
	dir := realData(t, "identities", "lfw_deepfunneled_min10")
	persons, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	anchors := newBlazeAnchors()
	var side, dy []float64
	for _, p := range persons {
		files, _ := os.ReadDir(filepath.Join(dir, p.Name()))
		for _, f := range files[:min(3, len(files))] {
			m := readMat(t, filepath.Join(dir, p.Name(), f.Name()))
			s, err := e.Analyze(context.Background(), m, Options{})
			pf, ok := s.PrimaryFace()
			if err != nil || !ok {
				m.Close()
				continue
			}
			_ = e.with(context.Background(), func(w *worker) error {
				dets, err := w.detectBlaze(m, anchors)
				if err != nil || len(dets) == 0 {
					return err
				}
				b := dets[0].Box
				if b.iou(pf.Box) < 0.3 { // a background face
					return nil
				}
				_, bcy := b.Center()
				_, cy := pf.Box.Center()
				side = append(side, pf.Box.W/b.H)
				dy = append(dy, (cy-bcy)/b.H)
				return nil
			})
			m.Close()
		}
	}
	if len(side) < 300 {
		t.Fatalf("BlazeFace matched only %d LFW faces", len(side))
	}
	ms, md := median(side), median(dy)
	t.Logf("n=%d: square side = %.3f × BlazeFace box height (const %.3f); centre shift = %.3f heights (const %.3f)",
		len(side), ms, blazeToSquare, md, blazeShiftY)
	if math.Abs(ms-blazeToSquare) > 0.04 || math.Abs(md-blazeShiftY) > 0.03 {
		t.Errorf("constants drifted from the data: set blazeToSquare ≈ %.3f, blazeShiftY ≈ %.3f", ms, md)
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
