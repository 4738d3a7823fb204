package outbox

import (
	"time"

	"github.com/bwsagent/bwsagent/internal/backoff"
)

// Backoff is the retry policy after a transient failure (see backoff.Policy).
type Backoff = backoff.Policy

// DefaultBackoff retries a blip within a second or two and polls a centre
// that is down for hours every five minutes.
func DefaultBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: 5 * time.Minute, Multiplier: 2, Jitter: 0.2}
}
