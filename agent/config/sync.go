package config

import (
	"fmt"

	"github.com/bwsagent/bwsagent/store"
)

// validateSync checks the sync block (outbox.Config.Validate) and how it
// fits the rest: every sample the API accepts must fit in an outbox job.
func (c Config) validateSync() []error {
	var errs []error
	if err := c.Sync.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Sync.Enabled && c.API.MaxUploadBytes > store.MaxOutboxSampleBytes {
		errs = append(errs, fmt.Errorf("'api.maxUploadBytes' must be at most %d with sync enabled (the largest sample an outbox job holds), got %d",
			store.MaxOutboxSampleBytes, c.API.MaxUploadBytes))
	}
	return errs
}
