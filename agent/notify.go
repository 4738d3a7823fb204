package agent

import "context"

// startWatchdog runs Options.Watchdog with Healthy in a goroutine the agent
// owns and returns what stops it and waits for it. Run calls it right
// after READY=1 and stops it before STOPPING=1, so no ping follows the
// shutdown notice.
func (a *Agent) startWatchdog(ctx context.Context) (stop func()) {
	if a.opts.Watchdog == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Only this goroutine calls health, so the flag needs no lock.
		unhealthy := false
		health := func() error {
			err := a.Healthy()
			switch {
			case err != nil && !unhealthy:
				a.log.Error("unhealthy: watchdog pings withheld, systemd will restart the agent unless it recovers", "err", err)
			case err == nil && unhealthy:
				a.log.Info("healthy again: watchdog pings resumed")
			}
			unhealthy = err != nil
			return err
		}
		if err := a.opts.Watchdog(ctx, health); err != nil {
			a.log.Error("watchdog stopped", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
