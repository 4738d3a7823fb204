// Package session runs capture sessions: the BWS browser UI's flow, done by
// the agent on its own camera. A session follows its token's challenge —
// prompt "any", then each direction — captures a frame when the head has
// moved (pose change in the prompted quadrant and/or BWS UI's motion
// trigger), mirrors it for selfie view so the sample's direction equals its
// tag, uploads it through the BWS contract, calls the biometric task,
// retries with the next challenge array per maxtries, and publishes every
// step as events (preview websocket, server-sent events, a webhook).
//
// The package talks to the BWS service only through the small BWS and
// TokenIssuer interfaces; ContractClient implements both over the
// contract's own HTTP routes (in process), so a session uploads through
// exactly the code path of /upload.
package session

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/capture"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
)

// FrameSource is a camera subscription: a *capture.Subscription.
type FrameSource interface {
	Latest(ctx context.Context) (capture.Frame, error)
	Close() error
}

// Tracker measures the face in a frame: a *face.Tracker.
type Tracker interface {
	Track(ctx context.Context, frame gocv.Mat) (face.Face, bool, error)
}

// UploadResult is /upload's answer.
type UploadResult struct {
	Accepted bool     `json:"Accepted"`
	Error    string   `json:"Error,omitempty"`
	Warnings []string `json:"Warnings"`
}

// Result is the answer of /enroll, /verify, /identify, /livenessdetection.
type Result struct {
	Success bool    `json:"Success"`
	Error   string  `json:"Error,omitempty"`
	Matches []Match `json:"Matches,omitempty"`
}

// Match is one /identify candidate.
type Match struct {
	Score     float64 `json:"Score"`
	Storage   string  `json:"Storage"`
	Partition int     `json:"Partition"`
	ClassID   int64   `json:"ClassID"`
}

// BWS is the part of the BWS service a session calls. Errors are transport
// or HTTP-status failures (401, 403, …); a biometric "no" is a Result.
type BWS interface {
	Upload(ctx context.Context, token string, dataURL []byte, tag string, index int) (UploadResult, error)
	Perform(ctx context.Context, token string, op bws.Operation) (Result, error)
}

// TokenRequest asks for a token as GET /token does.
type TokenRequest struct {
	AppID, AppSecret string
	BCID             string
	Op               bws.Operation
	MaxTries         int
	LiveDetection    bool
	Challenge        bool
	Challenges       int
}

// TokenIssuer fetches a token with app credentials (GET /token).
type TokenIssuer interface {
	Token(ctx context.Context, req TokenRequest) (string, error)
}

// Publisher receives every session event: the preview hub.
type Publisher interface {
	Publish(v any) error
}

// Trigger selects what makes a capture.
type Trigger string

// Triggers. Pose is the default: it also checks the direction, so a wrong
// move is not uploaded.
const (
	TriggerPose   Trigger = "pose"   // pose change ≥ PoseDelta in the prompted quadrant
	TriggerMotion Trigger = "motion" // BWS UI's motion trigger only (direction unchecked)
	TriggerEither Trigger = "either" // either of the two
	TriggerBoth   Trigger = "both"   // motion trigger and pose quadrant
)

// Config tunes sessions. Zero fields take the documented defaults, which
// are BWS UI's.
type Config struct {
	// NoMovementTimeout aborts a session when no capture happens this long
	// after a prompt (default 30s, as BWS UI).
	NoMovementTimeout time.Duration
	// PromptPause is the pause after each prompt before frames count
	// (default 1s, as BWS UI).
	PromptPause time.Duration
	// PoseDelta is the head turn in degrees that triggers a capture
	// (default 6; BioID: ~5° is enough, too much fails).
	PoseDelta float64
	// MotionThreshold is BWS UI's trigger in percent (default 25, desktop).
	MotionThreshold float64
	// Trigger (default TriggerPose).
	Trigger Trigger
	// MaxUploadsPerTry bounds uploads of one try (default 20, as BWS UI).
	MaxUploadsPerTry int
	// Mirror flips camera frames before they become samples (selfie view,
	// as BWS UI). Set it when the capture loop does not mirror already;
	// the tag convention needs exactly one flip.
	Mirror bool
	// JPEGQuality of uploaded samples (default 92).
	JPEGQuality int
	// WebhookURL, if set, gets a POST of the session's state (JSON) when
	// it ends; WebhookTimeout bounds each attempt (default 5s, 3 attempts).
	WebhookURL     string
	WebhookTimeout time.Duration
	// Keep is how many ended sessions stay readable (default 32).
	Keep int
	// AllowRequest guards the HTTP API against cross-site requests
	// (e.g. preview.OriginPolicy.Allow); nil allows all.
	AllowRequest func(*http.Request) bool
}

