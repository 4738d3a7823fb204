package capture

import (
	"time"

	"github.com/bwsagent/bwsagent/internal/backoff"
)

// Backoff is the reconnect policy (see backoff.Policy).
type Backoff = backoff.Policy

// DefaultBackoff recovers a replugged camera within about a second while
// polling a dead one at most every 5 s.
func DefaultBackoff() Backoff {
	return Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
}

// backoffWithDefaults fills zero fields from DefaultBackoff.
func backoffWithDefaults(b Backoff) Backoff {
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

// Clock is the time source of a Loop, replaceable in tests.
type Clock interface {
	Now() time.Time
	// After behaves like time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
