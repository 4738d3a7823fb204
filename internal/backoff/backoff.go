// Package backoff is the retry policy shared by everything that reconnects
// or redelivers: exponential growth up to a cap, with jitter so that many
// devices behind one recovering server do not retry in lockstep.
package backoff

import (
	"fmt"
	"time"
)

// Policy waits Initial, then ×Multiplier per consecutive failure up to Max,
// each delay spread by ±Jitter (a fraction 0..1).
type Policy struct {
	Initial    time.Duration `yaml:"initial"`
	Max        time.Duration `yaml:"max"`
	Multiplier float64       `yaml:"multiplier"`
	Jitter     float64       `yaml:"jitter"`
}

// Validate checks the policy; errors name the keys under prefix
// (e.g. "sync.backoff").
func (p Policy) Validate(prefix string) error {
	switch {
	case p.Initial <= 0:
		return fmt.Errorf("'%s.initial' must be greater than zero (got %s)", prefix, p.Initial)
	case p.Max < p.Initial:
		return fmt.Errorf("'%s.max' (%s) must be at least '%s.initial' (%s)", prefix, p.Max, prefix, p.Initial)
	case p.Multiplier < 1:
		return fmt.Errorf("'%s.multiplier' must be at least 1 (got %g)", prefix, p.Multiplier)
	case p.Jitter < 0 || p.Jitter > 1:
		return fmt.Errorf("'%s.jitter' must be between 0 and 1 (got %g)", prefix, p.Jitter)
	}
	return nil
}

// Delay returns the wait before retry number attempt (0-based); r is a
// uniform random number in [0,1) that drives the jitter. The result never
// exceeds Max.
func (p Policy) Delay(attempt int, r float64) time.Duration {
	d := float64(p.Initial)
	for i := 0; i < attempt && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	d = min(d, float64(p.Max))
	d *= 1 + p.Jitter*(2*r-1)
	return time.Duration(min(d, float64(p.Max)))
}
