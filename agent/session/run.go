package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/capture"
	"github.com/bwsagent/bwsagent/face/geom"
)

// Phases of a session.
const (
	PhaseStarting   = "starting"
	PhasePrompting  = "prompting"
	PhasePerforming = "performing"
	PhaseSucceeded  = "succeeded"
	PhaseFailed     = "failed"
	PhaseCanceled   = "canceled"
)

// Agent-side failure codes in State.Error (BWS's own codes, such as
// LiveDetectionFailed, come in State.Result.Error).
const (
	ErrCodeNoMovement    = "NoMovement"         // nothing captured for NoMovementTimeout
	ErrCodeTooManyUpload = "TooManyUploads"     // MaxUploadsPerTry samples refused
	ErrCodeCapture       = "CaptureFailed"      // camera or tracker failure
	ErrCodeService       = "ServiceError"       // upload or task call failed (HTTP status)
	ErrCodeNoChallenge   = "ChallengeExhausted" // the token has fewer challenge arrays than tries
)

// State is a session's public snapshot (GET /sessions/{id}).
type State struct {
	ID       string    `json:"id"`
	Task     string    `json:"task"`
	Phase    string    `json:"state"`
	Try      int       `json:"try"` // 1-based
	MaxTries int       `json:"maxTries"`
	Prompt   string    `json:"prompt,omitempty"` // any, up, down, left, right
	Step     int       `json:"step"`             // samples taken this try
	Steps    int       `json:"steps"`            // samples needed per try
	Uploads  int       `json:"uploads"`          // uploads this try, accepted or not
	Sequence []string  `json:"sequence,omitempty"`
	Result   *Result   `json:"result,omitempty"` // the last task call's answer
	Error    string    `json:"error,omitempty"`  // agent-side failure code
	Detail   string    `json:"detail,omitempty"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Done     bool      `json:"done"`
}

// Event is one published step. Type is state, prompt, countdown, progress,
// capture or result; Data holds the type's fields.
type Event struct {
	Seq     int       `json:"seq"`
	Type    string    `json:"type"`
	Session string    `json:"session"`
	Time    time.Time `json:"time"`
	Data    any       `json:"data"`
}

// maxEvents bounds a session's event log (a session has a few dozen).
const maxEvents = 1024

// Session is one run of the capture flow.
type Session struct {
	m      *Manager
	id     string
	op     bws.Operation
	token  string
	claims claims
	cancel context.CancelFunc
	log    *slog.Logger
	// maxTries is fixed at creation (also in st, for readers).
	maxTries int

	mu      sync.Mutex
	st      State
	events  []Event
	dropped int           // events before events[0] that were dropped
	changed chan struct{} // closed and replaced on every event
	exited  chan struct{} // closed once run has returned and released the camera
}

func newSession(m *Manager, id string, op bws.Operation, tok string, c claims) *Session {
	now := m.clock.Now()
	s := &Session{
		m: m, id: id, op: op, token: tok, claims: c, changed: make(chan struct{}), exited: make(chan struct{}), maxTries: max(1, c.Task.MaxTries()),
		log: m.log.With(slog.String("session", id), slog.String("task", op.String())),
		st: State{ID: id, Task: op.String(), Phase: PhaseStarting, MaxTries: max(1, c.Task.MaxTries()),
			Started: now, Updated: now},
	}
	return s
}

// ID is the session id.
func (s *Session) ID() string { return s.id }

// State returns a snapshot.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Sequence = append([]string(nil), st.Sequence...)
	return st
}

// eventsSince returns the events with Seq ≥ from, a channel closed on the
// next event, and whether the session has ended.
func (s *Session) eventsSince(from int) ([]Event, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := max(0, from-s.dropped)
	var out []Event
	if i < len(s.events) {
		out = append(out, s.events[i:]...)
	}
	return out, s.changed, s.st.Done
}

// emit records and publishes an event; update, if set, changes the state
// first. A "state" event follows every state change so a page that joins
// late (the preview's sticky event) sees the whole picture.
func (s *Session) emit(typ string, data any, update func(*State)) {
	s.emitThen(typ, data, update, nil)
}

// emitThen is emit followed, under the same lock, by the event then makes
// from the updated state: a reader that sees the state sees that event too.
func (s *Session) emitThen(typ string, data any, update func(*State), then func(State) (string, any)) {
	s.mu.Lock()
	now := s.m.clock.Now()
	var evs []Event
	add := func(t string, d any) {
		e := Event{Seq: s.dropped + len(s.events), Type: t, Session: s.id, Time: now, Data: d}
		if len(s.events) >= maxEvents {
			s.events = s.events[1:]
			s.dropped++
			e.Seq = s.dropped + len(s.events)
		}
		s.events = append(s.events, e)
		evs = append(evs, e)
	}
	if typ != "" {
		add(typ, data)
	}
	if update != nil {
		update(&s.st)
		s.st.Updated = now
		st := s.st
		st.Sequence = append([]string(nil), st.Sequence...)
		add("state", st)
	}
	if then != nil {
		add(then(s.st))
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if p := s.m.deps.Publisher; p != nil {
		for _, e := range evs {
			// The preview protocol is flat: {"type":…, "session":…, …}.
			if err := p.Publish(flat(e)); err != nil {
				s.log.Warn("publish event", "err", err)
			}
		}
	}
}

// flat turns an Event into the preview's flat JSON object.
func flat(e Event) map[string]any {
	out := map[string]any{}
	if b, err := json.Marshal(e.Data); err == nil {
		_ = json.Unmarshal(b, &out)
	}
	out["type"] = e.Type
	out["session"] = e.Session
	out["seq"] = e.Seq
	return out
}

// errFail ends a session with an agent-side code.
type errFail struct {
	code string
	err  error
}

func (e *errFail) Error() string { return e.code + ": " + e.err.Error() }
func (e *errFail) Unwrap() error { return e.err }

func fail(code string, err error) error { return &errFail{code: code, err: err} }

func (s *Session) run(ctx context.Context) {
	defer close(s.exited)
	defer s.m.finished(s)
	src := s.m.deps.Frames("session-" + s.id[:8])
	defer src.Close()
	s.log.Info("capture session started", "max_tries", s.maxTries, "challenge", s.claims.Challenge != nil)

	res, err := s.flow(ctx, src)
	var final func(*State)
	switch {
	case err == nil:
		final = func(st *State) {
			st.Result = &res
			st.Phase = PhaseFailed
			if res.Success {
				st.Phase = PhaseSucceeded
			}
		}
	case ctx.Err() != nil:
		final = func(st *State) { st.Phase, st.Error = PhaseCanceled, "Canceled" }
	default:
		code := ErrCodeCapture
		var f *errFail
		if errors.As(err, &f) {
			code = f.code
		}
		final = func(st *State) { st.Phase, st.Error, st.Detail = PhaseFailed, code, err.Error() }
	}
	// The result event goes with the final state: an SSE reader stops
	// once it has seen Done, so a result emitted later could be missed.
	s.emitThen("", nil, func(st *State) {
		final(st)
		st.Prompt = ""
		st.Done = true
	}, func(st State) (string, any) {
		return "result", map[string]any{"state": st.Phase, "success": st.Phase == PhaseSucceeded, "result": st.Result, "error": st.Error}
	})
	st := s.State()
	s.log.Info("capture session ended", "state", st.Phase, "error", st.Error, "result", st.Result)
	if s.m.cfg.WebhookURL != "" {
		s.m.wg.Go(func() { s.m.postWebhook(s.m.base, st) })
	}
}

// flow runs the tries; it returns the last task result, or an error when
// the session could not get that far.
func (s *Session) flow(ctx context.Context, src FrameSource) (Result, error) {
	var last Result
	for try := 0; try < s.maxTries; try++ {
		tags := []string{"any", "any"} // without challenge: two images, BWS UI's minimum for liveness
		if ch := s.claims.Challenge; ch != nil {
			if try >= len(ch) {
				return last, fail(ErrCodeNoChallenge, fmt.Errorf("token has %d challenge arrays for %d tries", len(ch), s.maxTries))
			}
			tags = []string{"any"}
			for _, d := range ch[try] {
				tags = append(tags, d.String())
			}
		}
		s.emit("", nil, func(st *State) {
			st.Try, st.Steps, st.Step, st.Uploads, st.Sequence, st.Phase = try+1, len(tags), 0, 0, tags, PhasePrompting
		})
		if err := s.captureTry(ctx, src, try+1, tags); err != nil {
			return last, err
		}
		s.emit("", nil, func(st *State) { st.Phase, st.Prompt = PhasePerforming, "" })
		res, err := s.m.deps.BWS.Perform(ctx, s.token, s.op)
		if err != nil {
			return last, fail(ErrCodeService, fmt.Errorf("%s: %w", s.op, err))
		}
		last = res
		s.emit("", nil, func(st *State) { st.Result = &res })
		if res.Success || res.Error == "NoTemplateAvailable" {
			return res, nil
		}
		s.log.Info("capture session try failed", "try", try+1, "error", res.Error)
	}
	return last, nil
}

// reference is what the next capture is compared with: the last sample.
type reference struct {
	pose   geom.Pose
	motion grey
}

// captureTry prompts for each tag in turn and uploads one sample per tag.
func (s *Session) captureTry(ctx context.Context, src FrameSource, try int, tags []string) error {
	cfg := s.m.cfg
	var ref *reference
	uploads := 0
	for k, tag := range tags {
		promptAt := s.m.clock.Now()
		s.emit("prompt", map[string]any{"direction": tag, "step": k + 1, "steps": len(tags), "try": try}, func(st *State) {
			st.Prompt, st.Step = tag, k
		})
		lastCount := -1
		for {
			deadline := promptAt.Add(cfg.NoMovementTimeout)
			f, err := s.nextFrame(ctx, src, deadline)
			if err != nil {
				return err
			}
			now := s.m.clock.Now()
			if left := int(deadline.Sub(now).Seconds() + 0.999); left != lastCount && left >= 0 {
				lastCount = left
				s.emit("countdown", map[string]any{"remaining": left, "prompt": tag}, nil)
			}
			if now.Before(promptAt.Add(cfg.PromptPause)) {
				_ = f.Close()
				continue
			}
			done, next, err := s.consider(ctx, &f, tag, k, ref, &uploads)
			_ = f.Close()
			if err != nil {
				return err
			}
			if done {
				ref = next
				break
			}
		}
	}
	s.emit("progress", map[string]any{"step": len(tags), "steps": len(tags), "try": try}, func(st *State) { st.Step = len(tags) })
	return nil
}

// consider decides whether frame f is the sample for tag and uploads it.
// done means the tag is satisfied; next is the new reference.
func (s *Session) consider(ctx context.Context, f *capture.Frame, tag string, k int, ref *reference, uploads *int) (bool, *reference, error) {
	cfg := s.m.cfg
	if cfg.Mirror {
		// Selfie view, as BWS UI: the sample is what the person sees, so a
		// move to their left is "left" in the sample.
		gocv.Flip(f.Mat, &f.Mat, 1)
	}
	fc, ok, err := s.m.deps.Tracker.Track(ctx, f.Mat)
	if err != nil {
		return false, nil, fail(ErrCodeCapture, fmt.Errorf("track: %w", err))
	}
	if !ok {
		return false, nil, nil // no face in view: wait (the timeout runs)
	}
	var mimg grey
	needMotion := cfg.Trigger != TriggerPose
	if needMotion || ref == nil {
		mimg, _ = motionImage(f.Mat)
	}
	if ref != nil {
		poseOK, _, _ := poseTrigger(ref.pose, fc.Pose, tag, cfg.PoseDelta)
		motionOK := false
		if needMotion {
			motionOK = MotionPercent(ref.motion.pix, mimg.pix, mimg.w, mimg.h) > cfg.MotionThreshold
		}
		var fire bool
		switch cfg.Trigger {
		case TriggerPose:
			fire = poseOK
		case TriggerMotion:
			fire = motionOK
		case TriggerEither:
			fire = poseOK || motionOK
		case TriggerBoth:
			fire = poseOK && motionOK
		}
		if !fire {
			return false, nil, nil
		}
	}
	jpg, err := encodeJPEG(f.Mat, cfg.JPEGQuality)
	if err != nil {
		return false, nil, fail(ErrCodeCapture, err)
	}
	*uploads++
	if *uploads > cfg.MaxUploadsPerTry {
		return false, nil, fail(ErrCodeTooManyUpload, fmt.Errorf("%d uploads in one try", *uploads-1))
	}
	up, err := s.m.deps.BWS.Upload(ctx, s.token, dataURL(jpg), tag, k)
	if err != nil {
		return false, nil, fail(ErrCodeService, fmt.Errorf("upload: %w", err))
	}
	s.emit("capture", map[string]any{"tag": tag, "index": k, "accepted": up.Accepted, "error": up.Error, "warnings": nonNil(up.Warnings),
		"pose": map[string]float64{"yaw": fc.Pose.Yaw, "pitch": fc.Pose.Pitch}}, func(st *State) {
		st.Uploads = *uploads
		if up.Accepted {
			st.Step = k + 1
		}
	})
	if !up.Accepted {
		return false, nil, nil // BWS UI asks again: same prompt, same reference
	}
	return true, &reference{pose: fc.Pose, motion: mimg}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func encodeJPEG(m gocv.Mat, q int) ([]byte, error) {
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, q})
	if err != nil {
		return nil, fmt.Errorf("encode sample: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

var errNoMovement = errors.New("no movement")

// nextFrame waits for the newest frame until deadline (on the injected
// clock): past it the session aborts as BWS UI does.
func (s *Session) nextFrame(ctx context.Context, src FrameSource, deadline time.Time) (capture.Frame, error) {
	wait := deadline.Sub(s.m.clock.Now())
	if wait <= 0 {
		return capture.Frame{}, fail(ErrCodeNoMovement, fmt.Errorf("%w for %s", errNoMovement, s.m.cfg.NoMovementTimeout))
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-s.m.clock.After(wait):
			cancel(errNoMovement)
		case <-stop:
		}
	})
	f, err := src.Latest(wctx)
	close(stop)
	wg.Wait()
	if err != nil {
		if ctx.Err() != nil {
			return capture.Frame{}, ctx.Err()
		}
		if errors.Is(context.Cause(wctx), errNoMovement) {
			return capture.Frame{}, fail(ErrCodeNoMovement, fmt.Errorf("%w for %s", errNoMovement, s.m.cfg.NoMovementTimeout))
		}
		return capture.Frame{}, fail(ErrCodeCapture, fmt.Errorf("camera: %w", err))
	}
	return f, nil
}
