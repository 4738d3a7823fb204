package kiosk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLang(t *testing.T) {
	for _, tc := range []struct{ query, accept, want string }{
		{"", "", "en"},
		{"", "de-DE,de;q=0.9,en;q=0.8", "de"},
		{"", "fr-FR,fr;q=0.9,de;q=0.5,en;q=0.4", "de"},
		{"", "en-US,en;q=0.9,de;q=0.8", "en"},
		{"", "fr", "en"},
		{"de", "en", "de"},
		{"xx", "de", "de"},
		{"", strings.Repeat("x;q=0.1,", 10000), "en"},
	} {
		r := httptest.NewRequest("GET", "/?lang="+tc.query, nil)
		r.Header.Set("Accept-Language", tc.accept)
		if got := Lang(r); got != tc.want {
			t.Errorf("Lang(lang=%q, %q) = %q, want %q", tc.query, tc.accept, got, tc.want)
		}
	}
}

func TestPage(t *testing.T) {
	h, err := New(Config{MirrorPreview: true, DemoToken: func(_ context.Context, task string) (string, error) {
		if task == "verify" {
			return "", errors.New("no demo app")
		}
		return "a.b.c", nil
	}, AllowRequest: func(r *http.Request) bool { return r.Header.Get("Origin") == "" }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, origin string
		status       int
		contains     string
	}{
		{"/?lang=de", "", 200, `lang="de"`},
		{"/?mode=browser", "", 200, `"mode":"browser"`},
		{"/?mode=<script>", "", 200, `"mode":"agent"`},
		{"/kiosk/static/app.js", "", 200, "getUserMedia"},
		{"/kiosk/static/motion.js", "", 200, "KioskMotion"},
		{"/?lang=en", "", 200, `<link rel="icon" href="/kiosk/static/icon.svg"`},
		{"/kiosk/static/icon.svg", "", 200, "<svg"},
		{"/kiosk/static/../kiosk.go", "", 404, ""},
		{"/kiosk/token?task=enroll", "", 200, "a.b.c"},
		{"/kiosk/token?task=verify", "", 502, ""},
		{"/kiosk/token", "https://evil.example", 403, ""},
		{"/nope", "", 404, ""},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Body)
		if w.Code != tc.status || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %d %.200q, want %d containing %q", tc.path, w.Code, body, tc.status, tc.contains)
		}
		if tc.path == "/?lang=de" && !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("no CSP")
		}
	}
}
