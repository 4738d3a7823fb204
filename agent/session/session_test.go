package session_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/session"
	"github.com/bwsagent/bwsagent/agent/session/sessiontest"
	"github.com/bwsagent/bwsagent/capture"
)

func TestMain(m *testing.M) {
	if os.Getenv("OPENCV_LOG_LEVEL") == "" {
		os.Setenv("OPENCV_LOG_LEVEL", "ERROR")
	}
	os.Exit(m.Run())
}

// recorder is a Publisher that keeps events and forwards them to the
// person in front of the camera.
type recorder struct {
	mu     sync.Mutex
	events []map[string]any
	next   session.Publisher
	// onEvent, if set before a session starts, sees each event as it is
	// published (on the session's goroutine).
	onEvent func(map[string]any)
}

func (r *recorder) Publish(v any) error {
	r.mu.Lock()
	if m, ok := v.(map[string]any); ok {
		r.events = append(r.events, m)
	}
	r.mu.Unlock()
	if m, ok := v.(map[string]any); ok && r.onEvent != nil {
		r.onEvent(m)
	}
	if r.next != nil {
		return r.next.Publish(v)
	}
	return nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if t := e["type"].(string); t != "state" && t != "countdown" {
			out = append(out, t+":"+fmt.Sprint(e["direction"], e["tag"]))
		}
	}
	return out
}

type rig struct {
	m      *session.Manager
	fake   *sessiontest.FakeBWS
	person *sessiontest.Person
	clock  *sessiontest.Clock
	rec    *recorder
}

// newRig wires a manager to a scripted person on a fake clock (100 ms a
// frame), a pose tracker and a fake BWS.
func newRig(t *testing.T, cfg session.Config, person *sessiontest.Person) *rig {
	t.Helper()
	clock := sessiontest.NewClock()
	tr := sessiontest.PoseTracker{P: person}
	fake := &sessiontest.FakeBWS{Tracker: tr, AppID: "app", AppSecret: "secret"}
	rec := &recorder{next: person}
	m, err := session.NewManager(cfg, session.Deps{
		Frames: func(string) session.FrameSource {
			return &sessiontest.ScriptedFrames{P: person, Clock: clock, Interval: 100 * time.Millisecond}
		},
		Tracker: tr, BWS: fake, Tokens: fake, Publisher: rec, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); person.Close() })
	return &rig{m: m, fake: fake, person: person, clock: clock, rec: rec}
}

// wait blocks until the session ends (its events say so).
func wait(t *testing.T, s *session.Session) session.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		st := s.State()
		if st.Done {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("session did not end: %+v", st)
		case <-time.After(2 * time.Millisecond): // polling real time; the session runs on the fake clock
		}
	}
}

func token(t *testing.T, op bws.Operation, tries int, ch bws.Challenge) string {
	t.Helper()
	tok, err := sessiontest.Token(op, tries, ch, "bws/12/4711")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestFlow(t *testing.T) {
	lrd := bws.Challenge{{bws.Left, bws.Right, bws.Down}, {bws.Up, bws.Down, bws.Right}}
	for _, tc := range []struct {
		name      string
		cfg       session.Config
		frozen    bool
		amp       float64
		tok       string
		wantPhase string
		wantErr   string // State.Error
		wantBWS   string // State.Result.Error
		wantCalls []string
	}{{
		name: "challenge followed",
		tok:  token(t, bws.OpEnroll, 2, lrd), wantPhase: session.PhaseSucceeded,
		wantCalls: []string{"upload any 0", "upload left 1", "upload right 2", "upload down 3", "enroll"},
	}, {
		name: "no challenge: two images",
		tok:  token(t, bws.OpVerify, 1, nil), wantPhase: session.PhaseSucceeded,
		wantCalls: []string{"upload any 0", "upload any 1", "verify"},
	}, {
		name: "photo never moves: abort after the timeout", frozen: true,
		tok: token(t, bws.OpEnroll, 3, lrd), wantPhase: session.PhaseFailed, wantErr: session.ErrCodeNoMovement,
		wantCalls: []string{"upload any 0"},
	}, {
		name: "too small moves fail at the service, retried with the next array", amp: 7,
		cfg: session.Config{PoseDelta: 2}, tok: token(t, bws.OpEnroll, 2, lrd), wantPhase: session.PhaseSucceeded,
	}, {
		name: "motion-only trigger on a blank image never fires",
		cfg:  session.Config{Trigger: session.TriggerMotion, NoMovementTimeout: 5 * time.Second},
		tok:  token(t, bws.OpEnroll, 1, lrd), wantPhase: session.PhaseFailed, wantErr: session.ErrCodeNoMovement,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cfg, &sessiontest.Person{Frozen: tc.frozen, Amplitude: tc.amp})
			start := r.clock.Now()
			s, err := r.m.Start(context.Background(), session.StartRequest{Token: tc.tok})
			if err != nil {
				t.Fatal(err)
			}
			st := wait(t, s)
			if st.Phase != tc.wantPhase || st.Error != tc.wantErr {
				t.Fatalf("state %s error %q (%s), want %s %q", st.Phase, st.Error, st.Detail, tc.wantPhase, tc.wantErr)
			}
			if tc.wantBWS != "" && (st.Result == nil || st.Result.Error != tc.wantBWS) {
				t.Errorf("result %+v, want error %s", st.Result, tc.wantBWS)
			}
			if tc.wantCalls != nil && !slices.Equal(r.fake.CallLog(), tc.wantCalls) {
				t.Errorf("calls %q, want %q", r.fake.CallLog(), tc.wantCalls)
			}
			if tc.wantErr == session.ErrCodeNoMovement {
				timeout := tc.cfg.NoMovementTimeout
				if timeout == 0 {
					timeout = 30 * time.Second
				}
				if d := r.clock.Now().Sub(start); d < timeout || d > timeout+5*time.Second {
					t.Errorf("aborted after %s of session time, want about %s after the last prompt", d, timeout)
				}
			}
			t.Logf("events %v", r.rec.types())
		})
	}
}

