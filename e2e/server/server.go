// Package server assembles a kiosk test server from the agent's preview,
// session and kiosk packages with a fake BWS service, until the daemon
// wiring lands. It is also the reference for that wiring: Routes shows
// which handler serves which path.
package server

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/kiosk"
	"github.com/bwsagent/bwsagent/agent/preview"
	"github.com/bwsagent/bwsagent/agent/session"
	"github.com/bwsagent/bwsagent/agent/session/sessiontest"
	"github.com/bwsagent/bwsagent/capture"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/synth"
)

// Scenario selects what the camera sees.
type Scenario string

const (
	Video    Scenario = "video"    // a video file, looped (Options.Video)
	BonaFide Scenario = "bonafide" // a synthetic head that follows the prompts
	Photo    Scenario = "photo"    // a still photo: a photo attack
	Browser  Scenario = "browser"  // no agent camera use: browser-camera mode
)

// Options configure New.
type Options struct {
	Scenario Scenario
	Engine   *face.Engine
	// Video is the file of the Video scenario; Photo the frontal face photo
	// the synthetic head and the photo attack are made from.
	Video, Photo string
	// NoMovementTimeout of sessions (default 30s; tests shorten it).
	NoMovementTimeout time.Duration
	Logger            *slog.Logger
}

// Server is the assembled test agent.
type Server struct {
	Handler http.Handler
	Hub     *preview.Hub
	Loop    *capture.Loop
	Fake    *sessiontest.FakeBWS
	Manager *session.Manager

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closer []func()
}

// Demo credentials of the fake service and the demo BCID.
const (
	DemoApp    = "demo-app"
	DemoSecret = "demo-secret"
	DemoBCID   = "bws.12.4711"
)

// New builds and starts the server's components; Close stops them.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("server: 'Engine' must be set")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	var head *synth.Head
	var photo image.Image
	if opts.Scenario == BonaFide || opts.Scenario == Photo {
		var err error
		if head, photo, err = sessiontest.HeadFromPhoto(ctx, opts.Engine, opts.Photo); err != nil {
			return nil, err
		}
	}
	person := &sessiontest.Person{Head: head, Mirrored: true, Step: 1.5}
	if opts.Scenario == Photo {
		person = &sessiontest.Person{Photo: photo, Frozen: true}
	}
	s.closer = append(s.closer, func() { _ = person.Close() })

	var src capture.Source
	switch opts.Scenario {
	case Video, Browser:
		var err error
		if src, err = capture.ParseURI("file:"+opts.Video, capture.Options{Loop: true}); err != nil {
			return nil, err
		}
	case BonaFide, Photo:
		src = &sessiontest.Source{P: person, FPS: 25}
	default:
		return nil, fmt.Errorf("server: unknown scenario %q", opts.Scenario)
	}
	// The camera is not mirrored; the session mirrors its samples and the
	// page mirrors the preview (selfie view).
	s.Loop = &capture.Loop{Source: src, Logger: opts.Logger}
	if err := s.Loop.Start(ctx); err != nil {
		return nil, err
	}
	s.closer = append(s.closer, func() { _ = s.Loop.Close() })

	reg := prometheus.NewRegistry()
	origins := preview.NewOriginPolicy()
	sub := s.Loop.Subscribe("preview", 1)
	s.closer = append(s.closer, func() { _ = sub.Close() })
	var err error
	s.Hub, err = preview.New(preview.Config{Origins: origins, SourceState: func() string { return s.Loop.Status().State.String() }},
		sub, opts.Engine.NewTracker(), opts.Logger, reg)
	if err != nil {
		return nil, err
	}
	s.wg.Go(func() {
		if err := s.Hub.Run(ctx); err != nil {
			opts.Logger.Error("preview hub", "err", err)
		}
	})

	tracker := opts.Engine.NewTracker()
	s.Fake = &sessiontest.FakeBWS{Tracker: tracker, AppID: DemoApp, AppSecret: DemoSecret}
	// Both the session and the browser go through the contract's HTTP
	// routes, as they will against the real service.
	extension := http.StripPrefix("/extension", s.Fake.Handler())
	contract := session.ContractClient{BaseURL: "http://localhost/extension/", Client: &http.Client{Transport: session.HandlerTransport(extension)}}
	s.Manager, err = session.NewManager(session.Config{Mirror: true, NoMovementTimeout: opts.NoMovementTimeout, AllowRequest: origins.Allow},
		session.Deps{
			Frames:    func(string) session.FrameSource { return s.Loop.Subscribe("session", 1) },
			Tracker:   tracker,
			BWS:       contract,
			Tokens:    contract,
			Publisher: fanout{s.Hub, person},
			Logger:    opts.Logger,
		})
	if err != nil {
		return nil, err
	}
	s.closer = append(s.closer, func() { _ = s.Manager.Close() })

	challenge := opts.Scenario != Browser // the browser's motion trigger does not know directions
	k, err := kiosk.New(kiosk.Config{
		MirrorPreview: true,
		DemoBCID:      DemoBCID,
		AllowRequest:  origins.Allow,
		Logger:        opts.Logger,
		DemoToken: func(ctx context.Context, task string) (string, error) {
			op, err := bws.ParseOperation(task)
			if err != nil {
				return "", err
			}
			return contract.Token(ctx, session.TokenRequest{AppID: DemoApp, AppSecret: DemoSecret, BCID: DemoBCID, Op: op,
				MaxTries: 2, LiveDetection: true, Challenge: challenge})
		},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws/preview", s.Hub)
	mux.Handle("/sessions", s.Manager.Handler())
	mux.Handle("/sessions/", s.Manager.Handler())
	mux.Handle("/extension/", extension)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", k)
	s.Handler = mux
	ok = true
	return s, nil
}

// fanout publishes to several publishers (the hub and the synthetic
// person who reacts to prompts).
type fanout []session.Publisher

func (f fanout) Publish(v any) error {
	var errs []error
	for _, p := range f {
		errs = append(errs, p.Publish(v))
	}
	return errors.Join(errs...)
}

// Close stops everything in reverse order of start.
func (s *Server) Close() {
	if s.Manager != nil {
		_ = s.Manager.Close()
	}
	s.cancel()
	s.wg.Wait()
	for i := len(s.closer) - 1; i >= 0; i-- {
		s.closer[i]()
	}
	s.closer = nil
}
