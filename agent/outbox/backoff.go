package outbox

import (
	"fmt"
	"time"
)

// Backoff is the retry policy after a transient failure: Initial, then
// ×Multiplier per consecutive failure up to Max, each delay spread by
// ±Jitter so that many devices behind one recovering centre do not retry in
// lockstep.
type Backoff struct {
	Initial    time.Duration `yaml:"initial"`
	Max        time.Duration `yaml:"max"`
	Multiplier float64       `yaml:"multiplier"`
	Jitter     float64       `yaml:"jitter"` // fraction 0..1
}

// DefaultBackoff retries a blip within a second or two and polls a centre
// that is down for hours every five minutes.
func DefaultBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: 5 * time.Minute, Multiplier: 2, Jitter: 0.2}
}

func (b Backoff) validate(prefix string) error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("'%s.initial' must be greater than zero", prefix)
	case b.Max < b.Initial:
		return fmt.Errorf("'%s.max' (%s) must be at least '%s.initial' (%s)", prefix, b.Max, prefix, b.Initial)
	case b.Multiplier < 1:
		return fmt.Errorf("'%s.multiplier' must be at least 1 (got %g)", prefix, b.Multiplier)
	case b.Jitter < 0 || b.Jitter > 1:
		return fmt.Errorf("'%s.jitter' must be between 0 and 1 (got %g)", prefix, b.Jitter)
	}
	return nil
}

// Delay returns the wait before retry number attempt (0-based); r is a
// uniform random number in [0,1) that drives the jitter. The result never
// exceeds Max.
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	d *= 1 + b.Jitter*(2*r-1)
	return time.Duration(min(d, float64(b.Max)))
}
