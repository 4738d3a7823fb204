package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// countingSource yields n tiny frames as fast as asked, then io.EOF.
func countingSource(n int) *funcSource {
	i := 0
	return &funcSource{name: "counting", read: func(ctx context.Context) (Frame, error) {
		if i == n {
			return Frame{}, io.EOF
		}
		i++
		return tinyFrame(i), nil
	}}
}

// gatedSource yields one frame per value received on gate.
func gatedSource(gate <-chan func() Frame) *funcSource {
	return &funcSource{name: "gated", read: func(ctx context.Context) (Frame, error) {
		select {
		case mk := <-gate:
			return mk(), nil
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		}
	}}
}

func startLoop(t *testing.T, l *Loop) {
	t.Helper()
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
}

func waitDone(t *testing.T, l *Loop, timeout time.Duration) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(timeout):
		t.Fatalf("loop did not stop within %s (state %v)", timeout, l.Status().State)
	}
}

func nextWithin(t *testing.T, s *Subscription, timeout time.Duration) Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("%s: no frame within %s: %v", s.Name(), timeout, err)
	}
	return f
}

func TestLoopSlowSubscriberDoesNotBlockCapture(t *testing.T) {
	const n, ring = 300, 4
	l := &Loop{Source: countingSource(n)}
	slow := l.Subscribe("slow", ring)
	all := l.Subscribe("all", n) // large enough never to drop
	startLoop(t, l)

	// slow reads nothing while the source runs (a consumer stuck in a
	// long computation). If the loop waited for it, it would never finish.
	waitDone(t, l, 10*time.Second)

	if st := l.Stats(); st.FramesCaptured != n || st.State != StateEnded {
		t.Fatalf("captured %d frames, state %v; want %d, ended", st.FramesCaptured, st.State, n)
	}
	if q, d := slow.Queued(), slow.Dropped(); q != ring || d != n-ring {
		t.Errorf("slow: %d queued, %d dropped; want %d and %d", q, d, ring, n-ring)
	}
	// Drop-oldest: what is left are the newest frames, in order.
	for want := uint64(n - ring + 1); want <= n; want++ {
		f, err := slow.Next(context.Background())
		if err != nil || f.Seq != want {
			t.Fatalf("slow: got seq %d (%v), want %d", f.Seq, err, want)
		}
		_ = f.Close()
	}
	for want := uint64(1); want <= n; want++ {
		f, err := all.Next(context.Background())
		if err != nil {
			t.Fatalf("all: frame %d: %v", want, err)
		}
		if f.Seq != want {
			t.Fatalf("all: got seq %d, want %d", f.Seq, want)
		}
		_ = f.Close()
	}
	if _, err := all.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame Next = %v, want io.EOF", err)
	}
	if all.Dropped() != 0 {
		t.Errorf("all dropped %d", all.Dropped())
	}
}

func TestLoopFrozenSubscriberDoesNotStallAnother(t *testing.T) {
	gate := make(chan func() Frame)
	l := &Loop{Source: gatedSource(gate)}
	frozen := l.Subscribe("frozen", 2) // never read, never closed: Loop.Close frees it
	live := l.Subscribe("live", 1)
	startLoop(t, l)
	const n = 50
	for i := 1; i <= n; i++ {
		select {
		case gate <- func() Frame { return tinyFrame(i) }:
		case <-time.After(3 * time.Second):
			t.Fatalf("loop stalled before frame %d", i)
		}
		f := nextWithin(t, live, 3*time.Second)
		if f.Seq != uint64(i) {
			t.Fatalf("live got seq %d, want %d", f.Seq, i)
		}
		_ = f.Close()
	}
	if frozen.Dropped() != n-2 || live.Dropped() != 0 {
		t.Errorf("dropped: frozen %d (want %d), live %d (want 0)", frozen.Dropped(), n-2, live.Dropped())
	}
	st := l.Stats()
	if len(st.Subscribers) != 2 || st.Subscribers[0].Dropped != n-2 || st.Subscribers[1].Delivered != n {
		t.Errorf("stats subscribers = %+v", st.Subscribers)
	}
	_ = l.Close()
	if _, err := frozen.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("frozen after Close: %v, want ErrClosed", err)
	}
}

