// Package sdnotify tells systemd how the agent is doing (sd_notify(3)):
// READY=1 once the models and store are open and the listeners bound,
// STATUS= with a one-line state, STOPPING=1 on shutdown, and WATCHDOG=1 at
// half of WATCHDOG_USEC — but only while a health check passes, so a
// stalled capture loop or a wedged HTTP server makes systemd restart the
// service (WatchdogSec= with Restart=on-failure) instead of being kept
// alive by a ticker that knows nothing.
//
// Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op.
package sdnotify

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Messages sent to the notify socket (sd_notify(3)).
const (
	msgReady    = "READY=1"
	msgStopping = "STOPPING=1"
	msgWatchdog = "WATCHDOG=1"
)

// Ticker is the part of *time.Ticker the watchdog loop uses; tests drive it
// by hand instead of waiting for real time.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type realTicker struct{ *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.Ticker.C }

// Options configure a Notifier. The zero value talks to systemd through
// $NOTIFY_SOCKET and $WATCHDOG_USEC.
type Options struct {
	// Send delivers one notify message. It reports false when there is no
	// socket (not under systemd). Nil: go-systemd's daemon.SdNotify.
	Send func(state string) (bool, error)
	// WatchdogInterval is how often WATCHDOG=1 is sent while healthy; 0
	// derives it from $WATCHDOG_USEC (half of it, as sd_watchdog_enabled(3)
	// advises), and no watchdog is armed when that is unset. Negative
	// disables the watchdog.
	WatchdogInterval time.Duration
	// NewTicker makes the watchdog ticker; nil: time.NewTicker.
	NewTicker func(time.Duration) Ticker
}

// Notifier sends the agent's notifications. It is safe for concurrent use.
type Notifier struct {
	send      func(string) (bool, error)
	interval  time.Duration
	newTicker func(time.Duration) Ticker

	mu     sync.Mutex
	status string // last STATUS set by the agent, restored after recovery
}

// New returns a Notifier. It fails only when $WATCHDOG_USEC is malformed,
// which means the unit's WatchdogSec= is broken.
func New(opts Options) (*Notifier, error) {
	n := &Notifier{send: opts.Send, interval: opts.WatchdogInterval, newTicker: opts.NewTicker}
	if n.send == nil {
		n.send = func(state string) (bool, error) { return daemon.SdNotify(false, state) }
	}
	if n.newTicker == nil {
		n.newTicker = func(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }
	}
	switch {
	case n.interval < 0:
		n.interval = 0
	case n.interval == 0:
		// Returns 0 when unset or meant for another process (WATCHDOG_PID).
		usec, err := daemon.SdWatchdogEnabled(false)
		if err != nil {
			return nil, fmt.Errorf("sdnotify: %w", err)
		}
		n.interval = usec / 2
	}
	return n, nil
}

// WatchdogInterval is the ping period; 0 when systemd armed no watchdog.
func (n *Notifier) WatchdogInterval() time.Duration { return n.interval }

// Ready tells systemd the agent serves: call it after the models and the
// store are open and every listener is bound, so that units ordered After=
// bwsagent.service find it answering.
func (n *Notifier) Ready(status string) error {
	return n.notify(msgReady, n.setStatus(status))
}

// Status sets the one-line state `systemctl status` shows.
func (n *Notifier) Status(status string) error {
	return n.notify(n.setStatus(status))
}

// Stopping tells systemd the agent is shutting down (graceful shutdown has
// begun), so that it does not treat the time spent as a hang.
func (n *Notifier) Stopping(status string) error {
	return n.notify(msgStopping, n.setStatus(status))
}

// Notify sends a raw sd_notify state ("READY=1\nSTATUS=…"), for callers
// that compose their own messages. A STATUS= in it is remembered like
// Status, so the watchdog restores it after a recovery.
func (n *Notifier) Notify(state string) error {
	lines := strings.Split(state, "\n")
	for i, l := range lines {
		if st, ok := strings.CutPrefix(l, "STATUS="); ok {
			lines[i] = n.setStatus(st)
		}
	}
	return n.notify(lines...)
}

// Watchdog sends WATCHDOG=1 every interval while health returns nil, until
// ctx is done. While health fails no ping is sent — systemd then kills and
// restarts the agent after WatchdogSec= — and STATUS says why. It returns
// at once when no watchdog is armed. Run it in a goroutine owned by the
// agent, started after Ready.
//
// A failed send does not end the loop: it is retried on the next tick
// (the socket's queue may be full for a moment, or the process out of
// file descriptors), and if sends keep failing systemd's watchdog fires,
// which is the right outcome. The last send error, if the last send
// failed, is returned when ctx ends.
func (n *Notifier) Watchdog(ctx context.Context, health func() error) error {
	if n.interval <= 0 {
		return nil
	}
	t := n.newTicker(n.interval)
	defer t.Stop()
	healthy := true // as systemd last heard
	var sendErr error
	for {
		if err := health(); err != nil {
			if healthy {
				// Once per transition: the journal gets one line, not one per tick.
				if sendErr = n.notify(statusLine("unhealthy, watchdog pings withheld: " + err.Error())); sendErr == nil {
					healthy = false
				}
			}
		} else {
			msgs := []string{msgWatchdog}
			if !healthy {
				n.mu.Lock()
				msgs = append(msgs, statusLine(n.status))
				n.mu.Unlock()
			}
			if sendErr = n.notify(msgs...); sendErr == nil {
				healthy = true
			}
		}
		select {
		case <-ctx.Done():
			return sendErr
		case <-t.C():
		}
	}
}

// setStatus records status and returns its STATUS= line.
func (n *Notifier) setStatus(status string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status = status
	return statusLine(status)
}

// statusLine makes STATUS= one line: a newline would end the assignment
// and start a new one.
func statusLine(s string) string {
	return "STATUS=" + strings.Join(strings.Fields(s), " ")
}

// notify sends the messages as one datagram (newline-separated
// assignments, as sd_notify(3) specifies).
func (n *Notifier) notify(msgs ...string) error {
	if _, err := n.send(strings.Join(msgs, "\n")); err != nil {
		return fmt.Errorf("sdnotify %s: %w", strings.SplitN(msgs[0], "=", 2)[0], err)
	}
	return nil
}
