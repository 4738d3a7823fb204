package agent

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/bwsagent/bwsagent/face"
)

// preflightName is the data directory's record of the model files that
// loaded in a child process (see face.Preflight).
const preflightName = "models-preflight.json"

// preflightModels loads the model files in child processes before the
// engine loads them here, so a file OpenCV cannot read fails the start with
// an error naming it instead of aborting the daemon. Without
// Options.ModelPreflight (tests, embedders) it does nothing.
func (a *Agent) preflightModels(ctx context.Context) error {
	if len(a.opts.ModelPreflight) == 0 {
		return nil
	}
	p := face.Preflight{Command: a.opts.ModelPreflight, StateFile: filepath.Join(a.cfg.DataDir, preflightName)}
	if err := p.CheckModels(ctx, a.cfg.ModelsDir); err != nil {
		return fmt.Errorf("face engine: %w", err)
	}
	return nil
}