func (c Config) withDefaults() Config {
	if c.NoMovementTimeout == 0 {
		c.NoMovementTimeout = 30 * time.Second
	}
	if c.PromptPause == 0 {
		c.PromptPause = time.Second
	}
	if c.PoseDelta == 0 {
		c.PoseDelta = 6
	}
	if c.MotionThreshold == 0 {
		c.MotionThreshold = 25
	}
	if c.Trigger == "" {
		c.Trigger = TriggerPose
	}
	if c.MaxUploadsPerTry == 0 {
		c.MaxUploadsPerTry = 20
	}
	if c.JPEGQuality == 0 {
		c.JPEGQuality = 92
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = 5 * time.Second
	}
	if c.Keep == 0 {
		c.Keep = 32
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.NoMovementTimeout < 0 || c.PromptPause < 0:
		return errors.New("'noMovementTimeout' and 'promptPause' must not be negative")
	case c.PromptPause >= c.NoMovementTimeout:
		return fmt.Errorf("'promptPause' (%s) must be shorter than 'noMovementTimeout' (%s)", c.PromptPause, c.NoMovementTimeout)
	case c.PoseDelta < 1 || c.PoseDelta > 45:
		return fmt.Errorf("'poseDelta' must be between 1 and 45 degrees (got %g)", c.PoseDelta)
	case c.MotionThreshold <= 0 || c.MotionThreshold >= 100:
		return fmt.Errorf("'motionThreshold' must be between 0 and 100 (got %g)", c.MotionThreshold)
	case c.Trigger != TriggerPose && c.Trigger != TriggerMotion && c.Trigger != TriggerEither && c.Trigger != TriggerBoth:
		return fmt.Errorf("'trigger' must be pose, motion, either or both (got %q)", c.Trigger)
	case c.MaxUploadsPerTry < 2 || c.MaxUploadsPerTry > 100:
		return fmt.Errorf("'maxUploadsPerTry' must be between 2 and 100 (got %d)", c.MaxUploadsPerTry)
	case c.JPEGQuality < 1 || c.JPEGQuality > 100:
		return fmt.Errorf("'jpegQuality' must be between 1 and 100 (got %d)", c.JPEGQuality)
	case c.Keep < 1 || c.Keep > 10000:
		return fmt.Errorf("'keep' must be between 1 and 10000 (got %d)", c.Keep)
	}
	return nil
}

// Deps are a Manager's collaborators. Frames, Tracker and BWS are
// required.
type Deps struct {
	// Frames opens a subscription for one session (e.g.
	// func(n string) FrameSource { return loop.Subscribe(n, 1) }).
	Frames  func(name string) FrameSource
	Tracker Tracker
	BWS     BWS
	// Tokens fetches tokens for sessions started with app credentials;
	// nil means such requests are refused.
	Tokens TokenIssuer
	// Publisher gets every event (the preview hub); optional.
	Publisher Publisher
	// Clock; nil is real time. Tests inject a fake.
	Clock  capture.Clock
	Logger *slog.Logger
	// HTTPClient posts webhooks; nil uses a client without redirects.
	HTTPClient *http.Client
}

// Errors of Start and Cancel.
var (
	ErrBusy     = errors.New("a capture session is already running")
	ErrNotFound = errors.New("no such session")
	ErrBadStart = errors.New("invalid session request")
)

// Manager owns the sessions: at most one runs at a time (one camera, one
// person in front of it).
type Manager struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	clock capture.Clock

	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*Session
	ended    []string // ids of ended sessions, oldest first
	active   *Session
}