func TestLoopMirror(t *testing.T) {
	split := func() Frame {
		m := solidMat(8, 4, color.RGBA{R: 255})
		right := m.Region(image.Rect(4, 0, 8, 4))
		right.SetTo(gocv.NewScalar(255, 0, 0, 0)) // blue right half
		_ = right.Close()
		return newFrame(m, time.Now())
	}
	gate := make(chan func() Frame)
	l := &Loop{Source: gatedSource(gate), Mirror: true}
	sub := l.Subscribe("s", 1)
	startLoop(t, l)
	for _, tc := range []struct {
		mirror      bool
		left, right [3]uint8
	}{
		{true, [3]uint8{255, 0, 0}, [3]uint8{0, 0, 255}},
		{false, [3]uint8{0, 0, 255}, [3]uint8{255, 0, 0}},
		{true, [3]uint8{255, 0, 0}, [3]uint8{0, 0, 255}},
	} {
		l.SetMirror(tc.mirror)
		gate <- split
		f := nextWithin(t, sub, 3*time.Second)
		left, right := bgrAt(f.Mat, 0, 1), bgrAt(f.Mat, 7, 1)
		_ = f.Close()
		if left != tc.left || right != tc.right {
			t.Errorf("mirror=%v: left %v right %v, want %v %v", tc.mirror, left, right, tc.left, tc.right)
		}
	}
}

func TestLoopRecoversFromSourceErrors(t *testing.T) {
	errBoom, errDown := errors.New("boom: camera unplugged"), errors.New("device busy")
	var opens atomic.Int32
	failedAt := make(chan time.Time, 1)
	n := 0
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	src := &funcSource{name: "flaky",
		open: func(ctx context.Context) error {
			switch opens.Add(1) {
			case 2, 3: // still gone for two attempts
				return errDown
			}
			return nil
		},
		read: func(ctx context.Context) (Frame, error) {
			n++
			if n == 4 {
				failedAt <- time.Now()
				return Frame{}, errBoom
			}
			select { // a camera's frame rhythm
			case <-tick.C:
			case <-ctx.Done():
				return Frame{}, ctx.Err()
			}
			return tinyFrame(n), nil
		}}
	l := &Loop{Source: src}
	sub := l.Subscribe("s", 4)
	startLoop(t, l)
	for want := uint64(1); want <= 3; want++ {
		f := nextWithin(t, sub, 3*time.Second)
		if f.Seq != want {
			t.Fatalf("seq %d, want %d", f.Seq, want)
		}
		_ = f.Close()
	}
	t0 := <-failedAt
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(3*time.Second))
	defer cancel()
	f, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("no frame within 3 s of the failure: %v (status %+v)", err, l.Status())
	}
	_ = f.Close()
	if f.Seq != 4 {
		t.Errorf("first frame after recovery has seq %d, want 4 (numbering continues)", f.Seq)
	}
	st := l.Status()
	if st.State != StateRunning || st.Reconnects != 3 || !errors.Is(st.LastError, errDown) || opens.Load() != 4 {
		t.Errorf("status %+v after %d opens; want running, 3 reconnects, last error %q", st, opens.Load(), errDown)
	}
	if !l.Healthy() {
		t.Error("Healthy() = false right after a frame")
	}
}

