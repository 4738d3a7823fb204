package api

import (
	"fmt"
	"strings"
	"time"
)

// tunables are the options Reconfigure changes while requests run; a
// request reads one snapshot.
type tunables struct {
	hosts                              hostPolicy
	origins                            map[string]bool
	verifyThreshold, identifyThreshold float64
}

func (s *Server) newTunables(cfg Config) *tunables {
	t := &tunables{
		hosts:             newHostPolicy(cfg),
		origins:           map[string]bool{s.ownOrigin: true},
		verifyThreshold:   cfg.VerifyThreshold,
		identifyThreshold: cfg.IdentifyThreshold,
	}
	for _, o := range cfg.CORSOrigins {
		t.origins[strings.ToLower(o)] = true
	}
	return t
}

func (s *Server) tunables() *tunables { return s.tuned.Load() }

// Reconfigure applies the options that can change while the server runs
// (the daemon's SIGHUP): AllowedHosts, CORSOrigins, VerifyThreshold,
// IdentifyThreshold and the lockout settings (LockoutFailures,
// LockoutWindow, AuthFailures, AuthWindow, MaxAuthLockout; lockouts in
// force keep their end). Every other field of cfg is ignored: the base
// path, the public URL (the tokens' audience), the size bounds and the job
// timeout need a new Server. cfg must be valid as a whole.
func (s *Server) Reconfigure(cfg Config) error {
	// The ignored fields take the running values, so that validation sees
	// the combination in force.
	run := s.cfg
	run.AllowedHosts, run.CORSOrigins = cfg.AllowedHosts, cfg.CORSOrigins
	run.VerifyThreshold, run.IdentifyThreshold = cfg.VerifyThreshold, cfg.IdentifyThreshold
	run.LockoutFailures, run.LockoutWindow = cfg.LockoutFailures, cfg.LockoutWindow
	run.AuthFailures, run.AuthWindow, run.MaxAuthLockout = cfg.AuthFailures, cfg.AuthWindow, cfg.MaxAuthLockout
	if err := run.Validate(); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	s.tuned.Store(s.newTunables(run))
	s.verifyLock.setLimits(run.LockoutFailures, run.LockoutWindow, run.LockoutWindow)
	s.auth.lock.setLimits(run.AuthFailures, run.AuthWindow, run.MaxAuthLockout)
	return nil
}

// setLimits changes the limiter's bounds; recorded failures and lockouts
// stay.
func (l *limiter) setLimits(max int, window, maxLock time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.window, l.maxLock = max, window, maxLock
}
