package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/capture"
)

func TestMain(m *testing.M) {
	if os.Getenv("OPENCV_LOG_LEVEL") == "" {
		os.Setenv("OPENCV_LOG_LEVEL", "ERROR")
	}
	start := matCount()
	code := m.Run()
	if n := matCount(); code == 0 && n != start {
		fmt.Fprintf(os.Stderr, "Mat leak: %d Mats open after tests (started with %d)\n", n, start)
		code = 1
	}
	os.Exit(code)
}

// tickSource makes a 640×480 frame with a moving bar every interval, like
// a camera: the preview bars are measured against it.
type tickSource struct {
	interval time.Duration
	w, h     int
	seq      atomic.Uint64
	noise    bool // a noise background: ~300 KB JPEGs that fill sockets fast
	t        *time.Ticker
	bg       gocv.Mat
	once     sync.Once
}

func (s *tickSource) close() { _ = s.bg.Close() }

func (s *tickSource) Latest(ctx context.Context) (capture.Frame, error) {
	s.once.Do(func() {
		s.t = time.NewTicker(s.interval)
		s.bg = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(40, 90, 140, 0), s.h, s.w, gocv.MatTypeCV8UC3)
		if s.noise {
			gocv.RandU(&s.bg, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
		}
	})
	select {
	case <-ctx.Done():
		return capture.Frame{}, ctx.Err()
	case <-s.t.C:
	}
	n := s.seq.Add(1)
	m := s.bg.Clone()
	x := int(n*8) % s.w
	gocv.Rectangle(&m, image.Rect(x, 100, x+60, 380), color.RGBA{R: 240, G: 240, B: 240}, -1)
	gocv.PutText(&m, fmt.Sprint(n), image.Pt(20, 40), gocv.FontHersheySimplex, 1, color.RGBA{G: 255}, 2)
	return capture.Frame{Mat: m, Seq: n, Time: time.Now(), Width: s.w, Height: s.h}, nil
}

// startHub runs a hub over src behind an httptest server.
func startHub(t testing.TB, cfg Config, src FrameSource) (*Hub, *httptest.Server) {
	t.Helper()
	h, err := New(cfg, src, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		srv.Close()
		if ts, ok := src.(*tickSource); ok {
			ts.close()
		}
	})
	return h, srv
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

// watcher reads a socket and records frame arrivals.
type watcher struct {
	mu       sync.Mutex
	frames   int
	lat      []time.Duration
	seqs     []uint64
	events   []map[string]any
	arrivals []time.Time
	err      error
}

func (w *watcher) run(conn *websocket.Conn) {
	var meta frameMeta
	for {
		typ, b, err := conn.ReadMessage()
		now := time.Now()
		w.mu.Lock()
		if err != nil {
			w.err = err
			w.mu.Unlock()
			return
		}
		switch typ {
		case websocket.TextMessage:
			var ev map[string]any
			_ = json.Unmarshal(b, &ev)
			if ev["type"] == "frame" {
				_ = json.Unmarshal(b, &meta)
			} else {
				w.events = append(w.events, ev)
			}
		case websocket.BinaryMessage:
			if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
				w.err = errors.New("binary message is not a JPEG")
			}
			w.frames++
			w.seqs = append(w.seqs, meta.Seq)
			w.lat = append(w.lat, now.Sub(time.UnixMilli(meta.T)))
			w.arrivals = append(w.arrivals, now)
		}
		w.mu.Unlock()
	}
}

func (w *watcher) snapshot() (frames int, lat []time.Duration, arrivals []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames, slices.Clone(w.lat), slices.Clone(w.arrivals)
}

func dial(t testing.TB, srv *httptest.Server, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	return websocket.DefaultDialer.Dial(wsURL(srv)+"/ws/preview", hdr)
}

func watch(t testing.TB, srv *httptest.Server) *watcher {
	t.Helper()
	conn, _, err := dial(t, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &watcher{}
	go w.run(conn)
	return w
}

// waitFor polls cond (a few ms of real time: the hub is real-time code).
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

func p95(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)*95)/100]
}

