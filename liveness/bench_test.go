package liveness

import (
	"context"
	"testing"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/face/synth"
)

// The benchmarks run on one OpenCV thread: the figures are per core.
// Budgets (issue 5): Decide on 4 analysed samples ≤ 100 ms; the whole job
// from 4 raw 640×480 samples ≤ 300 ms.

// BenchmarkDecide is the decision on 4 analysed samples of a live turn
// following a 3-direction challenge (landmark fits, point tracking, PAD).
func BenchmarkDecide(b *testing.B) {
	face.SetThreads(1)
	s := live(b, challengeTags, followPoses...)
	cfg := DefaultConfig()
	for b.Loop() {
		if d := decide(&cfg, s, true); !d.Live {
			b.Fatal(d.Reasons)
		}
	}
}

// BenchmarkJob is a whole job: Analyze on 4 raw 640×480 samples (a head
// rendered from gocv's face.jpg turning through a challenge), then Decide.
func BenchmarkJob(b *testing.B) {
	c := checker(b)
	face.SetThreads(1)
	mats := jobFrames(b, c.e)
	ctx := context.Background()
	samples := make([]Sample, len(mats))
	for b.Loop() {
		for i, m := range mats {
			var err error
			if samples[i], err = c.Analyze(ctx, m, challengeTags[i]); err != nil {
				b.Fatal(err)
			}
		}
		if d := c.Decide(samples, true); !d.Live {
			b.Fatal(d.Reasons)
		}
	}
}

// BenchmarkAnalyze is the per-sample work at upload time.
func BenchmarkAnalyze(b *testing.B) {
	c := checker(b)
	face.SetThreads(1)
	mats := jobFrames(b, c.e)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Analyze(ctx, mats[0], TagAny); err != nil {
			b.Fatal(err)
		}
	}
}

// jobFrames renders face.jpg's head at the challenge poses; the Mats are
// closed when the benchmark ends.
func jobFrames(b *testing.B, e *face.Engine) []gocv.Mat {
	b.Helper()
	img, err := imgio.ReadFile(sampleImage(b, "face.jpg"), imgio.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := face.MatFromImage(img)
	if err != nil {
		b.Fatal(err)
	}
	fs, err := e.Analyze(context.Background(), m, face.Options{})
	m.Close()
	if err != nil {
		b.Fatal(err)
	}
	f, ok := fs.PrimaryFace()
	if !ok {
		b.Fatal("no face in face.jpg")
	}
	h, err := synth.NewHead(img, [68]geom.Point(f.Landmarks))
	if err != nil {
		b.Fatal(err)
	}
	var out []gocv.Mat
	for _, p := range followPoses {
		fm, err := face.MatFromImage(h.Render(p, synth.RenderOptions{}))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, fm)
	}
	b.Cleanup(func() {
		for _, m := range out {
			m.Close()
		}
	})
	return out
}

// BenchmarkFrameSides is the frame check of one 640×480 sample (part of
// Analyze).
func BenchmarkFrameSides(b *testing.B) {
	c := checker(b)
	face.SetThreads(1)
	mats := jobFrames(b, c.e)
	s, err := c.Analyze(context.Background(), mats[0], TagAny)
	if err != nil || !s.Usable() {
		b.Fatalf("%v %q", err, s.Problem)
	}
	for b.Loop() {
		frameSides(mats[0], &s.Face)
	}
}