func TestLoopRecoversFromHTTPDrop(t *testing.T) {
	frames := jpegFrames(t, 3, 64, 48)
	var requests atomic.Int32
	dropped := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch requests.Add(1) {
		case 1:
			// Five frames, then the connection dies mid-frame (camera reboot).
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprint(bw, "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=f\r\n\r\n")
			for i := range 5 {
				f := frames[i%len(frames)]
				fmt.Fprintf(bw, "--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(f))
				_, _ = bw.Write(f)
				fmt.Fprint(bw, "\r\n")
			}
			fmt.Fprintf(bw, "--f\r\nContent-Length: %d\r\n\r\n", len(frames[0]))
			_, _ = bw.Write(frames[0][:len(frames[0])/2])
			_ = bw.Flush()
			dropped <- time.Now()
			_ = conn.Close()
		case 2, 3:
			http.Error(w, "rebooting", http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=f")
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				writeParts(w, frames[i%len(frames):i%len(frames)+1], mjpegStyle{delim: "--f", length: true})
				select {
				case <-tick.C:
				case <-r.Context().Done():
					return
				}
			}
		}
	}))
	t.Cleanup(srv.Close) // after the loop's cleanup: Close waits for open connections
	src, err := ParseURI(srv.URL+"/video", Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loop{Source: src}
	sub := l.Subscribe("s", 16)
	startLoop(t, l)
	for i := range 5 {
		f := nextWithin(t, sub, 5*time.Second)
		if f.Seq != uint64(i+1) || f.Width != 64 {
			t.Fatalf("frame %d: seq %d width %d", i, f.Seq, f.Width)
		}
		_ = f.Close()
	}
	t0 := <-dropped
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(3*time.Second))
	defer cancel()
	f, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("no frame within 3 s of the drop: %v (status %+v)", err, l.Status())
	}
	_ = f.Close()
	if f.Seq != 6 || requests.Load() < 4 {
		t.Errorf("after recovery: seq %d after %d requests; want seq 6 after ≥4 requests", f.Seq, requests.Load())
	}
	if st := l.Status(); st.Reconnects < 3 || st.LastError == nil {
		t.Errorf("status %+v: want ≥3 reconnects and the last error kept", st)
	}
}

func TestLoopFileEndsAndDrains(t *testing.T) {
	path := makeVideo(t, "e.mp4", 8, 64, 48, 25, "-c:v", "mpeg4")
	src, err := ParseURI("file:"+path, Options{NoPace: true})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loop{Source: src}
	sub := l.Subscribe("s", 16)
	startLoop(t, l)
	waitDone(t, l, 10*time.Second)
	if st := l.Status(); st.State != StateEnded || st.LastError != nil {
		t.Fatalf("status %+v, want ended without error", st)
	}
	for i := 1; i <= 8; i++ {
		f, err := sub.Next(context.Background())
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		_ = f.Close()
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("drained: Next = %v, want io.EOF", err)
	}
	late := l.Subscribe("late", 1)
	if _, err := late.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("subscribing after the end: Next = %v, want io.EOF", err)
	}
}

func TestLoopLoopsFileInsteadOfEnding(t *testing.T) {
	path := makeVideo(t, "loop.mp4", 3, 32, 24, 25, "-c:v", "mpeg4")
	src, err := ParseURI("file:"+path, Options{Loop: true, NoPace: true})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loop{Source: src}
	sub := l.Subscribe("s", 1)
	startLoop(t, l)
	var last uint64
	for last < 10 { // three runs of the file and more
		f, err := sub.Latest(context.Background())
		if err != nil {
			t.Fatalf("after seq %d: %v", last, err)
		}
		last = f.Seq
		_ = f.Close()
	}
	if st := l.Status(); st.State != StateRunning || st.Reconnects != 0 {
		t.Errorf("status %+v: looping should be seamless", st)
	}
}

func TestLoopPermanentFailure(t *testing.T) {
	src, err := ParseURI("file:"+filepath.Join(t.TempDir(), "missing.mp4"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loop{Source: src}
	sub := l.Subscribe("s", 1)
	startLoop(t, l)
	waitDone(t, l, 5*time.Second)
	st := l.Status()
	if st.State != StateFailed || !IsPermanent(st.LastError) {
		t.Fatalf("status %+v, want failed with a permanent error", st)
	}
	if _, err := sub.Next(context.Background()); !IsPermanent(err) {
		t.Errorf("Next = %v, want the permanent error", err)
	}
}

func TestLoopBackoffSchedule(t *testing.T) {
	fc := newFakeClock()
	// Script: fail, fail, fail, fail, fail, open and deliver one frame then
	// fail reading, fail: the delay restarts at Initial after a success.
	var opens int
	src := &funcSource{name: "dead",
		open: func(context.Context) error {
			opens++
			if opens == 6 {
				return nil
			}
			return errors.New("no such device")
		},
		read: func(context.Context) (Frame, error) {
			if opens == 6 {
				opens++ // one frame, then the next read fails
				return tinyFrame(1), nil
			}
			return Frame{}, errors.New("unplugged")
		}}
	l := &Loop{Source: src, Clock: fc, rand: func() float64 { return 0.5 },
		Backoff: Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}}
	startLoop(t, l)
	var got []time.Duration
	for range 7 {
		select {
		case tm := <-fc.afters:
			got = append(got, tm.d)
			if st := l.Status(); st.State != StateReconnecting || st.LastError == nil {
				t.Fatalf("while backing off: status %+v", st)
			}
			fc.Advance(tm.d)
			tm.ch <- fc.Now()
		case <-time.After(5 * time.Second):
			t.Fatalf("no backoff timer after %v", got)
		}
	}
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 100 * ms, 200 * ms}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.2}
	for _, tc := range []struct {
		attempt  int
		r        float64
		min, max time.Duration
	}{
		{0, 0, 80 * time.Millisecond, 80 * time.Millisecond},
		{0, 0.999999, 119 * time.Millisecond, 120 * time.Millisecond},
		{3, 0.5, 800 * time.Millisecond, 800 * time.Millisecond},
		{50, 0.999999, 2 * time.Second, 2 * time.Second}, // capped even with jitter
		{1000, 0, 1600 * time.Millisecond, 1600 * time.Millisecond},
	} {
		if d := b.Delay(tc.attempt, tc.r); d < tc.min || d > tc.max {
			t.Errorf("Delay(%d, %g) = %s, want [%s, %s]", tc.attempt, tc.r, d, tc.min, tc.max)
		}
	}
}