// NewManager validates cfg and deps.
func NewManager(cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	switch {
	case deps.Frames == nil:
		return nil, errors.New("session: 'Frames' must be set")
	case deps.Tracker == nil:
		return nil, errors.New("session: 'Tracker' must be set")
	case deps.BWS == nil:
		return nil, errors.New("session: 'BWS' must be set")
	}
	if deps.Clock == nil {
		deps.Clock = realClock{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	m := &Manager{
		cfg: cfg.withDefaults(), deps: deps, clock: deps.Clock,
		log:      deps.Logger.With(slog.String("component", "session")),
		sessions: map[string]*Session{},
	}
	m.base, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Close cancels every session and waits for them and their webhooks.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// StartRequest is the body of POST /sessions.
type StartRequest struct {
	// Task is enroll, verify, identify or livenessdetection. With a token
	// it may be empty (the token's task) but must match it otherwise.
	Task string `json:"task,omitempty"`
	// Token is a BWS token issued by /token.
	Token string `json:"token,omitempty"`
	// Without a token: the agent fetches one with these app credentials
	// (or HTTP Basic on the request) for BCID.
	AppID     string `json:"appId,omitempty"`
	AppSecret string `json:"appSecret,omitempty"`
	BCID      string `json:"bcid,omitempty"`
	// Token options when the agent fetches the token: maxTries (default
	// 3), challenges per try (default 3), liveDetection and challenge
	// (default true both).
	MaxTries      int   `json:"maxTries,omitempty"`
	Challenges    int   `json:"challenges,omitempty"`
	LiveDetection *bool `json:"liveDetection,omitempty"`
	Challenge     *bool `json:"challenge,omitempty"`
}

// Start begins a session. ctx bounds only the token fetch; the session
// runs until it ends, Cancel, or Close.
func (m *Manager) Start(ctx context.Context, req StartRequest) (*Session, error) {
	op, err := bws.ParseOperation(req.Task)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStart, err)
	}
	tok := req.Token
	if tok == "" {
		if m.deps.Tokens == nil {
			return nil, fmt.Errorf("%w: 'token' is required (this agent fetches no tokens)", ErrBadStart)
		}
		if req.AppID == "" || req.BCID == "" && op != bws.OpLivenessDetection {
			return nil, fmt.Errorf("%w: 'token', or 'appId', 'appSecret' and 'bcid' are required", ErrBadStart)
		}
		tr := TokenRequest{
			AppID: req.AppID, AppSecret: req.AppSecret, BCID: req.BCID, Op: op,
			MaxTries: req.MaxTries, Challenges: req.Challenges, LiveDetection: true, Challenge: true,
		}
		if req.LiveDetection != nil {
			tr.LiveDetection = *req.LiveDetection
		}
		if req.Challenge != nil {
			tr.Challenge = *req.Challenge && tr.LiveDetection
		}
		if tok, err = m.deps.Tokens.Token(ctx, tr); err != nil {
			return nil, fmt.Errorf("fetch token: %w", err)
		}
	}
	c, err := parseClaims(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStart, err)
	}
	if req.Task != "" && c.Task.Operation() != op {
		return nil, fmt.Errorf("%w: task %s does not match the token's %s", ErrBadStart, op, c.Task.Operation())
	} else if req.Task == "" {
		op = c.Task.Operation()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active != nil {
		return nil, ErrBusy
	}
	if m.base.Err() != nil {
		return nil, errors.New("session manager closed")
	}
	s := newSession(m, uuid.NewString(), op, tok, c)
	m.sessions[s.id] = s
	m.active = s
	ctx, cancel := context.WithCancel(m.base)
	s.cancel = cancel
	m.wg.Go(func() { s.run(ctx) })
	return s, nil
}

// Get returns a session by id.
func (m *Manager) Get(id string) (*Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	return s, ok
}

// Cancel stops a running session (no effect on an ended one).
func (m *Manager) Cancel(id string) error {
	s, ok := m.Get(id)
	if !ok {
		return ErrNotFound
	}
	s.cancel()
	return nil
}

// finished is called once by a session's goroutine when it finishes.
func (m *Manager) finished(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active == s {
		m.active = nil
	}
	m.ended = append(m.ended, s.id)
	for len(m.ended) > m.cfg.Keep {
		delete(m.sessions, m.ended[0])
		m.ended = m.ended[1:]
	}
}

// dataURL wraps a JPEG as BWS clients send it.
func dataURL(jpg []byte) []byte {
	const prefix = "data:image/jpeg;base64,"
	out := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(len(jpg)))
	copy(out, prefix)
	base64.StdEncoding.Encode(out[len(prefix):], jpg)
	return out
}

// poseTrigger reports whether the move from ref to p is a capture for tag
// ("any": any direction).
func poseTrigger(ref, p geom.Pose, tag string, minDeg float64) (bool, string, float64) {
	ang, mag := geom.MotionDirection(ref, p)
	q := geom.Quadrant(ang)
	return mag >= minDeg && (tag == "any" || q == tag), q, mag
}