// TestThreeClients: three clients each get the stream, every frame a
// JPEG. The rate and latency bar is BenchmarkThreeClients'.
func TestThreeClients(t *testing.T) {
	src := &tickSource{interval: 40 * time.Millisecond, w: 640, h: 480}
	h, srv := startHub(t, Config{Origins: NewOriginPolicy(), TrackFPS: -1}, src)
	ws := []*watcher{watch(t, srv), watch(t, srv), watch(t, srv)}
	waitFor(t, "3 clients", 2*time.Second, func() bool { return h.Stats().Clients == 3 })
	for i, w := range ws {
		waitFor(t, fmt.Sprintf("client %d's 10 frames", i), 20*time.Second, func() bool {
			n, _, _ := w.snapshot()
			return n >= 10
		})
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	if st := h.Stats(); st.FramesEncoded == 0 || st.FramesSent < 30 {
		t.Errorf("stats %+v", st)
	}
}

// BenchmarkThreeClients measures the preview bar: 640×480 from a 25 fps
// camera to 3 clients on loopback, want ≥ 15 fps each and capture→socket
// p95 ≤ 50 ms. An iteration is one frame reaching all three.
func BenchmarkThreeClients(b *testing.B) {
	src := &tickSource{interval: 40 * time.Millisecond, w: 640, h: 480}
	h, srv := startHub(b, Config{Origins: NewOriginPolicy(), TrackFPS: -1}, src)
	ws := []*watcher{watch(b, srv), watch(b, srv), watch(b, srv)}
	waitFor(b, "3 clients", 2*time.Second, func() bool { return h.Stats().Clients == 3 })
	<-time.After(300 * time.Millisecond) // warm-up
	start := make([]int, len(ws))
	for i, w := range ws {
		start[i], _, _ = w.snapshot()
	}
	b.ResetTimer()
	t0 := time.Now()
	minFPS, worstP95 := 1e9, time.Duration(0)
	for i, w := range ws {
		waitFor(b, fmt.Sprintf("client %d's frames", i), time.Duration(b.N)*time.Second+10*time.Second, func() bool {
			n, _, _ := w.snapshot()
			return n-start[i] >= b.N
		})
		n, lat, _ := w.snapshot()
		minFPS = min(minFPS, float64(n-start[i])/time.Since(t0).Seconds())
		worstP95 = max(worstP95, p95(lat[start[i]:]))
	}
	b.StopTimer()
	b.ReportMetric(minFPS, "fps/client")
	b.ReportMetric(float64(worstP95)/float64(time.Millisecond), "p95-ms")
}

// TestFrozenClient: a client that never reads must not slow the others,
// and is cut off once its socket stays blocked for WriteTimeout.
func TestFrozenClient(t *testing.T) {
	// A hub that waited on the frozen socket would stall the live client
	// for a whole write timeout; the bound on the longest gap sits well
	// below that and well above a loaded machine's scheduling jitter.
	const writeTimeout, maxGap = 1500 * time.Millisecond, time.Second
	src := &tickSource{interval: 40 * time.Millisecond, w: 640, h: 480}
	h, srv := startHub(t, Config{Origins: NewOriginPolicy(), TrackFPS: -1, WriteTimeout: writeTimeout, SendBuffer: 16 << 10}, src)
	// A tiny receive buffer makes the frozen peer's window fill in a few
	// frames, as a hung browser tab's would eventually.
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	frozen, _, err := d.Dial(wsURL(srv)+"/ws/preview", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close() // never read: its TCP window fills up
	live := watch(t, srv)
	waitFor(t, "2 clients", 2*time.Second, func() bool { return h.Stats().Clients == 2 })
	n0, _, _ := live.snapshot()
	from := time.Now()
	<-time.After(2 * writeTimeout)
	n1, _, arr := live.snapshot()
	// The longest gap between frames the live client saw, the window's
	// start and end included (a client that stalls there stalls too).
	arr = append(append([]time.Time{from}, arr[n0:]...), time.Now())
	var gap time.Duration
	for i := 1; i < len(arr); i++ {
		gap = max(gap, arr[i].Sub(arr[i-1]))
	}
	st := h.Stats()
	t.Logf("live client %d frames, longest gap %s; stats %+v", n1-n0, gap.Round(time.Millisecond), st)
	if gap > maxGap {
		t.Errorf("live client stalled for %s", gap)
	}
	if st.FramesDropped == 0 && st.Clients == 2 {
		t.Errorf("frozen client neither dropped frames nor was disconnected: %+v", st)
	}
}

func TestOriginAndCapacity(t *testing.T) {
	src := &tickSource{interval: 40 * time.Millisecond, w: 64, h: 48}
	h, srv := startHub(t, Config{Origins: NewOriginPolicy("https://kiosk.example"), MaxClients: 1, TrackFPS: -1}, src)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example", http.StatusForbidden},
		{"http://" + host + ".evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"https://kiosk.example", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			conn, resp, err := dial(t, srv, tc.origin)
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if conn != nil {
				conn.Close()
				waitFor(t, "slot freed", 2*time.Second, func() bool { return h.Stats().Clients == 0 })
			}
		})
	}
	// Capacity: the second socket is refused while the first is open.
	c1, _, err := dial(t, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	_, resp, _ := dial(t, srv, "")
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second client: %v, want 503", resp)
	}
	if st := h.Stats(); st.Rejected != 4 {
		t.Errorf("rejected %d, want 4 (3 origins + capacity)", st.Rejected)
	}
}

