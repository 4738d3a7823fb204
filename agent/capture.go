package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bwsagent/bwsagent/agent/api"
	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/demo"
	"github.com/bwsagent/bwsagent/agent/kiosk"
	"github.com/bwsagent/bwsagent/agent/preview"
	"github.com/bwsagent/bwsagent/agent/session"
	"github.com/bwsagent/bwsagent/capture"
)

// camera is the capture side of the daemon: the capture loop on 'source',
// the preview hub at /ws/preview, the capture sessions at /sessions and the
// kiosk page at "/". Without a source only the page exists (its
// browser-camera mode needs no agent camera) and the camera routes answer
// 503.
type camera struct {
	loop     *capture.Loop
	hub      *preview.Hub
	sessions *session.Manager
	page     http.Handler // nil: kiosk.enabled is off

	cancel   context.CancelFunc // stops the hub
	hubDone  chan struct{}
	stopOnce sync.Once
}

// DemoSource is the source URI of the synthetic head (package demo);
// "demo:VIDEO" stays capture's looped video.
const DemoSource = "demo"

// newCamera builds and starts the capture side. It runs after the API
// server exists: sessions upload through its handler.
func (a *Agent) newCamera(ctx context.Context) (_ *camera, err error) {
	cfg := a.cfg
	c := &camera{hubDone: make(chan struct{})}
	close(c.hubDone) // until a hub runs
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	origins := preview.NewOriginPolicy(cfg.API.CORSOrigins...)
	log := a.opts.Logger

	if cfg.Source != "" {
		src, err := a.captureSource(ctx)
		if err != nil {
			return nil, err
		}
		c.loop = &capture.Loop{
			Source: src, Logger: log.With("component", "capture"),
			Mirror: cfg.Capture.Mirror, RingSize: cfg.Capture.RingSize,
		}
		if err := capture.RegisterMetrics(a.reg, c.loop, nil); err != nil {
			return nil, fmt.Errorf("capture metrics: %w", err)
		}
		// The loop lives until Close, not until New's context ends.
		if err := c.loop.Start(context.WithoutCancel(ctx)); err != nil {
			return nil, err
		}
		sub := c.loop.Subscribe("preview", 1)
		loop := c.loop
		if c.hub, err = preview.New(preview.Config{
			Quality: cfg.Preview.Quality, MaxWidth: cfg.Preview.MaxWidth, MaxFPS: cfg.Preview.MaxFPS,
			MaxClients: cfg.Preview.MaxClients, Origins: origins,
			SourceState: func() string { return loop.Status().State.String() },
		}, sub, a.engine.NewTracker(), log, a.reg); err != nil {
			_ = sub.Close()
			return nil, err
		}
		var hubCtx context.Context
		hubCtx, c.cancel = context.WithCancel(context.Background())
		c.hubDone = make(chan struct{})
		go func() {
			defer close(c.hubDone)
			defer sub.Close()
			if err := c.hub.Run(hubCtx); err != nil {
				a.log.Error("preview stopped", "err", err)
			}
		}()

		// Sessions' events go to the preview and, for the demo head, to the
		// "person" in front of the camera, who follows the prompts.
		var pub session.Publisher = c.hub
		if p, ok := src.(session.Publisher); ok {
			pub = publishers{c.hub, p}
		}
		bwsc := a.inProcessContract()
		if c.sessions, err = session.NewManager(session.Config{
			Mirror: !cfg.Capture.Mirror, WebhookURL: cfg.Kiosk.WebhookURL,
			NoMovementTimeout: cfg.Kiosk.NoMovementTimeout, AllowRequest: origins.Allow,
		}, session.Deps{
			Frames:  func(n string) session.FrameSource { return loop.Subscribe(n, 1) },
			Tracker: a.engine.NewTracker(), BWS: bwsc, Tokens: bwsc, Publisher: pub, Logger: log,
		}); err != nil {
			return nil, err
		}
		if err := a.api.MergeOpenAPI(session.OpenAPI); err != nil {
			return nil, err
		}
	}

	if cfg.Kiosk.Enabled {
		kc := kiosk.Config{
			BWSBase: cfg.API.BasePath, MirrorPreview: !cfg.Capture.Mirror, AllowRequest: origins.Allow,
			DemoBCID: cfg.Kiosk.DemoBCID, Logger: log,
		}
		if cfg.Kiosk.DemoApp != "" {
			kc.DemoToken = a.demoToken
		}
		if c.page, err = kiosk.New(kc); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// publishers hands each event to every publisher.
type publishers []session.Publisher

func (ps publishers) Publish(v any) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Publish(v))
	}
	return errors.Join(errs...)
}