// TestRetryUsesNextArray: a first try whose moves the service rejects is
// followed by a second try with the second challenge array.
func TestRetryUsesNextArray(t *testing.T) {
	ch := bws.Challenge{{bws.Left, bws.Right}, {bws.Up, bws.Down}}
	p := &sessiontest.Person{Amplitude: 4} // 4° moves: the agent (≥3°) captures, the service (≥5°) refuses
	r := newRig(t, session.Config{PoseDelta: 3}, p)
	r.fake.MinMove = 5
	s, err := r.m.Start(context.Background(), session.StartRequest{Token: token(t, bws.OpVerify, 2, ch), Task: "verify"})
	if err != nil {
		t.Fatal(err)
	}
	st := wait(t, s)
	want := []string{"upload any 0", "upload left 1", "upload right 2", "verify", "upload any 0", "upload up 1", "upload down 2", "verify"}
	if !slices.Equal(r.fake.CallLog(), want) {
		t.Errorf("calls %q, want %q", r.fake.CallLog(), want)
	}
	if st.Phase != session.PhaseFailed || st.Result == nil || st.Result.Error != "ChallengeResponseFailed" || st.Try != 2 {
		t.Errorf("state %+v", st)
	}
}

func TestStartErrors(t *testing.T) {
	r := newRig(t, session.Config{}, &sessiontest.Person{Frozen: true})
	ch := bws.Challenge{{bws.Left, bws.Right}}
	for _, tc := range []struct {
		name string
		req  session.StartRequest
		want string
	}{
		{"garbage token", session.StartRequest{Token: "a.b.c"}, "invalid session request"},
		{"task mismatch", session.StartRequest{Token: token(t, bws.OpEnroll, 1, ch), Task: "verify"}, "does not match"},
		{"unknown task", session.StartRequest{Task: "dance"}, "unknown task"},
		{"no credentials", session.StartRequest{Task: "enroll"}, "required"},
		{"wrong secret", session.StartRequest{Task: "enroll", AppID: "app", AppSecret: "nope", BCID: "bws.1.2"}, "wrong credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.m.Start(context.Background(), tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHTTP drives the local API: start with app credentials, a second
// start is 409, the SSE stream replays and ends, cancel.
func TestHTTP(t *testing.T) {
	p := &sessiontest.Person{Frozen: true}
	r := newRig(t, session.Config{AllowRequest: func(r *http.Request) bool { return r.Header.Get("Origin") != "https://evil.example" }}, p)
	srv := httptest.NewServer(r.m.Handler())
	defer srv.Close()
	post := func(body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/sessions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := post(`{"task":"enroll"}`, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("evil origin: %d", resp.StatusCode)
	}
	if resp := post(`{"task":"enroll","bogus":1}`, nil); resp.StatusCode != 400 {
		t.Errorf("unknown field: %d", resp.StatusCode)
	}
	if resp := post(`{"task":"enroll","bcid":"bws.12.4711"}`, map[string]string{"Authorization": "Basic YXBwOm5vcGU="}); resp.StatusCode != 403 {
		t.Errorf("wrong secret: %d", resp.StatusCode)
	}
	// A frozen person: the session waits for movement on the fake clock,
	// which only moves when frames are read, so it runs to its timeout.
	resp := post(`{"task":"enroll","bcid":"bws.12.4711","appId":"app","appSecret":"secret","maxTries":1}`, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	var st session.State
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.ID == "" || resp.Header.Get("Location") != "/sessions/"+st.ID {
		t.Fatalf("state %+v location %q", st, resp.Header.Get("Location"))
	}
	s, _ := r.m.Get(st.ID)
	final := wait(t, s)
	if final.Error != session.ErrCodeNoMovement {
		t.Errorf("final %+v", final)
	}
	// SSE replays everything and ends after the result.
	ev, err := http.Get(srv.URL + "/sessions/" + st.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
	if ct := ev.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	names := eventNames(ev.Body)
	if len(names) < 3 || names[len(names)-1] != "result" || !slices.Contains(names, "prompt") {
		t.Errorf("SSE events %v", names)
	}
	get, _ := http.Get(srv.URL + "/sessions/" + st.ID)
	if get.StatusCode != 200 {
		t.Errorf("GET: %d", get.StatusCode)
	}
	if nf, _ := http.Get(srv.URL + "/sessions/nope"); nf.StatusCode != 404 {
		t.Errorf("unknown id: %d", nf.StatusCode)
	}
}

// eventNames reads an SSE stream to its end and returns its events' types.
func eventNames(stream io.Reader) []string {
	var names []string
	sc := bufio.NewScanner(stream)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, n)
		}
	}
	return names
}

// TestSSEFinalStateCarriesResult: a client that reads the event stream the
// moment the final state is out gets the result too (the stream ends at
// the final state, so a result recorded after it would be lost).
func TestSSEFinalStateCarriesResult(t *testing.T) {
	r := newRig(t, session.Config{}, &sessiontest.Person{Frozen: true})
	srv := httptest.NewServer(r.m.Handler())
	defer srv.Close()
	got := make(chan []string, 1)
	r.rec.onEvent = func(e map[string]any) {
		if e["type"] != "state" || e["done"] != true {
			return
		}
		var names []string
		defer func() { got <- names }()
		resp, err := http.Get(fmt.Sprintf("%s/sessions/%s/events", srv.URL, e["session"]))
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		names = eventNames(resp.Body)
	}
	if _, err := r.m.Start(context.Background(), session.StartRequest{Task: "enroll", AppID: "app", AppSecret: "secret", BCID: "bws.12.4711", MaxTries: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case names := <-got:
		if len(names) == 0 || names[len(names)-1] != "result" {
			t.Errorf("SSE read at the final state ends with %v, want result", names[max(0, len(names)-3):])
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no final state within 60 s")
	}
}

func TestCancelAndBusy(t *testing.T) {
	// A real-time manager with a source that blocks: the session waits
	// for frames until cancelled.
	block := blockingFrames{}
	m, err := session.NewManager(session.Config{}, session.Deps{
		Frames:  func(string) session.FrameSource { return block },
		Tracker: sessiontest.PoseTracker{P: &sessiontest.Person{}},
		BWS:     &sessiontest.FakeBWS{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := token(t, bws.OpEnroll, 1, bws.Challenge{{bws.Left, bws.Right}})
	s, err := m.Start(context.Background(), session.StartRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(context.Background(), session.StartRequest{Token: tok}); err != session.ErrBusy {
		t.Fatalf("second start: %v, want ErrBusy", err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("DELETE", srv.URL+"/sessions/"+s.ID(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st session.State
	_ = json.NewDecoder(resp.Body).Decode(&st)
	if st.Phase != session.PhaseCanceled || !st.Done {
		t.Errorf("after DELETE: %+v", st)
	}
	// The camera is free again.
	s2, err := m.Start(context.Background(), session.StartRequest{Token: tok})
	if err != nil {
		t.Fatalf("start after cancel: %v", err)
	}
	_ = m.Cancel(s2.ID())
}

type blockingFrames struct{}

type captureFrame = capture.Frame

func (blockingFrames) Latest(ctx context.Context) (c captureFrame, err error) {
	<-ctx.Done()
	return c, ctx.Err()
}
func (blockingFrames) Close() error { return nil }

func TestWebhook(t *testing.T) {
	got := make(chan map[string]any, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- body
	}))
	defer hook.Close()
	r := newRig(t, session.Config{WebhookURL: hook.URL}, &sessiontest.Person{})
	s, err := r.m.Start(context.Background(), session.StartRequest{Token: token(t, bws.OpEnroll, 1, bws.Challenge{{bws.Up, bws.Down}})})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, s)
	select {
	case b := <-got:
		st, _ := b["session"].(map[string]any)
		if b["type"] != "result" || st["state"] != "succeeded" {
			t.Errorf("webhook body %v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook")
	}
}
