package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
)

// Capture configures how the agent reads its camera ('source').
type Capture struct {
	// Width, Height and FPS request a capture size and rate from cameras
	// (0: the device's default) and set the size and rate of the demo
	// source. Video files play at their own rate.
	Width  int     `yaml:"width"`
	Height int     `yaml:"height"`
	FPS    float64 `yaml:"fps"`
	// Mirror flips frames horizontally in the capture loop. Off, the
	// sessions mirror their samples and the page its preview (selfie
	// view); either way exactly one flip happens.
	Mirror bool `yaml:"mirror"`
	// Loop restarts video files and image sequences at their end.
	Loop bool `yaml:"loop"`
	// RingSize is how many frames each consumer may have queued before
	// the oldest is dropped.
	RingSize int `yaml:"ringSize"`
}

// Preview configures the /ws/preview websocket.
type Preview struct {
	// MaxFPS caps the frames sent per second.
	MaxFPS float64 `yaml:"maxFPS"`
	// Quality is the JPEG quality, 1..100.
	Quality int `yaml:"quality"`
	// MaxWidth downscales wider frames (0: as captured).
	MaxWidth int `yaml:"maxWidth"`
	// MaxClients bounds concurrent preview sockets.
	MaxClients int `yaml:"maxClients"`
}

// Kiosk configures the kiosk page at "/" and the capture sessions.
type Kiosk struct {
	// Enabled serves the kiosk page (when a source is set).
	Enabled bool `yaml:"enabled"`
	// WebhookURL, if set, receives a POST with each session's final state.
	WebhookURL string `yaml:"webhookURL"`
	// NoMovementTimeout aborts a session when the person does not move
	// this long after a prompt (BWS UI: 30s).
	NoMovementTimeout time.Duration `yaml:"noMovementTimeout"`
	// DemoApp and DemoBCID enable GET /kiosk/token: tokens for this app and
	// BCID without its secret, so the page's start button works. Only for
	// demos and tests; empty (the default) disables the route.
	DemoApp  string `yaml:"demoApp"`
	DemoBCID string `yaml:"demoBCID"`
	// DemoChallenge issues the demo tokens with challenge-response (head
	// directions). Browser-camera mode captures on motion without knowing
	// directions and needs it off.
	DemoChallenge bool `yaml:"demoChallenge"`
}

// defaultCapture, defaultPreview and defaultKiosk are part of Default.
func defaultCapture() Capture {
	return Capture{Width: 640, Height: 480, FPS: 25, Loop: true, RingSize: 2}
}

func defaultPreview() Preview {
	return Preview{MaxFPS: 25, Quality: 70, MaxWidth: 640, MaxClients: 8}
}

func defaultKiosk() Kiosk {
	return Kiosk{Enabled: true, NoMovementTimeout: 30 * time.Second, DemoChallenge: true}
}

// validateCapture checks the capture, preview and kiosk sections.
func (c Config) validateCapture() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("'%s' %s", key, fmt.Sprintf(format, args...)))
	}
	cp := c.Capture
	if cp.Width < 0 || cp.Width > 8192 || cp.Height < 0 || cp.Height > 8192 || (cp.Width == 0) != (cp.Height == 0) {
		bad("capture.width", "and 'capture.height' must both be 1..8192 or both 0, got %dx%d", cp.Width, cp.Height)
	}
	if !(cp.FPS >= 0 && cp.FPS <= 240) { // NaN fails too
		bad("capture.fps", "must be 0..240 (0: the device's default), got %g", cp.FPS)
	}
	if cp.RingSize < 1 || cp.RingSize > 64 {
		bad("capture.ringSize", "must be 1..64, got %d", cp.RingSize)
	}
	p := c.Preview
	if !(p.MaxFPS > 0 && p.MaxFPS <= 120) {
		bad("preview.maxFPS", "must be in (0, 120], got %g", p.MaxFPS)
	}
	if p.Quality < 1 || p.Quality > 100 {
		bad("preview.quality", "must be 1..100, got %d", p.Quality)
	}
	if p.MaxWidth < 0 || p.MaxWidth > 8192 {
		bad("preview.maxWidth", "must be 0..8192 (0: as captured), got %d", p.MaxWidth)
	}
	if p.MaxClients < 1 || p.MaxClients > 1024 {
		bad("preview.maxClients", "must be 1..1024, got %d", p.MaxClients)
	}
	k := c.Kiosk
	if k.WebhookURL != "" {
		if u, err := url.Parse(k.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("kiosk.webhookURL", "must be an http(s) URL, got %q", k.WebhookURL)
		}
	}
	if k.NoMovementTimeout < 2*time.Second || k.NoMovementTimeout > 10*time.Minute {
		bad("kiosk.noMovementTimeout", "must be 2s..10m, got %v", k.NoMovementTimeout)
	}
	if (k.DemoApp == "") != (k.DemoBCID == "") {
		bad("kiosk.demoApp", "and 'kiosk.demoBCID' must be set together (or both empty: no demo tokens)")
	}
	if k.DemoBCID != "" {
		if _, err := bws.ParseBCID(k.DemoBCID); err != nil {
			bad("kiosk.demoBCID", "%v", err)
		}
	}
	return errs
}
