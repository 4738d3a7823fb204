package face

import (
	"context"
	"testing"

	"gocv.io/x/gocv"
)

// The benchmarks run on one OpenCV thread: the figures are per core.
// face.jpg is a 640×480 webcam-style frame with one face.

func benchFrame(b *testing.B) (*Engine, gocv.Mat) {
	b.Helper()
	e := engine(b)
	SetThreads(1)
	return e, readMat(b, sampleImage(b, "face.jpg"))
}

// BenchmarkTrack is the per-frame tracking path: BlazeFace, 68 landmarks, PnP pose, quality.
func BenchmarkTrack(b *testing.B) {
	e, m := benchFrame(b)
	defer m.Close()
	tr := e.NewTracker()
	for b.Loop() {
		if _, ok, err := tr.Track(context.Background(), m); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkHaar is OpenCV's Haar frontal-face cascade on the same frame: the baseline.
func BenchmarkHaar(b *testing.B) {
	_, m := benchFrame(b)
	defer m.Close()
	c, err := NewHaarBaseline()
	if err != nil {
		b.Skip(err)
	}
	defer c.Close()
	for b.Loop() {
		c.Detect(m)
	}
}

// BenchmarkAnalyze is the full per-sample analysis: RFB detection, landmarks,
// pose, quality, embedding (with its mirror) and passive PAD.
func BenchmarkAnalyze(b *testing.B) {
	e, m := benchFrame(b)
	defer m.Close()
	for b.Loop() {
		if _, err := e.Analyze(context.Background(), m, Options{Embed: true, PAD: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStages(b *testing.B) {
	e, m := benchFrame(b)
	defer m.Close()
	s, err := e.Analyze(context.Background(), m, Options{})
	if err != nil || s.Primary < 0 {
		b.Fatal(err)
	}
	f := s.Faces[s.Primary]
	w, _ := e.acquire(context.Background())
	defer e.release(w)
	anchors := newBlazeAnchors()
	for _, st := range []struct {
		name string
		fn   func() error
	}{
		{"DetectRFB", func() error { _, err := w.detectRFB(m, 0.65); return err }},
		{"DetectBlaze", func() error { _, err := w.detectBlaze(m, anchors); return err }},
		{"Landmarks", func() error { _, err := w.landmarks68(m, f.Box); return err }},
		{"Pose", func() error { poseOf(&f.Landmarks, 640, 480); return nil }},
		{"Quality", func() error { measureQuality(m, f.Box); return nil }},
		{"Embed", func() error { _, err := w.embed(m, &f.Landmarks); return err }},
		{"PAD", func() error { _, err := w.padScore(m, f.Box); return err }},
	} {
		b.Run(st.name, func(b *testing.B) {
			for b.Loop() {
				if err := st.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReleaseMemory(b *testing.B) {
	for b.Loop() {
		ReleaseMemory()
	}
}
