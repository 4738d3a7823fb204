package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bwsagent/bwsagent/agent/token"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/liveness"
	"github.com/bwsagent/bwsagent/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the Server's collaborators; all but Logger, Now and Metrics are
// required.
type Deps struct {
	Store    *store.DB
	Engine   *face.Engine
	Liveness *liveness.Checker
	Tokens   *token.Manager
	Logger   *slog.Logger
	// Now is the clock of lockouts and sample expiry; nil means time.Now.
	// Give the token manager and the store the same clock.
	Now func() time.Time
	// Metrics registers the API's series; nil records none.
	Metrics prometheus.Registerer
	// Sync is the sync sender (sync.go); nil when sync mode is off.
	Sync Syncer
}

// Server is the BWS API and its biometric service. It is safe for
// concurrent use.
type Server struct {
	cfg     Config
	db      *store.DB
	engine  *face.Engine
	live    *liveness.Checker
	tokens  *token.Manager
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	sync    Syncer // nil: sync mode off

	tuned      atomic.Pointer[tunables] // the options Reconfigure changes
	ownOrigin  string
	auth       *authenticator
	held       *holder
	verifyLock *limiter
	galleries  *galleries
	routes     map[string]*route
	bodySlots  chan struct{} // sample bodies being read and decoded
	openapi    []byte
	handler    http.Handler
	closed     atomic.Bool
}

// New validates cfg, marks templates of another model stale and loads the
// 1:N galleries from the store.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	switch {
	case deps.Store == nil:
		return nil, errors.New("api: 'Store' must be set")
	case deps.Engine == nil:
		return nil, errors.New("api: 'Engine' must be set")
	case deps.Liveness == nil:
		return nil, errors.New("api: 'Liveness' must be set")
	case deps.Tokens == nil:
		return nil, errors.New("api: 'Tokens' must be set")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{
		cfg:        cfg,
		db:         deps.Store,
		engine:     deps.Engine,
		live:       deps.Liveness,
		tokens:     deps.Tokens,
		log:        deps.Logger.With(slog.String("component", "api")),
		now:        deps.Now,
		sync:       deps.Sync,
		held:       newHolder(deps.Now, cfg.MaxSamplesPerToken, cfg.MaxHeldSamples),
		verifyLock: newLimiter(cfg.LockoutFailures, cfg.LockoutWindow, false, cfg.LockoutWindow),
	}
	s.ownOrigin, _ = originOf(cfg.PublicURL)
	s.tuned.Store(s.newTunables(cfg))
	var err error
	if s.auth, err = newAuthenticator(deps.Store, deps.Now, cfg, runtime.GOMAXPROCS(0)); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	ctx := context.Background()
	n, err := deps.Store.MarkStale(ctx, face.EmbeddingModel, TemplateVersion)
	if err != nil {
		return nil, fmt.Errorf("api: mark stale templates: %w", err)
	}
	if n > 0 {
		s.log.LogAttrs(ctx, slog.LevelWarn, "templates of another model marked stale; their classes need re-enrolling",
			slog.Int("templates", n), slog.String("model", face.EmbeddingModel))
	}
	var loaded int
	if s.galleries, loaded, err = loadGalleries(ctx, deps.Store); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "galleries loaded", slog.Int("templates", loaded))
	if s.openapi, err = openAPIDocument(cfg.BasePath); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if s.metrics, err = newMetrics(deps.Metrics, func() float64 { return float64(s.held.count()) }); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.bodySlots = make(chan struct{}, 2*runtime.GOMAXPROCS(0)+2)
	s.routes = s.routeTable()
	s.handler = s.Middleware(http.HandlerFunc(s.serveRoute))
	return s, nil
}

// Close drops every held sample; later calls fail with ErrClosed (503).
// The store, engine and token manager belong to the caller.
func (s *Server) Close() error {
	s.closed.Store(true)
	s.held.close()
	return nil
}

// Sweep drops the samples of expired tokens now (they are also dropped
// lazily on every upload and call).
func (s *Server) Sweep() { s.held.sweep() }

// HeldSamples returns how many analysed samples are held in memory.
func (s *Server) HeldSamples() int { return s.held.count() }

