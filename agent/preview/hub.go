// Package preview streams the camera to browsers over a websocket: binary
// JPEG frames plus JSON events (face overlay, session prompts, progress,
// results, status). One Hub owns one frame subscription; every client has
// its own bounded queues that drop the oldest entry, so a slow or frozen
// browser costs only its own frames and never slows capture or the others.
//
// Wire protocol on /ws/preview (server → client only; client messages are
// read and discarded, which keeps ping/pong and close working):
//
//	text   {"type":"frame","seq":N,"t":unixMillis,"width":W,"height":H}
//	binary the JPEG of that frame (always right after its "frame" text)
//	text   {"type":"face","seq":N,"width":W,"height":H,"found":true,
//	        "box":[x,y,w,h],"landmarks":[[x,y],…],"pose":{"yaw":…,"pitch":…,"roll":…}}
//	text   {"type":"status",…}, and whatever Publish is given (prompt,
//	        countdown, progress, result, state — see package session)
//
// Coordinates are pixels of the JPEG as sent.
package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/capture"
	"github.com/bwsagent/bwsagent/face"
)

// FrameSource is what the hub reads: a *capture.Subscription.
type FrameSource interface {
	// Latest returns the newest frame (older queued ones are dropped);
	// the caller closes it.
	Latest(ctx context.Context) (capture.Frame, error)
}

// Tracker finds the face for the overlay: a *face.Tracker.
type Tracker interface {
	Track(ctx context.Context, frame gocv.Mat) (face.Face, bool, error)
}

// Config tunes a Hub. Zero fields take the defaults documented here.
type Config struct {
	// Quality is the JPEG quality, 1..100 (default 70).
	Quality int
	// MaxWidth downscales wider frames to this width (0: send as captured).
	MaxWidth int
	// MaxFPS caps the preview rate (default 25); frames above it are
	// skipped before encoding.
	MaxFPS float64
	// TrackFPS is how often the overlay tracker runs (default 10; the
	// tracker costs ~6 ms a frame). Negative disables it.
	TrackFPS float64
	// FrameQueue and EventQueue bound each client's queues (defaults 2
	// and 64); the oldest entry is dropped when full.
	FrameQueue, EventQueue int
	// MaxClients bounds concurrent sockets (default 8); more get 503.
	MaxClients int
	// Origins decides which browser origins may connect (cross-site
	// websocket hijacking); the zero value allows only requests without
	// Origin, use NewOriginPolicy.
	Origins OriginPolicy
	// PingInterval, PongWait and WriteTimeout bound a dead client's life:
	// a ping every PingInterval (default 5s), no pong (or any read) within
	// PongWait (default 15s) or a write blocked for WriteTimeout (default
	// 3s) closes the socket.
	PingInterval, PongWait, WriteTimeout time.Duration
	// SendBuffer sets the kernel send buffer of each socket (default
	// 256 KiB; negative keeps the kernel's, which autotunes to megabytes).
	// A small buffer keeps a slow client's backlog in our drop-oldest
	// queue, where it is thrown away, instead of in the kernel, where it
	// would be shown seconds late.
	SendBuffer int
	// StatusInterval is how often a status event goes out (default 1s).
	StatusInterval time.Duration
	// SourceState reports the capture state for status events (optional;
	// e.g. func() string { return loop.Status().State.String() }).
	SourceState func() string
	// Sticky lists event types whose latest value a new client gets on
	// connect (default "status" and "state"), so a page loaded mid-session
	// shows the current prompt at once.
	Sticky []string
}

