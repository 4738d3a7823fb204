package main

import (
	"context"
	"fmt"

	"github.com/bwsagent/bwsagent/agent"
	"github.com/bwsagent/bwsagent/agent/sdnotify"
)

func (m *Main) serve(ctx context.Context, args []string) error {
	fs := m.newFlagSet("serve", "[options]",
		`Runs the agent: the BWS 2 extension API under the base path (default
/extension/), /openapi.json, /metrics, /healthz and /readyz on one listener,
and the admin socket <data-dir>/admin.sock that 'bwsagent apps', 'classes',
'backup' and 'keys' use while the agent runs.

Configuration comes from defaults, then --config FILE (see
configs/bwsagent.yaml for every option), then BWSAGENT_* environment
variables, then these flags. On first start the data directory, the store and
the template key (<data-dir>/template.key, mode 0600) are created: back the
key up, the store cannot be read without it.

SIGTERM or Ctrl-C stops accepting requests, lets those in flight finish
within 'shutdownTimeout' and closes the store. SIGHUP ('systemctl reload')
reads the configuration again and applies logLevel, logFormat,
api.allowedHosts, api.corsOrigins, the thresholds and the lockout settings;
other changed keys are logged as needing a restart.`)
	cf := addConfigFlags(fs)
	cf.setting("listen", "listen", "TCP address of the HTTP listener (default 127.0.0.1:8480)")
	cf.setting("models-dir", "modelsDir", "model cache directory (see 'bwsagent models fetch')")
	cf.setting("workers", "workers", "parallel face-model workers (default: one per CPU)")
	cf.setting("source", "source", "camera for the preview, capture sessions and kiosk page: camera:0, v4l2:/dev/video0, file:PATH, rtsp://…, demo (a synthetic head), … (default none)")
	cf.setting("cors-origin", "api.corsOrigins", "browser origin allowed to call the API, e.g. https://kiosk.example.com (repeatable)")
	cf.setting("log-level", "logLevel", "debug, info, warn or error (default info)")
	cf.setting("log-format", "logFormat", "text or json (default text)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", fs.Args())
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	// Under systemd: structured entries to the journal, readiness and
	// watchdog pings to NOTIFY_SOCKET, the socket bwsagent.socket passed.
	logs, err := agent.NewLogs(m.Stderr, cfg.LogLevel, cfg.LogFormat, agent.Journal(m.Stderr))
	if err != nil {
		return err
	}
	log := logs.Logger()
	n, err := sdnotify.New(sdnotify.Options{})
	if err != nil {
		return err
	}
	ln, err := sdnotify.Activated()
	if err != nil {
		return err
	}
	a, err := agent.New(ctx, cfg, agent.Options{Logger: log, Version: Version, ModelPreflight: m.ModelPreflight,
		Listener: ln, Notify: func(s string) { _ = n.Notify(s) }, Watchdog: n.Watchdog,
		LoadConfig: cf.load, Logs: logs})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return a.Run(ctx)
}
