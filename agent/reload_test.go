package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/config"
)

// A reload applies the reloadable keys and names the others.
func TestReloadSplit(t *testing.T) {
	cur := config.Default()
	tests := []struct {
		name             string
		change           func(*config.Config)
		logs             bool
		applied, restart []string
	}{
		{"nothing", func(*config.Config) {}, true, nil, nil},
		{"reloadable", func(c *config.Config) {
			c.LogLevel = "debug"
			c.API.CORSOrigins = []string{"https://ui.example"}
			c.API.VerifyThreshold = 0.4
			c.API.LockoutWindow = time.Hour
		}, true, []string{"logLevel", "api.corsOrigins", "api.verifyThreshold", "api.lockoutWindow"}, nil},
		{"logging without Logs needs a restart", func(c *config.Config) { c.LogFormat = "json" }, false,
			nil, []string{"logFormat"}},
		{"restart keys", func(c *config.Config) {
			c.Listen = "127.0.0.1:9"
			c.API.BasePath = "/x/"
			c.Capture.FPS = 5
			c.API.AllowedHosts = []string{"kiosk.lan"}
		}, true, []string{"api.allowedHosts"}, []string{"listen", "capture.fps", "api.basePath"}},
		{"an empty list equals a missing one", func(c *config.Config) { c.API.CORSOrigins = nil }, true, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := config.Default()
			tt.change(&next)
			merged := withReloadable(cur, next, tt.logs)
			applied, restart := changedKeys(cur, merged), changedKeys(merged, next)
			if !reflect.DeepEqual(applied, tt.applied) || !reflect.DeepEqual(restart, tt.restart) {
				t.Errorf("applied %q restart %q, want %q %q", applied, restart, tt.applied, tt.restart)
			}
		})
	}
}
