package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// State is where a Loop is in its life.
type State int

const (
	StateIdle         State = iota // not started
	StateConnecting                // opening the source for the first time
	StateRunning                   // source open, frames flowing
	StateReconnecting              // waiting out a backoff after an error
	StateEnded                     // a finite source reached its end
	StateFailed                    // a permanent error (e.g. missing file)
	StateStopped                   // stopped by ctx or Close
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateRunning:
		return "running"
	case StateReconnecting:
		return "reconnecting"
	case StateEnded:
		return "ended"
	case StateFailed:
		return "failed"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is a snapshot of a Loop's state for health endpoints and logs.
type Status struct {
	State State
	// Since is when State was entered.
	Since time.Time
	// LastError is the most recent source error (kept after recovery so a
	// flapping camera is visible) and LastErrorTime when it happened.
	LastError     error
	LastErrorTime time.Time
	// LastFrame is when the newest frame was delivered (zero before any).
	LastFrame time.Time
	// Reconnects counts reopen attempts after errors.
	Reconnects uint64
}

// Loop is the capture component: it owns one goroutine that reads Source
// and hands every frame to all subscriptions without ever waiting for one.
// Set the config fields, then Start; Close (or cancelling Start's ctx)
// stops it. Fields must not be changed after Start.
type Loop struct {
	// Source is read by the loop; required. The loop opens and closes it.
	Source Source
	// Logger receives state changes, rate-limited errors and drops.
	// Nil discards.
	Logger *slog.Logger
	// Mirror flips frames horizontally (selfie view). See SetMirror to
	// change it while running.
	Mirror bool
	// RingSize is the ring size for Subscribe(name, 0) (default 2).
	RingSize int
	// Backoff is the reconnect policy; zero fields take DefaultBackoff's.
	Backoff Backoff
	// StaleAfter is how old the last frame may be for Healthy (default 2s).
	StaleAfter time.Duration
	// FPSWindow is the window Stats.FPS is measured over (default 5s).
	FPSWindow time.Duration
	// Clock drives backoff waits and frame bookkeeping; nil is real time.
	Clock Clock

	rand func() float64 // jitter source; tests replace it

	mirror atomic.Bool
	mu     sync.Mutex
	inited bool
	cancel context.CancelFunc
	done   chan struct{}
	subs   []*Subscription // copy-on-write: run reads it without the lock
	endErr error           // given to subscriptions made after the end
	// retired keeps the counters of closed subscriptions per name so that
	// exported counters never go backwards.
	retired map[string]SubscriberStats
	status  Status
	st      loopStats
}

const (
	defaultRingSize   = 2
	defaultStaleAfter = 2 * time.Second
	defaultFPSWindow  = 5 * time.Second
	// errLogEvery rate-limits repeated source errors and drop warnings.
	errLogEvery = 10 * time.Second
)

// lazyInit fills defaults once; callers hold l.mu.
func (l *Loop) lazyInit() {
	if l.inited {
		return
	}
	l.inited = true
	l.done = make(chan struct{})
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	if l.Clock == nil {
		l.Clock = realClock{}
	}
	if l.rand == nil {
		l.rand = rand.Float64
	}
	if l.RingSize == 0 {
		l.RingSize = defaultRingSize
	}
	if l.StaleAfter == 0 {
		l.StaleAfter = defaultStaleAfter
	}
	if l.FPSWindow == 0 {
		l.FPSWindow = defaultFPSWindow
	}
	l.Backoff = backoffWithDefaults(l.Backoff)
	l.mirror.Store(l.Mirror)
	l.status = Status{State: StateIdle, Since: l.Clock.Now()}
}

func (l *Loop) validate() error {
	switch {
	case l.Source == nil:
		return errors.New("'source' must be set")
	case l.RingSize < 0 || l.RingSize > 1024:
		return fmt.Errorf("'ringSize' must be between 1 and 1024 (got %d)", l.RingSize)
	case l.StaleAfter < 0:
		return fmt.Errorf("'staleAfter' must not be negative (got %s)", l.StaleAfter)
	case l.FPSWindow < 0:
		return fmt.Errorf("'fpsWindow' must not be negative (got %s)", l.FPSWindow)
	}
	return backoffWithDefaults(l.Backoff).Validate("backoff")
}

// Start validates the configuration and starts the capture goroutine. The
// source is opened by that goroutine, so a missing camera does not fail
// Start: the loop keeps retrying and reports StateReconnecting. Cancelling
// ctx stops the loop like Close.
func (l *Loop) Start(ctx context.Context) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("capture loop: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lazyInit()
	if l.cancel != nil || l.status.State != StateIdle {
		return errors.New("capture loop: already started")
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.setStateLocked(StateConnecting)
	go l.run(ctx)
	return nil
}

// Close stops the loop, waits for its goroutine (which closes the source)
// and releases every buffered frame; subscriptions then return ErrClosed.
// A read in flight is not interruptible for OpenCV sources, so Close can
// wait for it (a frame interval for cameras and files).
func (l *Loop) Close() error {
	l.mu.Lock()
	l.lazyInit()
	cancel := l.cancel
	if cancel == nil {
		// Never started: nothing runs, but Done must still close.
		l.cancel = func() {}
		l.setStateLocked(StateStopped)
		close(l.done)
	}
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	<-l.done
	l.mu.Lock()
	subs := l.subs
	l.subs = nil
	for _, s := range subs {
		l.retireLocked(s)
	}
	l.mu.Unlock()
	for _, s := range subs {
		s.stop(ErrClosed, true)
	}
	return nil
}

// Done is closed when the capture goroutine has exited (Close, ctx,
// end of a finite source, or a permanent error).
func (l *Loop) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lazyInit()
	return l.done
}

// SetMirror switches selfie-view mirroring on or off while running.
func (l *Loop) SetMirror(on bool) { l.mirror.Store(on) }

// Subscribe returns a subscription with a ring of size frames (0 means
// RingSize). name labels it in stats and metrics; names may repeat. The
// caller must Close the subscription (or the Loop) to release buffered
// frames.
func (l *Loop) Subscribe(name string, size int) *Subscription {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lazyInit()
	if size <= 0 {
		size = l.RingSize
	}
	s := newSubscription(name, size, l.unsubscribe)
	select {
	case <-l.done:
		err := l.endErr
		if err == nil {
			err = ErrClosed
		}
		s.stop(err, false)
		return s
	default:
	}
	subs := make([]*Subscription, 0, len(l.subs)+1)
	l.subs = append(append(subs, l.subs...), s)
	return s
}

func (l *Loop) unsubscribe(s *Subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	subs := make([]*Subscription, 0, len(l.subs))
	found := false
	for _, o := range l.subs {
		if o != s {
			subs = append(subs, o)
		} else {
			found = true
		}
	}
	l.subs = subs
	if found {
		l.retireLocked(s)
	}
}

func (l *Loop) retireLocked(s *Subscription) {
	if l.retired == nil {
		l.retired = map[string]SubscriberStats{}
	}
	r := l.retired[s.name]
	r.Name = s.name
	r.Delivered += s.Delivered()
	r.Dropped += s.Dropped()
	l.retired[s.name] = r
}

// Status returns the current state, last error and last frame time.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lazyInit()
	return l.status
}

