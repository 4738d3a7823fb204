package config

import (
	"strings"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/outbox"
)

func TestSyncConfig(t *testing.T) {
	const on = "sync:\n  enabled: true\n  url: http://127.0.0.1:9/extension/\n  appID: device1\n"
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "bws2 with the secret from a credential", yaml: on, check: func(t *testing.T, c Config) {
			if !c.Sync.Enabled || c.Sync.AppID != "device1" || c.Sync.AppSecret != "" || c.Sync.Timeout != 10*time.Second {
				t.Errorf("got %+v", c.Sync)
			}
		}},
		{name: "map rules", yaml: on + "  map:\n    - {from: bws/12, to: central/3, classOffset: 1000}\n", check: func(t *testing.T, c Config) {
			if want := []outbox.MapRule{{From: "bws/12", To: "central/3", ClassOffset: 1000}}; len(c.Sync.Map) != 1 || c.Sync.Map[0] != want[0] {
				t.Errorf("map %+v", c.Sync.Map)
			}
		}},
		{name: "env", yaml: on, env: map[string]string{"BWSAGENT_SYNC_BACKOFF_MAX": "1m", "BWSAGENT_SYNC_APP_SECRET_FILE": "/run/s"},
			check: func(t *testing.T, c Config) {
				if c.Sync.Backoff.Max != time.Minute || c.Sync.AppSecretFile != "/run/s" {
					t.Errorf("got %+v", c.Sync)
				}
			}},
		{name: "unknown key in a map rule", yaml: on + "  map:\n    - {from: bws, to: c, offset: 1}\n", wantErr: "unknown key 'sync.map[0].offset'"},
		{name: "unknown sync key", yaml: "sync:\n  secret: x\n", wantErr: "unknown key 'sync.secret'"},
		{name: "no url", yaml: "sync:\n  enabled: true\n", wantErr: "'sync.url'"},
		{name: "bad map rule", yaml: on + "  map:\n    - {from: 'bws/x', to: c}\n", wantErr: "'sync.map[0].from'"},
		{name: "backoff", yaml: on + "  backoff:\n    multiplier: 0.5\n", wantErr: "'sync.backoff.multiplier'"},
		{name: "samples too large for the outbox", yaml: on + "api:\n  maxUploadBytes: 33554432\n", wantErr: "'api.maxUploadBytes' must be at most"},
		{name: "disabled ignores the rest", yaml: "sync:\n  protocol: nope\n", check: func(t *testing.T, c Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{File: writeFile(t, tt.yaml)}
			if tt.env != nil {
				src.Env = envMap(tt.env)
			}
			c, err := Load(src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