func TestLoopHealthyAndStaleness(t *testing.T) {
	fc := newFakeClock()
	gate := make(chan func() Frame)
	l := &Loop{Source: gatedSource(gate), Clock: fc, StaleAfter: time.Second}
	sub := l.Subscribe("s", 1)
	if l.Healthy() {
		t.Fatal("healthy before start")
	}
	startLoop(t, l)
	gate <- func() Frame { return tinyFrame(1) }
	f := nextWithin(t, sub, 3*time.Second)
	_ = f.Close()
	if !l.Healthy() || !l.LastFrameTime().Equal(fc.Now()) {
		t.Fatalf("after a frame: healthy %v, last frame %v (clock %v)", l.Healthy(), l.LastFrameTime(), fc.Now())
	}
	fc.Advance(1500 * time.Millisecond)
	if l.Healthy() {
		t.Error("healthy with a frame 1.5 s old and StaleAfter 1 s")
	}
}

func TestLoopStopsOnContextCancel(t *testing.T) {
	src, err := ParseURI("demo", Options{Width: 64, Height: 48, FPS: 100})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loop{Source: src}
	sub := l.Subscribe("s", 2)
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := nextWithin(t, sub, 3*time.Second)
	_ = f.Close()
	cancel()
	waitDone(t, l, 3*time.Second)
	if st := l.Status().State; st != StateStopped {
		t.Errorf("state %v, want stopped", st)
	}
	for { // buffered frames stay readable, then ErrClosed
		f, err := sub.Next(context.Background())
		if err != nil {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Next after stop = %v, want ErrClosed", err)
			}
			break
		}
		_ = f.Close()
	}
	if err := l.Start(context.Background()); err == nil {
		t.Error("restarting a stopped loop should fail")
	}
}

func TestLoopStartValidation(t *testing.T) {
	src := countingSource(1)
	for _, tc := range []struct {
		l    *Loop
		want string
	}{
		{&Loop{}, "'source' must be set"},
		{&Loop{Source: src, RingSize: -1}, "'ringSize'"},
		{&Loop{Source: src, Backoff: Backoff{Initial: time.Second, Max: time.Millisecond}}, "'backoff.max'"},
		{&Loop{Source: src, Backoff: Backoff{Jitter: 2}}, "'backoff.jitter'"},
		{&Loop{Source: src, StaleAfter: -1}, "'staleAfter'"},
	} {
		err := tc.l.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start = %v, want an error naming %s", err, tc.want)
		}
	}
	l := &Loop{Source: countingSource(0)}
	startLoop(t, l)
	if err := l.Start(context.Background()); err == nil {
		t.Error("second Start should fail")
	}
	// Close without Start must not hang.
	if err := (&Loop{Source: src}).Close(); err != nil {
		t.Error(err)
	}
}