func (c Config) withDefaults() Config {
	if c.Quality == 0 {
		c.Quality = 70
	}
	if c.MaxFPS == 0 {
		c.MaxFPS = 25
	}
	if c.TrackFPS == 0 {
		c.TrackFPS = 10
	}
	if c.FrameQueue == 0 {
		c.FrameQueue = 2
	}
	if c.EventQueue == 0 {
		c.EventQueue = 64
	}
	if c.MaxClients == 0 {
		c.MaxClients = 8
	}
	if c.PingInterval == 0 {
		c.PingInterval = 5 * time.Second
	}
	if c.PongWait == 0 {
		c.PongWait = 15 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 3 * time.Second
	}
	if c.SendBuffer == 0 {
		c.SendBuffer = 256 << 10
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = time.Second
	}
	if c.Sticky == nil {
		c.Sticky = []string{"status", "state"}
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("'quality' must be between 1 and 100 (got %d)", c.Quality)
	case c.MaxWidth < 0:
		return fmt.Errorf("'maxWidth' must not be negative (got %d)", c.MaxWidth)
	case c.MaxFPS < 0 || c.MaxFPS > 120:
		return fmt.Errorf("'maxFPS' must be between 0 and 120 (got %g)", c.MaxFPS)
	case c.TrackFPS > 60:
		return fmt.Errorf("'trackFPS' must be at most 60 (got %g)", c.TrackFPS)
	case c.FrameQueue < 1 || c.FrameQueue > 64:
		return fmt.Errorf("'frameQueue' must be between 1 and 64 (got %d)", c.FrameQueue)
	case c.EventQueue < 1 || c.EventQueue > 4096:
		return fmt.Errorf("'eventQueue' must be between 1 and 4096 (got %d)", c.EventQueue)
	case c.MaxClients < 1 || c.MaxClients > 1024:
		return fmt.Errorf("'maxClients' must be between 1 and 1024 (got %d)", c.MaxClients)
	case c.PingInterval < 0 || c.PongWait <= c.PingInterval:
		return fmt.Errorf("'pongWait' (%s) must be longer than 'pingInterval' (%s)", c.PongWait, c.PingInterval)
	case c.WriteTimeout < 0 || c.StatusInterval < 0:
		return errors.New("'writeTimeout' and 'statusInterval' must not be negative")
	}
	return nil
}

// Stats are the hub's counters.
type Stats struct {
	Clients       int
	FramesEncoded uint64 // JPEGs made (only while someone watches)
	FramesSent    uint64 // JPEGs written to sockets, summed over clients
	FramesDropped uint64 // JPEGs a client's queue dropped (slow client)
	EventsDropped uint64
	Rejected      uint64 // sockets refused: origin or max clients
}

// Hub fans frames and events out to websocket clients. Create with New,
// run Run in a goroutine you own, serve it at /ws/preview.
type Hub struct {
	cfg     Config
	frames  FrameSource
	tracker Tracker
	log     *slog.Logger
	m       *metrics
	up      websocket.Upgrader

	mu      sync.Mutex
	clients map[*client]struct{}
	sticky  map[string][]byte
	closed  bool
	wg      sync.WaitGroup // client handlers, so Run can wait for them

	encoded, sent, dropped, evDropped, rejected atomic.Uint64
}

// New validates cfg. tracker may be nil (no face overlay). logger and
// metrics registerer may be nil.
func New(cfg Config, frames FrameSource, tracker Tracker, logger *slog.Logger, reg Registerer) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	if frames == nil {
		return nil, errors.New("preview: 'frames' must be set")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:     cfg,
		frames:  frames,
		tracker: tracker,
		log:     logger.With(slog.String("component", "preview")),
		clients: map[*client]struct{}{},
		sticky:  map[string][]byte{},
	}
	var err error
	if h.m, err = newMetrics(reg, h); err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	h.up = websocket.Upgrader{
		HandshakeTimeout: 5 * time.Second,
		WriteBufferSize:  64 << 10,
		// The hub's own policy; gorilla's default would only allow same host.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h, nil
}

// Stats returns the counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	return Stats{
		Clients: n, FramesEncoded: h.encoded.Load(), FramesSent: h.sent.Load(),
		FramesDropped: h.dropped.Load(), EventsDropped: h.evDropped.Load(), Rejected: h.rejected.Load(),
	}
}

func (h *Hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Publish sends a JSON event (a struct or map with a "type" field) to every
// client. It never blocks on clients. Events that cannot be marshalled are
// an error.
func (h *Hub) Publish(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("preview: marshal event: %w", err)
	}
	h.publishRaw(b)
	return nil
}

func (h *Hub) publishRaw(b []byte) {
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &head)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.cfg.Sticky {
		if t == head.Type {
			h.sticky[t] = b
		}
	}
	for c := range h.clients {
		c.pushEvent(b)
	}
}

