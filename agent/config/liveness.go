package config

import (
	"fmt"
)

// validateLiveness checks the liveness section with the thresholds' own
// rules (policy.Thresholds.Check), naming the keys.
func (c Config) validateLiveness() []error {
	var errs []error
	for _, p := range c.Liveness.Check() {
		if p.Other != "" {
			errs = append(errs, fmt.Errorf("'liveness.%s' must not exceed 'liveness.%s' (%g), got %g", p.Key, p.Other, p.OtherValue, p.Got))
			continue
		}
		errs = append(errs, fmt.Errorf("'liveness.%s' must be in [%g, %g], got %g", p.Key, p.Lo, p.Hi, p.Got))
	}
	return errs
}