func (s *Server) open() error {
	if s.closed.Load() {
		return newError(ErrClosed, msgClosed, nil)
	}
	return nil
}

// Handler serves the BWS routes under BasePath and GET /openapi.json, with
// the Middleware around them.
func (s *Server) Handler() http.Handler { return s.handler }

// Middleware wraps h with the API's protections, for the daemon's other
// routes on the same listener: recover (500 {"Message":…}), the Host
// allow-list (403), CORS for allowed origins and refusal of other browser
// origins (403), and no-store caching.
//
// Wrapping twice is harmless: an inner Middleware sees that the outer one
// ran and passes the request through.
func (s *Server) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(checkedKey{}) == s {
			h.ServeHTTP(w, r)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), checkedKey{}, s))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				buf := make([]byte, 4096)
				buf = buf[:runtime.Stack(buf, false)]
				s.log.LogAttrs(r.Context(), slog.LevelError, "handler panic",
					slog.String("path", r.URL.Path), slog.Any("panic", v), slog.String("stack", string(buf)))
				writeMessage(w, http.StatusInternalServerError, msgInternal)
			}
		}()
		hdr := w.Header()
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Content-Type-Options", "nosniff")
		if !s.tunables().hosts.allows(r.Host) {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "request for a foreign host refused",
				slog.String("host", shorten(r.Host, 100)), slog.String("remote", r.RemoteAddr))
			writeMessage(w, http.StatusForbidden, msgHost)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			if !s.originAllowed(r, origin) {
				// No CORS headers: the browser keeps the answer from the
				// page, and the request itself is refused, because a
				// cross-site page could otherwise send simple requests
				// with credentials the browser remembers.
				s.log.LogAttrs(r.Context(), slog.LevelWarn, "request from a foreign origin refused",
					slog.String("origin", shorten(origin, 100)), slog.String("path", r.URL.Path))
				writeMessage(w, http.StatusForbidden, msgOrigin)
				return
			}
			hdr.Set("Access-Control-Allow-Origin", origin)
			hdr.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				hdr.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				hdr.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			hdr.Set("Access-Control-Expose-Headers", "Retry-After")
		}
		h.ServeHTTP(w, r)
	})
}

// originAllowed: a configured origin, the agent's own (PublicURL), or the
// request's own scheme://Host — a page of the agent opened under another
// allowed name (localhost for 127.0.0.1). The Host passed the allow-list
// already, so a rebound foreign name never gets here.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	o := strings.ToLower(origin)
	if s.tunables().origins[o] {
		return true
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return o == scheme+strings.ToLower(r.Host)
}

// bodySlot bounds the sample bodies held at once (each up to
// MaxUploadBytes encoded, then decoded to pixels): a burst of uploads
// queues here instead of growing memory. Handlers take it after
// authentication, so anonymous clients cannot occupy it.
func (s *Server) bodySlot(ctx context.Context) (release func(), err error) {
	select {
	case s.bodySlots <- struct{}{}:
		return func() { <-s.bodySlots }, nil
	case <-ctx.Done():
		return nil, newError(ErrUnavailable, msgHeldFull, ctx.Err())
	}
}

// checkedKey marks a request the Middleware has handled.
type checkedKey struct{}

// writeJSON writes v as the whole answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Message":"`+msgInternal+`"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// message is the body of every non-200 answer.
type message struct {
	Message string `json:"Message"`
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, message{Message: msg})
}

// writeError answers err with its status and {"Message":…}; server faults
// are logged with their cause, client errors at debug level.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, route string, err error) {
	status, msg := statusOf(err)
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	if status == http.StatusUnauthorized {
		scheme := `Bearer realm="bwsagent"`
		if routeAuth(s.routes, route) == authBasic {
			scheme = `Basic realm="bwsagent", charset="UTF-8"`
		}
		w.Header().Set("WWW-Authenticate", scheme)
	}
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	} else if status == http.StatusForbidden || status == http.StatusTooManyRequests {
		level = slog.LevelInfo
	}
	s.log.LogAttrs(r.Context(), level, "request refused",
		slog.String("route", route), slog.Int("status", status), slog.String("err", err.Error()))
	writeMessage(w, status, msg)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