// Run reads frames until ctx ends or the source stops for good, and closes
// every client before returning. It returns nil for ctx and a closed
// capture loop, the source's error otherwise. It owns the tracker goroutine.
func (h *Hub) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		h.shutdown()
	}()
	track := make(chan trackJob, 1)
	if h.tracker != nil && h.cfg.TrackFPS > 0 {
		wg.Go(func() { h.trackLoop(ctx, track) })
	}
	wg.Go(func() { h.statusLoop(ctx) })

	var next, lastTrack time.Time
	minGap := time.Duration(float64(time.Second) / h.cfg.MaxFPS)
	trackGap := time.Duration(0)
	if h.cfg.TrackFPS > 0 {
		trackGap = time.Duration(float64(time.Second) / h.cfg.TrackFPS)
	}
	for {
		f, err := h.frames.Latest(ctx)
		if err != nil {
			// A closed capture loop is a normal stop (daemon shutdown);
			// anything else (a file source that ended, a permanent
			// failure) is reported.
			if ctx.Err() != nil || errors.Is(err, capture.ErrClosed) {
				return nil
			}
			return fmt.Errorf("preview: frames: %w", err)
		}
		// Skip the work when nobody watches or above the rate cap. The cap
		// is a schedule with half a frame of tolerance, so a jittery 25 fps
		// source is not thinned by a 25 fps cap.
		if h.clientCount() == 0 || f.Time.Before(next.Add(-minGap/2)) {
			_ = f.Close()
			continue
		}
		next = next.Add(minGap)
		if next.Before(f.Time.Add(-minGap)) {
			next = f.Time // after a stall: restart the schedule, no burst
		}
		img, err := h.scaled(&f)
		if err != nil {
			_ = f.Close()
			h.log.Warn("preview frame dropped", "err", err)
			continue
		}
		if trackGap > 0 && h.tracker != nil && f.Time.Sub(lastTrack) >= trackGap {
			select {
			case track <- trackJob{mat: img.Clone(), seq: f.Seq}:
				lastTrack = f.Time
			default: // tracker still busy: skip this frame, never wait
			}
		}
		jpg, err := encodeJPEG(img, h.cfg.Quality)
		meta := frameMeta{Type: "frame", Seq: f.Seq, T: f.Time.UnixMilli(), Width: img.Cols(), Height: img.Rows()}
		if img.Ptr() != f.Mat.Ptr() {
			_ = img.Close()
		}
		_ = f.Close()
		if err != nil {
			h.log.Warn("preview encode failed", "err", err)
			continue
		}
		h.encoded.Add(1)
		mb, _ := json.Marshal(meta)
		msg := &frameMsg{meta: mb, jpeg: jpg, captured: f.Time}
		h.mu.Lock()
		for c := range h.clients {
			c.pushFrame(msg)
		}
		h.mu.Unlock()
	}
}

// scaled returns the frame's Mat, or a downscaled copy the caller closes.
func (h *Hub) scaled(f *capture.Frame) (gocv.Mat, error) {
	w, hh := f.Mat.Cols(), f.Mat.Rows()
	if h.cfg.MaxWidth == 0 || w <= h.cfg.MaxWidth || w == 0 {
		return f.Mat, nil
	}
	nh := max(1, hh*h.cfg.MaxWidth/w)
	dst := gocv.NewMat()
	gocv.Resize(f.Mat, &dst, image.Pt(h.cfg.MaxWidth, nh), 0, 0, gocv.InterpolationArea)
	if dst.Empty() {
		_ = dst.Close()
		return gocv.Mat{}, errors.New("resize failed")
	}
	return dst, nil
}

func encodeJPEG(m gocv.Mat, quality int) ([]byte, error) {
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("encode jpeg: %w", err)
	}
	defer buf.Close()
	// GetBytes aliases C memory: copy before Close.
	return append([]byte(nil), buf.GetBytes()...), nil
}

