package session_test

import (
	"context"
	"image"
	"slices"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/session"
	"github.com/bwsagent/bwsagent/agent/session/sessiontest"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/synth"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

// synthHead builds a 3-D head from gocv's frontal face photo and the
// engine's landmarks on it.
func synthHead(t *testing.T) (*face.Engine, *synth.Head, image.Image) {
	t.Helper()
	e, err := face.New(face.Config{ModelsDir: testenv.ModelsDir(), Workers: 1})
	if err != nil {
		testenv.MissingModels(t, err)
	}
	t.Cleanup(func() { e.Close() })
	m := gocv.IMRead(testenv.GocvImage(t, "face.jpg"), gocv.IMReadColor)
	defer m.Close()
	s, err := e.Analyze(context.Background(), m, face.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := s.PrimaryFace()
	if !ok {
		t.Fatal("no face in face.jpg")
	}
	img, err := m.ToImage()
	if err != nil {
		t.Fatal(err)
	}
	h, err := synth.NewHead(img, [68]geom.Point(f.Landmarks))
	if err != nil {
		t.Fatal(err)
	}
	return e, h, img
}

// TestSynthetic runs whole sessions on rendered video with the real
// tracker: the camera is not mirrored, the session mirrors, and the fake
// service measures the uploaded samples' own motion against their tags,
// so a sign error anywhere in the chain fails the bona-fide case.
func TestSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("renders video")
	}
	e, head, photo := synthHead(t)
	ch := bws.Challenge{{bws.Left, bws.Right, bws.Down}, {bws.Up, bws.Down, bws.Right}}
	for _, tc := range []struct {
		name      string
		person    func() *sessiontest.Person
		wantPhase string
		wantErr   string
		wantCalls []string
	}{
		{"bona fide head follows the prompts", func() *sessiontest.Person { return &sessiontest.Person{Head: head, Mirrored: true, Step: 3} },
			session.PhaseSucceeded, "", []string{"upload any 0", "upload left 1", "upload right 2", "upload down 3", "enroll"}},
		{"photo attack never moves", func() *sessiontest.Person { return &sessiontest.Person{Photo: photo, Frozen: true} },
			session.PhaseFailed, session.ErrCodeNoMovement, []string{"upload any 0"}},
		// A stream mirrored twice (camera and session): the head turns the
		// wrong way in the samples, so "left" never triggers.
		{"double mirroring is caught", func() *sessiontest.Person { return &sessiontest.Person{Head: head, Mirrored: false, Step: 3} },
			session.PhaseFailed, session.ErrCodeNoMovement, []string{"upload any 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.person()
			defer p.Close()
			clock := sessiontest.NewClock()
			tr := e.NewTracker()
			fake := &sessiontest.FakeBWS{Tracker: tr}
			m, err := session.NewManager(session.Config{Mirror: true, NoMovementTimeout: 5 * time.Second}, session.Deps{
				Frames: func(string) session.FrameSource {
					return &sessiontest.ScriptedFrames{P: p, Clock: clock, Interval: 100 * time.Millisecond}
				},
				Tracker: tr, BWS: fake, Publisher: p, Clock: clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			tok := token(t, bws.OpEnroll, 2, ch)
			s, err := m.Start(context.Background(), session.StartRequest{Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			st := wait(t, s)
			t.Logf("calls %v; state %s %s %+v", fake.CallLog(), st.Phase, st.Error, st.Result)
			if st.Phase != tc.wantPhase || st.Error != tc.wantErr {
				t.Fatalf("state %s %q (%s), want %s %q", st.Phase, st.Error, st.Detail, tc.wantPhase, tc.wantErr)
			}
			if want := tc.wantCalls; want != nil && !slices.Equal(fake.CallLog(), want) {
				t.Errorf("calls %q, want %q", fake.CallLog(), want)
			}
		})
	}
}