// LastFrameTime is when the newest frame was delivered (zero before any).
func (l *Loop) LastFrameTime() time.Time { return l.Status().LastFrame }

// Healthy reports whether the loop is running and delivered a frame within
// StaleAfter: what a watchdog or readiness probe should check.
func (l *Loop) Healthy() bool {
	st := l.Status()
	return st.State == StateRunning && !st.LastFrame.IsZero() &&
		l.Clock.Now().Sub(st.LastFrame) <= l.StaleAfter
}

func (l *Loop) setStateLocked(s State) {
	if l.status.State != s {
		l.status.State = s
		l.status.Since = l.Clock.Now()
	}
}

func (l *Loop) setState(s State, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setStateLocked(s)
	if err != nil {
		l.status.LastError = err
		l.status.LastErrorTime = l.Clock.Now()
	}
}

// run is the capture goroutine.
func (l *Loop) run(ctx context.Context) {
	log := l.Logger.With("source", l.Source.String())
	var (
		attempt   int
		failedAt  time.Time
		errLog    rateLimiter
		seq       uint64
		endState  = StateStopped
		endErr    error
		subsErr   = error(ErrClosed)
		lastError error
	)
	for {
		err := l.Source.Open(ctx)
		if err == nil {
			l.setState(StateRunning, nil)
			var n uint64
			n, err = l.readFrames(ctx, &seq, func() {
				if !failedAt.IsZero() {
					log.Info("capture source recovered", "down", l.Clock.Now().Sub(failedAt).Round(time.Millisecond), "attempts", attempt)
					failedAt = time.Time{}
				}
			})
			if n > 0 {
				attempt = 0
			}
		}
		if cerr := l.Source.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", l.Source, cerr)
		}
		if ctx.Err() != nil {
			break
		}
		if isEnd(err) {
			log.Info("capture source ended")
			endState, subsErr = StateEnded, io.EOF
			break
		}
		if IsPermanent(err) {
			log.Error("capture source failed permanently", "err", err)
			endState, endErr, subsErr = StateFailed, err, err
			break
		}
		if err == nil {
			err = ErrNoFrame // a source that returns nothing and no error
		}
		delay := l.Backoff.Delay(attempt, l.rand())
		attempt++
		if failedAt.IsZero() {
			failedAt = l.Clock.Now()
		}
		l.mu.Lock()
		l.status.Reconnects++
		l.mu.Unlock()
		l.setState(StateReconnecting, err)
		if n := errLog.allow(l.Clock.Now()); n >= 0 || err.Error() != errString(lastError) {
			log.Warn("capture source error, reconnecting", "err", err, "retry_in", delay.Round(time.Millisecond), "attempt", attempt, "suppressed", max(n, 0))
		}
		lastError = err
		select {
		case <-l.Clock.After(delay):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	l.mu.Lock()
	l.setStateLocked(endState)
	if endErr != nil {
		l.status.LastError, l.status.LastErrorTime = endErr, l.Clock.Now()
	}
	l.endErr = subsErr
	subs := l.subs
	close(l.done)
	l.mu.Unlock()
	for _, s := range subs {
		s.stop(subsErr, false)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// readFrames reads until an error, returning how many frames it read.
// onFrame runs after the first frame.
func (l *Loop) readFrames(ctx context.Context, seq *uint64, onFirst func()) (uint64, error) {
	var n uint64
	for ctx.Err() == nil {
		t0 := l.Clock.Now()
		f, err := l.Source.Read(ctx)
		if err != nil {
			return n, err
		}
		if f.Mat.Empty() {
			_ = f.Close()
			return n, fmt.Errorf("read %s: %w", l.Source, ErrNoFrame)
		}
		now := l.Clock.Now()
		if l.mirror.Load() {
			// cv::flip works in place: no second buffer per frame.
			gocv.Flip(f.Mat, &f.Mat, 1)
		}
		*seq++
		f.Seq = *seq
		n++
		if n == 1 {
			onFirst()
		}
		l.record(now, now.Sub(t0))
		l.distribute(f, now)
	}
	return n, ctx.Err()
}

// distribute hands f to every subscription; it never blocks on them.
func (l *Loop) distribute(f Frame, now time.Time) {
	l.mu.Lock()
	subs := l.subs
	l.mu.Unlock()
	sf := newSharedFrame(f)
	for _, s := range subs {
		if s.push(sf) {
			if n := s.dropLog.allow(now); n >= 0 {
				l.Logger.Warn("capture subscriber too slow, dropping oldest frames",
					"subscriber", s.name, "dropped_total", s.Dropped())
			}
		}
	}
	sf.release()
}

// rateLimiter allows one event per errLogEvery and counts the rest.
type rateLimiter struct {
	last       time.Time
	suppressed int
}

// allow returns -1 if the event should be suppressed, else how many were
// suppressed since the last allowed one.
func (r *rateLimiter) allow(now time.Time) int {
	if !r.last.IsZero() && now.Sub(r.last) < errLogEvery {
		r.suppressed++
		return -1
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n
}

// dropLogger is a rateLimiter used only by the loop goroutine.
type dropLogger = rateLimiter