func TestEventsAndSticky(t *testing.T) {
	src := &tickSource{interval: 40 * time.Millisecond, w: 64, h: 48}
	h, srv := startHub(t, Config{Origins: NewOriginPolicy(), TrackFPS: -1}, src)
	if err := h.Publish(map[string]any{"type": "state", "state": "prompting", "prompt": "left"}); err != nil {
		t.Fatal(err)
	}
	w := watch(t, srv)
	waitFor(t, "sticky state", 2*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.events) > 0 && w.events[0]["type"] == "state"
	})
	_ = h.Publish(map[string]any{"type": "prompt", "direction": "up"})
	waitFor(t, "prompt", 2*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.ContainsFunc(w.events, func(e map[string]any) bool { return e["type"] == "prompt" })
	})
	if err := h.Publish(func() {}); err == nil {
		t.Error("Publish of a func: no error")
	}
}

// flakySource fails once after failAfter frames, like an unplugged camera.
type flakySource struct {
	n, failAfter int
	failed       bool
	pace         *time.Ticker
}

func (s *flakySource) Open(context.Context) error {
	if s.pace == nil {
		s.pace = time.NewTicker(40 * time.Millisecond)
	}
	return nil
}
func (s *flakySource) Close() error   { return nil }
func (s *flakySource) String() string { return "flaky" }
func (s *flakySource) Read(ctx context.Context) (capture.Frame, error) {
	select {
	case <-ctx.Done():
		return capture.Frame{}, ctx.Err()
	case <-s.pace.C:
	}
	s.n++
	if s.n == s.failAfter && !s.failed {
		s.failed = true
		return capture.Frame{}, io.ErrUnexpectedEOF
	}
	m := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC3)
	return capture.Frame{Mat: m, Time: time.Now(), Width: 320, Height: 240}, nil
}

// TestSourceRecovers: a source that errors mid-stream is back on the
// socket within 3 s (the capture Loop reconnects; the hub keeps going).
func TestSourceRecovers(t *testing.T) {
	loop := &capture.Loop{Source: &flakySource{failAfter: 15}}
	if err := loop.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loop.Close() }) // after the hub's cleanup
	sub := loop.Subscribe("preview", 1)
	t.Cleanup(func() { sub.Close() })
	_, srv := startHub(t, Config{Origins: NewOriginPolicy(), TrackFPS: -1}, sub)
	w := watch(t, srv)
	waitFor(t, "recovery", 5*time.Second, func() bool { return loop.Status().Reconnects > 0 && w.frameCount() > 30 })
	_, _, arr := w.snapshot()
	var gap time.Duration
	for i := 1; i < len(arr); i++ {
		gap = max(gap, arr[i].Sub(arr[i-1]))
	}
	t.Logf("longest gap across the source error: %s", gap.Round(time.Millisecond))
	if gap > 3*time.Second {
		t.Errorf("preview gap %s, want ≤ 3s", gap)
	}
}

func (w *watcher) frameCount() int { n, _, _ := w.snapshot(); return n }

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{}, ""},
		{"quality", Config{Quality: 101}, "'quality'"},
		{"width", Config{MaxWidth: -1}, "'maxWidth'"},
		{"queue", Config{FrameQueue: 100}, "'frameQueue'"},
		{"pong", Config{PingInterval: 10 * time.Second, PongWait: 5 * time.Second}, "'pongWait'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOriginPolicy(t *testing.T) {
	p := NewOriginPolicy("http://localhost:3000")
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"", "localhost:8080", true},
		{"http://localhost:8080", "localhost:8080", true},
		{"HTTP://LOCALHOST:8080/", "localhost:8080", true},
		{"http://localhost:3000", "localhost:8080", true},
		{"http://localhost:3001", "localhost:8080", false},
		{"https://attacker.example", "localhost:8080", false},
		{"file://", "localhost:8080", false},
		{"null", "localhost:8080", false},
	} {
		r := httptest.NewRequest("GET", "/ws/preview", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := p.Allow(r); got != tc.want {
			t.Errorf("Allow(%q on %s) = %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}
}
