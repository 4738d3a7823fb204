package capture

import (
	"context"
	"sync"
	"sync/atomic"
)

// Subscription receives a Loop's frames through a bounded ring. When the
// ring is full the oldest frame is dropped (and counted), so the Loop never
// waits for a subscriber. A ring of size 1 always holds just the newest
// frame.
type Subscription struct {
	name   string
	notify chan struct{} // capacity 1: "the ring may have frames"
	done   chan struct{} // closed when no more frames will arrive
	onStop func(*Subscription)

	mu      sync.Mutex
	ring    []*sharedFrame // circular, len == capacity
	head, n int
	stopErr error // why no more frames arrive; nil while live
	closed  bool  // Close was called: frames are gone too

	delivered atomic.Uint64
	dropped   atomic.Uint64
	dropLog   dropLogger
}

func newSubscription(name string, size int, onStop func(*Subscription)) *Subscription {
	return &Subscription{
		name:   name,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		onStop: onStop,
		ring:   make([]*sharedFrame, size),
	}
}

// Name is the label given at Subscribe, used in stats and metrics.
func (s *Subscription) Name() string { return s.name }

// Dropped is how many frames were discarded because the ring was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Delivered is how many frames Next/Latest/TryNext have returned.
func (s *Subscription) Delivered() uint64 { return s.delivered.Load() }

// Ready is signalled when frames may be available, for select loops that
// then call TryNext.
func (s *Subscription) Ready() <-chan struct{} { return s.notify }

// Done is closed when the Loop has stopped delivering; buffered frames can
// still be drained with TryNext/Next.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// push adds f (taking one reference) and drops the oldest frame if the ring
// is full. It never blocks on the consumer. It reports whether a frame was
// dropped.
func (s *Subscription) push(f *sharedFrame) (dropped bool) {
	s.mu.Lock()
	if s.stopErr != nil || s.closed {
		s.mu.Unlock()
		return false
	}
	f.retain()
	var old *sharedFrame
	if s.n == len(s.ring) {
		old = s.ring[s.head]
		s.ring[s.head] = nil
		s.head = (s.head + 1) % len(s.ring)
		s.n--
	}
	s.ring[(s.head+s.n)%len(s.ring)] = f
	s.n++
	s.mu.Unlock()
	if old != nil {
		old.release()
		s.dropped.Add(1)
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return old != nil
}

// pop removes the oldest (or, with latest, the newest) frame. With latest,
// skipped older frames count as dropped.
func (s *Subscription) pop(latest bool) (*sharedFrame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.n == 0 {
		if s.stopErr != nil {
			return nil, s.stopErr
		}
		return nil, nil
	}
	if latest {
		for s.n > 1 {
			s.ring[s.head].release()
			s.ring[s.head] = nil
			s.head = (s.head + 1) % len(s.ring)
			s.n--
			s.dropped.Add(1)
		}
	}
	f := s.ring[s.head]
	s.ring[s.head] = nil
	s.head = (s.head + 1) % len(s.ring)
	s.n--
	return f, nil
}

// TryNext returns the oldest buffered frame without waiting. ok is false if
// none is buffered. err is io.EOF once a finite source has ended and the
// ring is drained, or ErrClosed after Close.
func (s *Subscription) TryNext() (f Frame, ok bool, err error) {
	sf, err := s.pop(false)
	if sf == nil {
		return Frame{}, false, err
	}
	s.delivered.Add(1)
	return sf.take(), true, nil
}

// Next waits for the oldest buffered frame. The caller owns the returned
// Frame and must Close it. It returns ctx.Err() when ctx ends, io.EOF when
// a finite source has ended and the ring is drained, and ErrClosed after
// the subscription or its Loop was closed.
func (s *Subscription) Next(ctx context.Context) (Frame, error) {
	return s.next(ctx, false)
}

// Latest is Next that skips to the newest buffered frame, counting the
// skipped ones as dropped: what a live preview wants.
func (s *Subscription) Latest(ctx context.Context) (Frame, error) {
	return s.next(ctx, true)
}

func (s *Subscription) next(ctx context.Context, latest bool) (Frame, error) {
	for {
		sf, err := s.pop(latest)
		if sf != nil {
			s.delivered.Add(1)
			return sf.take(), nil
		}
		if err != nil {
			return Frame{}, err
		}
		select {
		case <-s.notify:
		case <-s.done:
			// Loop stopped: one more pop drains or reports why.
			sf, err := s.pop(latest)
			if sf != nil {
				s.delivered.Add(1)
				return sf.take(), nil
			}
			if err == nil {
				err = ErrClosed
			}
			return Frame{}, err
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		}
	}
}

// Queued is the number of frames waiting in the ring.
func (s *Subscription) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// stop ends delivery with err (io.EOF or ErrClosed) and, when discard is
// set, releases the buffered frames too.
func (s *Subscription) stop(err error, discard bool) {
	s.mu.Lock()
	first := s.stopErr == nil
	if first {
		s.stopErr = err
	}
	var drop []*sharedFrame
	if discard {
		s.closed = true
		for s.n > 0 {
			drop = append(drop, s.ring[s.head])
			s.ring[s.head] = nil
			s.head = (s.head + 1) % len(s.ring)
			s.n--
		}
	}
	s.mu.Unlock()
	for _, f := range drop {
		f.release()
	}
	if first {
		close(s.done)
	}
}

// Close unsubscribes and releases buffered frames. Safe to call twice.
func (s *Subscription) Close() error {
	s.stop(ErrClosed, true)
	if s.onStop != nil {
		s.onStop(s)
	}
	return nil
}
