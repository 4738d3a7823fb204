package agent

import (
	"context"
	"fmt"
	"os"

	"github.com/bwsagent/bwsagent/agent/api"
	"github.com/bwsagent/bwsagent/agent/outbox"
)

// startSync starts the sync sender when sync mode is on: enrollments and
// deletions then go through the store's outbox to the central BWS. The
// secret is read here (a file or systemd credential), not when the config
// loads, so that commands which only open the store do not need it.
func (a *Agent) startSync(ctx context.Context) error {
	if !a.cfg.Sync.Enabled {
		return nil
	}
	cfg, err := a.cfg.Sync.LoadSecrets(os.Getenv("CREDENTIALS_DIRECTORY"))
	if err != nil {
		return err
	}
	client, err := outbox.NewClient(cfg)
	if err != nil {
		return err
	}
	s, err := outbox.New(outbox.Options{DB: a.db, Client: client, Config: cfg, Logger: a.opts.Logger, Registerer: a.reg})
	if err != nil {
		return err
	}
	// The sender ends with Close, which flushes what is due; New's context
	// ending (SIGTERM) must not cut that flush short.
	if err := s.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	a.sync = s
	a.log.Info("sync mode on", "protocol", cfg.Protocol, "url", cfg.URL)
	return nil
}

// syncHook is the API's view of the sender (api.Syncer).
type syncHook struct{ s *outbox.Sender }

func (h syncHook) Notify()     { h.s.Notify() }
func (h syncHook) Status() any { return h.s.Status() }

// apiSync is Deps.Sync: nil (an untyped nil interface) when sync is off.
func (a *Agent) apiSync() api.Syncer {
	if a.sync == nil {
		return nil
	}
	return syncHook{a.sync}
}

// notifySync is the admin hook after outbox jobs were requeued or dropped.
func (a *Agent) notifySync() {
	if a.sync != nil {
		a.sync.Notify()
	}
}

// stopSync flushes and stops the sender: after the HTTP server, before the
// store closes.
func (a *Agent) stopSync() error {
	if a.sync == nil {
		return nil
	}
	if err := a.sync.Close(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}