// captureSource maps 'source' to a capture.Source: "demo" is the synthetic
// head, everything else capture.ParseURI's.
func (a *Agent) captureSource(ctx context.Context) (capture.Source, error) {
	cp := a.cfg.Capture
	if strings.TrimSpace(a.cfg.Source) == DemoSource {
		head, err := demo.NewHead(ctx, a.engine, cp.Width, cp.Height)
		if err != nil {
			return nil, fmt.Errorf("source demo: %w", err)
		}
		return demo.NewSource(head, cp.FPS), nil
	}
	src, err := capture.ParseURI(a.cfg.Source, capture.Options{
		Width: cp.Width, Height: cp.Height, FPS: cp.FPS, Loop: cp.Loop,
		Logger: a.opts.Logger.With("component", "capture"),
	})
	if err != nil {
		return nil, fmt.Errorf("'source': %w", err)
	}
	return src, nil
}

// inProcessContract calls the agent's own BWS routes without a socket, so
// a session's samples take exactly the path of /upload. Requests carry the
// public URL's Host, which the Host allow-list accepts whatever it lists.
func (a *Agent) inProcessContract() session.ContractClient {
	apiH := a.api.Handler()
	host := "localhost"
	if u, err := url.Parse(a.baseURL); err == nil && u.Host != "" {
		host = u.Host
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host = host
		apiH.ServeHTTP(w, r)
	})
	return session.ContractClient{
		BaseURL: "http://localhost" + a.cfg.API.BasePath,
		Client:  &http.Client{Transport: session.HandlerTransport(h)},
	}
}

// demoToken issues the kiosk page's demo tokens (kiosk.demoApp).
func (a *Agent) demoToken(ctx context.Context, task string) (string, error) {
	op, err := bws.ParseOperation(task)
	if err != nil {
		return "", err
	}
	bcid, err := bws.ParseBCID(a.cfg.Kiosk.DemoBCID)
	if err != nil {
		return "", err
	}
	opts := api.DefaultTokenOptions()
	opts.Challenge = a.cfg.Kiosk.DemoChallenge
	return a.api.IssueToken(ctx, a.cfg.Kiosk.DemoApp, bcid, op, opts)
}

// routes mounts the camera's handlers on mux.
func (c *camera) routes(mux *http.ServeMux) {
	if c == nil {
		return
	}
	noCamera := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"Message":"no camera: set 'source' (or --source) to use the preview and capture sessions"}` + "\n"))
	})
	var ws, sessions http.Handler = noCamera, noCamera
	if c.hub != nil {
		ws = c.hub
	}
	if c.sessions != nil {
		sessions = streamable(c.sessions.Handler())
	}
	mux.Handle("/ws/preview", ws)
	mux.Handle("/sessions", sessions)
	mux.Handle("/sessions/", sessions)
	if c.page != nil {
		mux.Handle("/", c.page)
	}
}

// streamable lifts the server's write timeout from server-sent event
// streams, which last as long as their session.
func streamable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/events") {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		h.ServeHTTP(w, r)
	})
}

// stop ends the sessions (and so their event streams) and the preview
// sockets; the HTTP server's shutdown does not wait for hijacked
// websockets, and would wait out its deadline for event streams.
func (c *camera) stop() {
	if c == nil {
		return
	}
	c.stopOnce.Do(func() {
		if c.sessions != nil {
			_ = c.sessions.Close()
		}
		if c.cancel != nil {
			c.cancel()
		}
		<-c.hubDone
	})
}

// close stops everything and closes the capture loop (and its source).
func (c *camera) close() error {
	if c == nil {
		return nil
	}
	c.stop()
	if c.loop != nil {
		return c.loop.Close()
	}
	return nil
}

// captureHealth is the camera's part of Healthy: an error only when a
// restart could help — the source is open but has stopped delivering (a
// hung driver). A missing or reconnecting camera is reported by /metrics
// (bwsagent_capture_up) and the logs, not here: restarting the daemon
// would not bring it back and would take the BWS API down with it.
func (c *camera) captureHealth() error {
	if c == nil || c.loop == nil {
		return nil
	}
	st := c.loop.Status()
	if st.State == capture.StateRunning && !c.loop.Healthy() && time.Since(st.Since) > c.loop.StaleAfter {
		last := "never"
		if !st.LastFrame.IsZero() {
			last = time.Since(st.LastFrame).Round(time.Millisecond).String() + " ago"
		}
		return fmt.Errorf("%w: source open but its last frame was %s", ErrCaptureStalled, last)
	}
	return nil
}

// ErrCaptureStalled is wrapped by Healthy's error when the camera hangs.
var ErrCaptureStalled = errors.New("capture stalled")
