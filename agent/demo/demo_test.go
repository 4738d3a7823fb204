package demo

import (
	"context"
	"testing"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

// The loop visits every direction and returns to the centre between them,
// at most degPerSec/fps per frame.
func TestPath(t *testing.T) {
	p := Path(25)
	var minYaw, maxYaw, minPitch, maxPitch float64
	for i, q := range p {
		minYaw, maxYaw = min(minYaw, q.Yaw), max(maxYaw, q.Yaw)
		minPitch, maxPitch = min(minPitch, q.Pitch), max(maxPitch, q.Pitch)
		prev := p[(i+len(p)-1)%len(p)]
		if d := max(abs(q.Yaw-prev.Yaw), abs(q.Pitch-prev.Pitch)); d > degPerSec/25+1e-9 {
			t.Fatalf("frame %d jumps %.1f°", i, d)
		}
		if q.Yaw != 0 && q.Pitch != 0 {
			t.Fatalf("frame %d turns diagonally: %+v", i, q)
		}
	}
	if minYaw > -15 || maxYaw < 15 || minPitch > -12 || maxPitch < 12 {
		t.Errorf("range yaw %g..%g pitch %g..%g, want every direction past 12°", minYaw, maxYaw, minPitch, maxPitch)
	}
}

func abs(x float64) float64 { return max(x, -x) }

// Prompts steer the head; directions are the (mirrored) sample's.
func TestPublishFollowsPrompts(t *testing.T) {
	s := NewSource(nil, 25)
	prompt := func(d string) { _ = s.Publish(map[string]any{"type": "prompt", "direction": d}) }
	run := func() geom.Pose {
		var p geom.Pose
		for range 25 {
			p = s.nextPose()
		}
		return p
	}
	for _, tc := range []struct {
		prompt string
		want   geom.Pose
	}{
		{"any", geom.Pose{}},
		{"left", geom.Pose{Yaw: promptTurn}},
		{"up", geom.Pose{Yaw: promptTurn, Pitch: promptTurn}},
		{"right", geom.Pose{Pitch: promptTurn}},
		{"down", geom.Pose{}},
		{"down", geom.Pose{Pitch: -promptTurn}},
		{"down", geom.Pose{Pitch: -maxFollowPitch}},
	} {
		prompt(tc.prompt)
		if got := run(); got != tc.want {
			t.Fatalf("after %q: pose %+v, want %+v", tc.prompt, got, tc.want)
		}
	}
	// Without challenge the second "any" asks for some move.
	_ = s.Publish(map[string]any{"type": "prompt", "direction": "any", "step": 2.0})
	if got := run(); got.Yaw == 0 || got.Pitch != -maxFollowPitch {
		t.Fatalf("after a second \"any\": pose %+v, want a yaw turn", got)
	}
	_ = s.Publish(map[string]any{"type": "result"})
	run()
	if s.following || s.returning {
		t.Errorf("after the result: following %v returning %v, want back in the loop", s.following, s.returning)
	}
}

// The demo source renders frames with a face the engine finds.
func TestSourceRendersAFace(t *testing.T) {
	e, err := face.New(face.Config{ModelsDir: testenv.ModelsDir(), Workers: 1})
	if err != nil {
		testenv.MissingModels(t, err)
	}
	defer e.Close()
	ctx := context.Background()
	head, err := NewHead(ctx, e, 640, 480)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSource(head, 1000)
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		f, err := s.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		smp, err := e.Analyze(ctx, f.Mat, face.Options{})
		f.Close()
		if _, ok := smp.PrimaryFace(); err != nil || !ok || f.Width != 640 || f.Height != 480 {
			t.Fatalf("frame %d: %dx%d face %v err %v", i, f.Width, f.Height, ok, err)
		}
	}
}