func TestStatsFPSAndLatency(t *testing.T) {
	fc := newFakeClock()
	l := &Loop{Source: countingSource(0), Clock: fc, FPSWindow: time.Second}
	l.mu.Lock()
	l.lazyInit()
	l.mu.Unlock()
	for range 100 { // 4 s at 25 fps; only the last second counts
		fc.Advance(40 * time.Millisecond)
		l.record(fc.Now(), 5*time.Millisecond)
	}
	l.record(fc.Now(), 9*time.Millisecond)
	st := l.Stats()
	if st.FPS < 24 || st.FPS > 27 {
		t.Errorf("FPS %.2f, want ~25", st.FPS)
	}
	if st.FramesCaptured != 101 || st.ReadLatency.Last != 9*time.Millisecond || st.ReadLatency.Max != 9*time.Millisecond {
		t.Errorf("stats %+v", st)
	}
	if m := st.ReadLatency.Mean; m < 5*time.Millisecond || m > 6*time.Millisecond {
		t.Errorf("mean latency %s, want just above 5ms", m)
	}
	buckets, count, sum := l.readHistogram()
	if count != 101 || buckets[0.005] != 100 || buckets[0.01] != 101 || sum < 0.5 {
		t.Errorf("histogram %v count %d sum %g", buckets, count, sum)
	}
	fc.Advance(2 * time.Second)
	if fps := l.Stats().FPS; fps != 0 {
		t.Errorf("FPS %.2f two seconds after the last frame, want 0", fps)
	}
}

func TestSubscriptionLatestAndSharing(t *testing.T) {
	s := newSubscription("s", 4, nil)
	for i := 1; i <= 5; i++ {
		sf := newSharedFrame(tinyFrame(i))
		sf.f.Seq = uint64(i)
		s.push(sf)
		sf.release()
	}
	if s.Dropped() != 1 || s.Queued() != 4 {
		t.Fatalf("dropped %d queued %d, want 1 and 4", s.Dropped(), s.Queued())
	}
	f, err := s.Latest(context.Background())
	if err != nil || f.Seq != 5 {
		t.Fatalf("Latest = seq %d, %v; want 5", f.Seq, err)
	}
	_ = f.Close()
	if s.Dropped() != 4 {
		t.Errorf("Latest should count the 3 skipped frames: dropped %d", s.Dropped())
	}
	if _, ok, _ := s.TryNext(); ok {
		t.Error("TryNext on an empty ring returned a frame")
	}

	// Two holders: the first receiver gets a copy, the last one the
	// original Mat without a copy.
	a, b := newSubscription("a", 1, nil), newSubscription("b", 1, nil)
	sf := newSharedFrame(tinyFrame(9))
	orig := sf.f.Mat.Ptr()
	a.push(sf)
	b.push(sf)
	sf.release()
	fa, _, _ := a.TryNext()
	fb, _, _ := b.TryNext()
	if fa.Mat.Ptr() == orig || fb.Mat.Ptr() != orig {
		t.Errorf("first receiver should get a clone and the last the original")
	}
	fa.Mat.SetTo(gocv.NewScalar(0, 0, 0, 0)) // receivers may draw on their copy
	if px := bgrAt(fb.Mat, 0, 0); px[2] != 9 {
		t.Errorf("writing to one receiver's Mat changed the other's: %v", px)
	}
	_ = fa.Close()
	_ = fb.Close()
	_ = s.Close()
	_ = a.Close()
	_ = b.Close()
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v", err)
	}
}

func TestMatProfileBalanced(t *testing.T) {
	if !matProfileEnabled {
		t.Skip("run with -tags matprofile to count Mats")
	}
	start := matCount()
	func() {
		src, err := ParseURI("demo", Options{Width: 64, Height: 48, NoPace: true})
		if err != nil {
			t.Fatal(err)
		}
		l := &Loop{Source: src, Mirror: true}
		frozen := l.Subscribe("frozen", 3) // left for Loop.Close
		_ = frozen
		latest := l.Subscribe("latest", 2)
		fifo := l.Subscribe("fifo", 2)
		closed := l.Subscribe("closed-early", 2)
		startLoop(t, l)
		for range 20 {
			f, err := latest.Latest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
			f, err = fifo.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
		}
		_ = closed.Close()
		_ = l.Close()
	}()
	if n := matCount(); n != start {
		var b bytes.Buffer
		_ = writeMatProfile(&b)
		t.Fatalf("%d Mats leaked:\n%s", n-start, b.String())
	}
}
