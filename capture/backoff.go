package capture

import (
	"fmt"
	"time"
)

// Backoff is the reconnect policy: Initial, then ×Multiplier per failed
// attempt up to Max, each delay spread by ±Jitter so that several agents
// behind one flaky stream server do not retry in lockstep.
type Backoff struct {
	Initial    time.Duration // first delay (default 100ms)
	Max        time.Duration // cap (default 5s)
	Multiplier float64       // growth per attempt (default 2)
	Jitter     float64       // fraction 0..1 of random spread (default 0.2)
}

// DefaultBackoff recovers a replugged camera within about a second while
// polling a dead one at most every 5 s.
func DefaultBackoff() Backoff {
	return Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
}

func (b Backoff) withDefaults() Backoff {
	d := DefaultBackoff()
	if b.Initial == 0 {
		b.Initial = d.Initial
	}
	if b.Max == 0 {
		b.Max = d.Max
	}
	if b.Multiplier == 0 {
		b.Multiplier = d.Multiplier
	}
	return b
}

func (b Backoff) validate() error {
	switch {
	case b.Initial < 0:
		return fmt.Errorf("'backoff.initial' must not be negative (got %s)", b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("'backoff.max' (%s) must be at least 'backoff.initial' (%s)", b.Max, b.Initial)
	case b.Multiplier < 1:
		return fmt.Errorf("'backoff.multiplier' must be at least 1 (got %g)", b.Multiplier)
	case b.Jitter < 0 || b.Jitter > 1:
		return fmt.Errorf("'backoff.jitter' must be between 0 and 1 (got %g)", b.Jitter)
	}
	return nil
}

// Delay returns the wait before retry number attempt (0-based); r is a
// uniform random number in [0,1) that drives the jitter.
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	d *= 1 + b.Jitter*(2*r-1)
	return time.Duration(min(d, float64(b.Max)))
}

// Clock is the time source of a Loop, replaceable in tests.
type Clock interface {
	Now() time.Time
	// After behaves like time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
