package agent

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bwsagent/bwsagent/agent/config"
)

// SIGHUP ('systemctl reload bwsagent') reloads the configuration: the file,
// the environment and the command line again, validated as at start. What
// withReloadable copies takes effect at once — logLevel, logFormat,
// api.allowedHosts, api.corsOrigins, api.verifyThreshold,
// api.identifyThreshold and the lockout settings (api.lockoutFailures,
// api.lockoutWindow, api.authFailures, api.authWindow, api.maxAuthLockout).
// Every other key needs a restart: the reload names those that changed,
// in the log and in STATUS, and leaves them as they were. An invalid
// configuration is refused whole and the running one stays.

// withReloadable returns cur with the options a reload applies taken from
// next. logs says whether logging can change (Options.Logs is set).
func withReloadable(cur, next config.Config, logs bool) config.Config {
	if logs {
		cur.LogLevel, cur.LogFormat = next.LogLevel, next.LogFormat
	}
	a, n := &cur.API, next.API
	a.AllowedHosts, a.CORSOrigins = n.AllowedHosts, n.CORSOrigins
	a.VerifyThreshold, a.IdentifyThreshold = n.VerifyThreshold, n.IdentifyThreshold
	a.LockoutFailures, a.LockoutWindow = n.LockoutFailures, n.LockoutWindow
	a.AuthFailures, a.AuthWindow, a.MaxAuthLockout = n.AuthFailures, n.AuthWindow, n.MaxAuthLockout
	return cur
}

// startReload reloads on every SIGHUP until the returned function is
// called, when Options.LoadConfig is set.
func (a *Agent) startReload(ctx context.Context) (stop func()) {
	if a.opts.LoadConfig == nil {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cur := a.cfg
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			cur = a.reload(cur)
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

// reload loads the configuration, applies what it can and returns the
// configuration now in force. It tells systemd it is reloading
// (sd_notify(3): RELOADING=1, then READY=1 when done).
func (a *Agent) reload(cur config.Config) config.Config {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	a.opts.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/int64(time.Microsecond), 10) +
		"\nSTATUS=reloading the configuration")
	status := "serving on " + a.baseURL
	next, applied, restart, err := a.applyConfig(cur, a.opts.LoadConfig)
	switch {
	case err != nil:
		a.log.Error("configuration reload refused; the running configuration stays", "err", err)
		status += "; last reload refused: " + err.Error()
	case len(restart) > 0:
		a.log.Warn("configuration reloaded; some changes need a restart", "applied", applied, "restart", restart)
		status += "; changes need a restart: " + strings.Join(restart, ", ")
	default:
		a.log.Info("configuration reloaded", "applied", applied)
	}
	a.opts.Notify("READY=1\nSTATUS=" + status)
	if err != nil {
		return cur
	}
	return next
}

// applyConfig loads the configuration and applies its reloadable options
// over cur. It returns the configuration in force afterwards and the keys
// applied and those left for a restart.
func (a *Agent) applyConfig(cur config.Config, load func() (config.Config, error)) (_ config.Config, applied, restart []string, _ error) {
	next, err := load()
	if err != nil {
		return cur, nil, nil, err
	}
	if err := next.Validate(); err != nil {
		return cur, nil, nil, fmt.Errorf("config: %w", err)
	}
	if next, err = next.Resolve(nil); err != nil {
		return cur, nil, nil, fmt.Errorf("config: %w", err)
	}
	merged := withReloadable(cur, next, a.opts.Logs != nil)
	applied, restart = changedKeys(cur, merged), changedKeys(merged, next)
	if err := a.api.Reconfigure(APIConfig(merged, a.baseURL, a.opts.Version)); err != nil {
		return cur, nil, nil, err
	}
	if a.opts.Logs != nil {
		if err := a.opts.Logs.Set(merged.LogLevel, merged.LogFormat); err != nil {
			return cur, nil, nil, err
		}
	}
	return merged, applied, restart, nil
}

// changedKeys lists the configuration keys (yaml paths) whose values
// differ between a and b; an empty list equals a missing one.
func changedKeys(a, b config.Config) []string {
	var keys []string
	var walk func(prefix string, x, y reflect.Value)
	walk = func(prefix string, x, y reflect.Value) {
		t := x.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" || key == "-" {
				continue
			}
			key = prefix + key
			fx, fy := x.Field(i), y.Field(i)
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(key+".", fx, fy)
			case f.Type.Kind() == reflect.Slice && fx.Len() == 0 && fy.Len() == 0:
			case !reflect.DeepEqual(fx.Interface(), fy.Interface()):
				keys = append(keys, key)
			}
		}
	}
	walk("", reflect.ValueOf(a), reflect.ValueOf(b))
	return keys
}
