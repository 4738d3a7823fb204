// Package kiosk serves the kiosk page from embedded files (no CDN): the
// live preview from /ws/preview with a face overlay, arrow prompts in the
// person's language, progress and result with an ARIA live region; and a
// browser-camera mode (/?mode=browser) in which the page uses
// getUserMedia, BWS UI's motion trigger and the BWS contract itself.
package kiosk

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Languages the page is translated into; the first is the fallback.
var Languages = []string{"en", "de"}

// TokenFunc issues a BWS token for the demo app (task: enroll, verify,
// identify, livenessdetection). The page calls it through GET
// {Base}kiosk/token?task=…; see Config.DemoToken.
type TokenFunc func(ctx context.Context, task string) (string, error)

// Config configures the page.
type Config struct {
	// PreviewURL is the websocket path (default "/ws/preview").
	PreviewURL string
	// SessionsURL is the session API (default "/sessions").
	SessionsURL string
	// BWSBase is the BWS extension base the browser mode talks to
	// (default "/extension/").
	BWSBase string
	// MirrorPreview flips the preview for a selfie view; set it when the
	// capture loop does not mirror (the session mirrors its samples
	// itself, so what the person sees and the tags agree either way).
	MirrorPreview bool
	// DemoToken, if set, serves /kiosk/token: a token for the configured
	// demo app and DemoBCID, so the page (start button, browser mode)
	// needs no app secret. (ours) The page never holds an app secret: a
	// real kiosk app fetches tokens on its own backend and starts
	// sessions with them; this route exists for demos and tests and is
	// off unless configured. Requests must pass AllowRequest.
	DemoToken TokenFunc
	// DemoBCID is shown on the page and used by DemoToken's caller.
	DemoBCID string
	// AllowRequest guards /kiosk/token against cross-site use (e.g.
	// preview.OriginPolicy.Allow); nil allows all.
	AllowRequest func(*http.Request) bool
	Logger       *slog.Logger
}

// Handler serves "/" (the page) and "/kiosk/…" (assets, demo token).
type Handler struct {
	cfg    Config
	page   *template.Template
	assets http.Handler
	log    *slog.Logger
}

// New parses the embedded page.
func New(cfg Config) (*Handler, error) {
	if cfg.PreviewURL == "" {
		cfg.PreviewURL = "/ws/preview"
	}
	if cfg.SessionsURL == "" {
		cfg.SessionsURL = "/sessions"
	}
	if cfg.BWSBase == "" {
		cfg.BWSBase = "/extension/"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	page, err := template.ParseFS(static, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("kiosk: %w", err)
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("kiosk: %w", err)
	}
	return &Handler{
		cfg: cfg, page: page, log: cfg.Logger.With(slog.String("component", "kiosk")),
		assets: http.StripPrefix("/kiosk/static/", http.FileServerFS(sub)),
	}, nil
}

// Lang picks the page language: ?lang= if supported, else the supported
// language with the highest q in Accept-Language (a region such as de-AT
// counts as its language), else English.
func Lang(r *http.Request) string {
	if l := strings.ToLower(r.URL.Query().Get("lang")); supported(l) {
		return l
	}
	best, bestQ := Languages[0], 0.0
	for i, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		if i >= 32 {
			break // bound the work on a hostile header
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if supported(base) && q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}

func supported(l string) bool {
	for _, s := range Languages {
		if l == s {
			return true
		}
	}
	return false
}

type pageConfig struct {
	Lang          string `json:"lang"`
	Mode          string `json:"mode"`
	Preview       string `json:"preview"`
	Sessions      string `json:"sessions"`
	BWS           string `json:"bws"`
	TokenURL      string `json:"tokenUrl,omitempty"`
	BCID          string `json:"bcid,omitempty"`
	MirrorPreview bool   `json:"mirrorPreview"`
	Task          string `json:"task"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/kiosk/static/"):
		w.Header().Set("Cache-Control", "no-cache")
		h.assets.ServeHTTP(w, r)
	case r.URL.Path == "/kiosk/token":
		h.serveToken(w, r)
	case r.URL.Path == "/" || r.URL.Path == "/kiosk" || r.URL.Path == "/kiosk/":
		h.servePage(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	pc := pageConfig{
		Lang: Lang(r), Mode: "agent", Preview: h.cfg.PreviewURL, Sessions: h.cfg.SessionsURL, BWS: h.cfg.BWSBase,
		BCID: h.cfg.DemoBCID, MirrorPreview: h.cfg.MirrorPreview, Task: "enroll",
	}
	if q.Get("mode") == "browser" {
		pc.Mode = "browser"
	}
	switch t := q.Get("task"); t {
	case "enroll", "verify", "identify", "livenessdetection":
		pc.Task = t
	}
	if h.cfg.DemoToken != nil {
		pc.TokenURL = "/kiosk/token"
	}
	var buf bytes.Buffer
	// html/template marshals pc as JSON, escaped for the <script> element.
	if err := h.page.Execute(&buf, map[string]any{"Lang": pc.Lang, "Config": pc}); err != nil {
		h.log.Error("render kiosk page", "err", err)
		http.Error(w, "page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", pc.Lang)
	w.Header().Set("Vary", "Accept-Language")
	// Everything is same-origin: no CDN, no inline script except the
	// JSON config (not executed).
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	if h.cfg.DemoToken == nil {
		http.NotFound(w, r)
		return
	}
	if h.cfg.AllowRequest != nil && !h.cfg.AllowRequest(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	task := r.URL.Query().Get("task")
	if task == "" {
		task = "enroll"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tok, err := h.cfg.DemoToken(ctx, task)
	if err != nil {
		h.log.Warn("demo token", "err", err)
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, "token unavailable", status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(tok))
}