type frameMeta struct {
	Type   string `json:"type"`
	Seq    uint64 `json:"seq"`
	T      int64  `json:"t"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

type trackJob struct {
	mat gocv.Mat
	seq uint64
}

// FaceEvent is the overlay event.
type FaceEvent struct {
	Type      string       `json:"type"` // "face"
	Seq       uint64       `json:"seq"`
	Width     int          `json:"width"`
	Height    int          `json:"height"`
	Found     bool         `json:"found"`
	Box       []float64    `json:"box,omitempty"`
	Landmarks [][2]float64 `json:"landmarks,omitempty"`
	Pose      *PoseJSON    `json:"pose,omitempty"`
}

// PoseJSON is a head pose in degrees (face/geom convention).
type PoseJSON struct {
	Yaw   float64 `json:"yaw"`
	Pitch float64 `json:"pitch"`
	Roll  float64 `json:"roll"`
}

func round1(x float64) float64 { return float64(int64(x*10+sign(x)*0.5)) / 10 }

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

func (h *Hub) trackLoop(ctx context.Context, jobs <-chan trackJob) {
	var errLog time.Time
	for {
		select {
		case <-ctx.Done():
			// Drain a queued job so its Mat is closed.
			select {
			case j := <-jobs:
				_ = j.mat.Close()
			default:
			}
			return
		case j := <-jobs:
			ev := FaceEvent{Type: "face", Seq: j.seq, Width: j.mat.Cols(), Height: j.mat.Rows()}
			fc, ok, err := h.tracker.Track(ctx, j.mat)
			_ = j.mat.Close()
			if err != nil {
				if ctx.Err() == nil && time.Since(errLog) > 10*time.Second {
					errLog = time.Now()
					h.log.Warn("preview tracker failed", "err", err)
				}
				continue
			}
			if ok {
				ev.Found = true
				ev.Box = []float64{round1(fc.Box.X), round1(fc.Box.Y), round1(fc.Box.W), round1(fc.Box.H)}
				ev.Landmarks = make([][2]float64, len(fc.Landmarks))
				for i, p := range fc.Landmarks {
					ev.Landmarks[i] = [2]float64{round1(p.X), round1(p.Y)}
				}
				ev.Pose = &PoseJSON{Yaw: round1(fc.Pose.Yaw), Pitch: round1(fc.Pose.Pitch), Roll: round1(fc.Pose.Roll)}
			}
			_ = h.Publish(ev)
		}
	}
}

// StatusEvent is sent every StatusInterval.
type StatusEvent struct {
	Type    string  `json:"type"` // "status"
	Clients int     `json:"clients"`
	FPS     float64 `json:"fps"` // frames encoded per second, last interval
	Source  string  `json:"source,omitempty"`
}

func (h *Hub) statusLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.StatusInterval)
	defer t.Stop()
	last, lastAt := h.encoded.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := h.encoded.Load()
			ev := StatusEvent{Type: "status", Clients: h.clientCount(), FPS: round1(float64(n-last) / now.Sub(lastAt).Seconds())}
			last, lastAt = n, now
			if h.cfg.SourceState != nil {
				ev.Source = h.cfg.SourceState()
			}
			_ = h.Publish(ev)
		}
	}
}

// shutdown closes every client and waits for their handlers.
func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	for c := range h.clients {
		c.stop()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// ServeHTTP upgrades to a websocket after the origin and capacity checks
// and serves the client until it goes away or the hub stops.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.Origins.Allow(r) {
		h.rejected.Add(1)
		h.m.rejected("origin")
		h.log.Warn("preview socket refused: origin not allowed", "origin", r.Header.Get("Origin"))
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	c := newClient(h.cfg)
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		http.Error(w, "preview stopped", http.StatusServiceUnavailable)
		return
	case len(h.clients) >= h.cfg.MaxClients:
		h.mu.Unlock()
		h.rejected.Add(1)
		h.m.rejected("max_clients")
		http.Error(w, "too many preview clients", http.StatusServiceUnavailable)
		return
	}
	// Reserve the slot before the handshake so a burst cannot overshoot.
	h.clients[c] = struct{}{}
	for _, t := range h.cfg.Sticky {
		if b, ok := h.sticky[t]; ok {
			c.pushEvent(b)
		}
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
	}()
	conn, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the request
	}
	if tc, ok := conn.NetConn().(*net.TCPConn); ok && h.cfg.SendBuffer > 0 {
		_ = tc.SetWriteBuffer(h.cfg.SendBuffer)
	}
	h.serve(r.Context(), c, conn)
}
