package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Source produces frames. Open, Read and Close are called from one
// goroutine (the Loop's); Read is never called concurrently with Close.
type Source interface {
	// Open connects to the device, file or stream. It may be called again
	// after Close to reconnect.
	Open(ctx context.Context) error
	// Read blocks until the next frame, ctx is done or the source fails.
	// The returned Frame owns its BGR Mat. Finite sources (files, image
	// sequences without Loop) return io.EOF at their end; live sources
	// never do, a dropped stream is an ordinary (retryable) error.
	Read(ctx context.Context) (Frame, error)
	// Close releases the device. It is safe to call on a closed source.
	Close() error
	// String describes the source for logs, with credentials redacted.
	String() string
}

// Options tune how ParseURI builds a Source. The zero value is usable.
type Options struct {
	// Width and Height request a capture size from cameras and set the
	// size of the demo pattern. 0 keeps the device default (demo: 640×480).
	Width, Height int
	// FPS requests a camera frame rate, and is the playback rate of image
	// sequences and the demo pattern (default 25). Video files play at
	// their own rate.
	FPS float64
	// FOURCC requests a camera pixel format, e.g. "MJPG" so that USB
	// cameras deliver 30 fps at 720p instead of a few fps of raw YUYV.
	FOURCC string
	// Loop restarts files and image sequences at their end instead of
	// returning io.EOF.
	Loop bool
	// NoPace reads files and image sequences as fast as they decode
	// instead of at their frame rate (batch evaluation, tests).
	NoPace bool
	// DemoVideo is a video file (e.g. a real face sequence from the setup
	// data) that the "demo" source loops; empty means a generated pattern.
	DemoVideo string
	// ReadTimeout bounds how long a network stream may stay silent before
	// Read fails so that the Loop reconnects (default 5s). OpenCV-backed
	// streams (rtsp) use FFmpeg's own, longer, timeout.
	ReadTimeout time.Duration
	// MaxFrameBytes bounds one JPEG of an MJPEG stream (default 16 MiB), so
	// that a broken server cannot make us buffer without limit.
	MaxFrameBytes int
	// Logger receives open-time warnings (e.g. a camera ignoring the
	// requested size). Nil discards.
	Logger *slog.Logger
}

const (
	defaultFPS           = 25.0
	defaultReadTimeout   = 5 * time.Second
	defaultMaxFrameBytes = 16 << 20
)

func (o Options) validate() error {
	switch {
	case o.Width < 0 || o.Height < 0:
		return fmt.Errorf("'width' and 'height' must not be negative (got %dx%d)", o.Width, o.Height)
	case o.FPS < 0 || o.FPS > 1000:
		return fmt.Errorf("'fps' must be between 0 and 1000 (got %g)", o.FPS)
	case o.FOURCC != "" && len(o.FOURCC) != 4:
		return fmt.Errorf("'fourcc' must be 4 characters such as MJPG or YUYV (got %q)", o.FOURCC)
	case o.ReadTimeout < 0:
		return fmt.Errorf("'readTimeout' must not be negative (got %s)", o.ReadTimeout)
	case o.MaxFrameBytes < 0:
		return fmt.Errorf("'maxFrameBytes' must not be negative (got %d)", o.MaxFrameBytes)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.ReadTimeout == 0 {
		o.ReadTimeout = defaultReadTimeout
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = defaultMaxFrameBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) fpsOr(def float64) float64 {
	if o.FPS > 0 {
		return o.FPS
	}
	return def
}

// Errors returned by sources and subscriptions.
var (
	// ErrNoFrame means a live source delivered an empty frame (camera
	// unplugged, stream stalled). The Loop reconnects.
	ErrNoFrame = errors.New("capture: source returned no frame")
	// ErrClosed is returned by Subscription.Next after the subscription or
	// its Loop was closed.
	ErrClosed = errors.New("capture: closed")
)

// PermanentError marks an error that retrying cannot fix (missing file,
// malformed pattern). The Loop stops with state Failed instead of
// reconnecting forever.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err (or an error it wraps) is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// isEnd reports whether err means a finite source ended normally.
func isEnd(err error) bool { return errors.Is(err, io.EOF) }

// pacer releases frames at a fixed rate so that a file plays at real speed.
// After a stall (slow decode, paused consumer of the clock) it restarts the
// schedule instead of bursting to catch up.
type pacer struct {
	interval time.Duration
	next     time.Time
	now      func() time.Time
	// wait blocks for d or until ctx is done.
	wait func(ctx context.Context, d time.Duration) error
}

func newPacer(fps float64) *pacer {
	return &pacer{
		interval: time.Duration(float64(time.Second) / fps),
		now:      time.Now,
		wait:     sleepCtx,
	}
}

// maxLag is how far behind schedule the pacer may fall before it resets.
const maxLag = 250 * time.Millisecond

func (p *pacer) pace(ctx context.Context) error {
	now := p.now()
	switch {
	case p.next.IsZero() || now.Sub(p.next) > maxLag:
		p.next = now
	case p.next.After(now):
		if err := p.wait(ctx, p.next.Sub(now)); err != nil {
			return err
		}
	}
	p.next = p.next.Add(p.interval)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
