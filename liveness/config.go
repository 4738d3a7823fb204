package liveness

import "github.com/bwsagent/bwsagent/liveness/policy"

// Config holds the decision thresholds (package policy: defaults with
// their measurements, ranges, names).
type Config = policy.Thresholds

// DefaultConfig returns the thresholds chosen from the evaluation.
func DefaultConfig() Config { return policy.Default() }
