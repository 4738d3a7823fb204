package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestReconfigure: hosts, origins, thresholds and lockout bounds change
// in place; the other options keep their running values.
func TestReconfigure(t *testing.T) {
	cfg := testConfig()
	s := &Server{log: testLogger(t), cfg: cfg,
		verifyLock: newLimiter(cfg.LockoutFailures, cfg.LockoutWindow, false, cfg.LockoutWindow),
		auth:       &authenticator{lock: newLimiter(cfg.AuthFailures, cfg.AuthWindow, true, cfg.MaxAuthLockout)}}
	s.ownOrigin, _ = originOf(cfg.PublicURL)
	s.tuned.Store(s.newTunables(cfg))
	h := s.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	status := func(host, origin string) int {
		r := httptest.NewRequest(http.MethodGet, "/extension/status", nil)
		r.Host = host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	tests := []struct {
		name, host, origin string
		before, after      int
	}{
		{"configured host", "127.0.0.1:1", "", 204, 403},
		{"added host", "kiosk.lan:8480", "", 403, 204},
		{"configured origin", "kiosk.lan", "https://ui.bioid.example", 403, 403}, // host refused first
		{"added origin", "kiosk.lan", "https://new.example", 403, 204},
		{"removed origin", "kiosk.lan", "https://ui.bioid.example", 403, 403},
	}
	for _, tt := range tests {
		if got := status(tt.host, tt.origin); got != tt.before {
			t.Errorf("%s before: %d, want %d", tt.name, got, tt.before)
		}
	}

	next := cfg
	next.AllowedHosts = []string{"kiosk.lan"}
	next.CORSOrigins = []string{"https://new.example"}
	next.VerifyThreshold, next.IdentifyThreshold = 0.5, 0.6
	next.LockoutFailures, next.LockoutWindow = 2, time.Minute
	next.AuthFailures, next.AuthWindow, next.MaxAuthLockout = 9, 2*time.Minute, 3*time.Hour
	next.BasePath, next.MaxUploadBytes = "/other/", 1 // not reloadable: ignored
	if err := s.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := status(tt.host, tt.origin); got != tt.after {
			t.Errorf("%s after: %d, want %d", tt.name, got, tt.after)
		}
	}
	if tn := s.tunables(); tn.verifyThreshold != 0.5 || tn.identifyThreshold != 0.6 {
		t.Errorf("thresholds %v %v", tn.verifyThreshold, tn.identifyThreshold)
	}
	if l := s.verifyLock; l.max != 2 || l.window != time.Minute {
		t.Errorf("verify lockout %d %v", l.max, l.window)
	}
	if l := s.auth.lock; l.max != 9 || l.window != 2*time.Minute || l.maxLock != 3*time.Hour {
		t.Errorf("auth lockout %d %v %v", l.max, l.window, l.maxLock)
	}
	if s.cfg.BasePath != "/extension/" || s.cfg.MaxUploadBytes != cfg.MaxUploadBytes {
		t.Errorf("non-reloadable options changed: %+v", s.cfg)
	}

	bad := next
	bad.VerifyThreshold = 2
	if err := s.Reconfigure(bad); err == nil {
		t.Error("invalid threshold accepted")
	}
	if s.tunables().verifyThreshold != 0.5 {
		t.Error("a refused configuration was partly applied")
	}
}
