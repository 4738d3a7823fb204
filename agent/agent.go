// Package agent is the bwsagent daemon: it opens the store, the face engine
// and the liveness checker, serves the BWS API, /openapi.json, /metrics,
// /healthz and /readyz on one HTTP listener, and the admin socket in its
// data directory, until its context ends; then it shuts down gracefully.
//
// The Agent owns every component it opens. New opens and binds everything
// (so that start-up errors surface before the service reports ready); Run
// serves and, when its context ends, stops accepting, lets requests in
// flight finish within the shutdown timeout, and closes the API server, the
// admin socket, the engine and the store, in that order.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/api"
	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/agent/outbox"
	"github.com/bwsagent/bwsagent/agent/token"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/liveness"
	"github.com/bwsagent/bwsagent/store"
)

// Options are what New needs besides the configuration.
type Options struct {
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// Version is reported by /status, the admin socket and metrics.
	Version string
	// Now is the clock of the token manager and the API; nil: time.Now.
	Now func() time.Time
	// Notify sends sd_notify messages; nil: systemd's NOTIFY_SOCKET (a
	// no-op outside systemd).
	Notify func(state string)
	// Listener, when set, is served instead of binding cfg.Listen: a
	// socket systemd passed (socket activation). The Agent closes it.
	Listener net.Listener
	// Watchdog, when set, runs while the agent serves and pings systemd
	// while health returns nil (sdnotify.Notifier.Watchdog); nil: none.
	Watchdog func(ctx context.Context, health func() error) error
	// LoadConfig, when set, builds the configuration again (file,
	// environment, flags) on SIGHUP for Reload; nil: SIGHUP is not handled.
	LoadConfig func() (config.Config, error)
	// Logs, when set, is the logging Reload reconfigures (logLevel,
	// logFormat); nil: those keys need a restart.
	Logs *Logs
	// ModelPreflight is the argv prefix of a child process that loads one
	// model file (argv + [file]) and exits 0 only if it loaded, e.g.
	// bwsagent models verify-load; nil: no preflight.
	ModelPreflight []string
}

// housekeepingInterval is how often expired token state and held samples
// are swept.
const housekeepingInterval = time.Minute

// Agent is the running daemon.
type Agent struct {
	cfg     config.Config
	opts    Options
	log     *slog.Logger
	started time.Time

	db      *store.DB
	engine  *face.Engine
	live    *liveness.Checker
	tokens  *token.Manager
	api     *api.Server
	sync    *outbox.Sender
	cam     *camera // capture, preview, sessions, kiosk page (capture.go)
	reg     *prometheus.Registry
	ln      net.Listener
	srv     *http.Server
	local   *admin.Local
	adm     *admin.Server
	baseURL string

	ready     atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New opens the store (failing at once if another process holds it), the
// face engine and the liveness checker, loads the token-signing keys, binds
// the HTTP listener and the admin socket, and builds the API server. cfg is
// validated and resolved here. On error everything opened is closed again.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg, err = cfg.Resolve(nil); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Notify == nil {
		opts.Notify = func(state string) { _, _ = daemon.SdNotify(false, state) }
	}
	a := &Agent{cfg: cfg, opts: opts, log: opts.Logger.With("component", "agent"), started: opts.Now()}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()

	opts.Notify("STATUS=opening the store")
	var keys config.Keys
	var kf config.KeyFile
	if a.db, kf, keys, err = admin.OpenStore(ctx, cfg, admin.StoreOptions{Create: true}); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	a.log.Info("store open", "path", a.db.Path(), "templateKey", kf.Path)

	opts.Notify("STATUS=loading the face models")
	if err := a.preflightModels(ctx); err != nil {
		return nil, err
	}
	// One OpenCV thread per worker: parallelism comes from the workers,
	// and nested thread pools on a small device only add contention.
	face.SetThreads(1)
	modelSeconds, observeModel := newModelMetrics()
	if a.engine, err = face.New(face.Config{ModelsDir: cfg.ModelsDir, Workers: cfg.Workers, Observe: observeModel}); err != nil {
		return nil, fmt.Errorf("face engine: %w (fetch the models with 'bwsagent models fetch --models-dir %s')", err, cfg.ModelsDir)
	}
	if a.live, err = liveness.New(a.engine, cfg.Liveness); err != nil {
		return nil, fmt.Errorf("liveness: %w", err)
	}

	// Bind before building the token manager: the tokens' audience is the
	// listener's URL, whose port is only known now when listen asks for 0.
	if a.ln = opts.Listener; a.ln == nil {
		var lc net.ListenConfig
		if a.ln, err = lc.Listen(ctx, "tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen: %w (is another program using %s? set 'listen' or --listen)", err, cfg.Listen)
		}
	}
	a.baseURL = cfg.BaseURL(a.ln.Addr().String())

	if a.tokens, err = a.newTokenManager(ctx); err != nil {
		return nil, err
	}

	a.reg = prometheus.NewRegistry()
	if err := registerMetrics(a.reg, opts.Version, &a.ready, modelSeconds); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := a.startSync(ctx); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	apiCfg := APIConfig(cfg, a.baseURL, opts.Version)
	if a.api, err = api.New(apiCfg, api.Deps{
		Store: a.db, Engine: a.engine, Liveness: a.live, Tokens: a.tokens,
		Logger: opts.Logger, Now: opts.Now, Metrics: a.reg, Sync: a.apiSync(),
	}); err != nil {
		return nil, err
	}
	if a.cam, err = a.newCamera(ctx); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	a.srv = a.newHTTPServer()

	a.local = admin.NewLocal(a.db, kf, keys, cfg.DataDir, admin.Hooks{
		Status:        a.fillStatus,
		DeleteClass:   a.api.DeleteClass,
		SigningKeys:   a.setSigningKeys,
		OutboxChanged: a.notifySync,
	})
	if a.adm, err = admin.Listen(cfg.AdminSocket(), a.local, opts.Logger.With("component", "admin")); err != nil {
		return nil, err
	}
	return a, nil
}

// newTokenManager loads the signing keys from the store (the first start
// generates one) and drops keys retired longer than a token lives.
func (a *Agent) newTokenManager(ctx context.Context) (*token.Manager, error) {
	cutoff := a.opts.Now().Add(-token.DefaultLifetime - 2*token.DefaultLeeway)
	ks, err := a.db.SigningKeys(ctx, admin.SigningKeyName)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	if len(ks.Previous) > 0 {
		if _, err := a.db.PruneKeys(ctx, admin.SigningKeyName, cutoff); err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		if ks, err = a.db.SigningKeys(ctx, admin.SigningKeyName); err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
	}
	cur, prev := tokenKeys(ks)
	m, err := token.New(token.Config{Audience: a.baseURL, Now: a.opts.Now}, cur, prev...)
	if err != nil {
		return nil, fmt.Errorf("token manager: %w", err)
	}
	return m, nil
}

func tokenKeys(ks store.KeySet) (token.Key, []token.Key) {
	prev := make([]token.Key, 0, len(ks.Previous))
	for _, k := range ks.Previous {
		prev = append(prev, token.Key{ID: k.ID, Secret: k.Secret})
	}
	return token.Key{ID: ks.Current.ID, Secret: ks.Current.Secret}, prev
}

// setSigningKeys is the admin hook after a signing key rotation.
func (a *Agent) setSigningKeys(ks store.KeySet) error {
	cur, prev := tokenKeys(ks)
	if err := a.tokens.SetKeys(cur, prev...); err != nil {
		return err
	}
	a.log.Info("token-signing key rotated", "kid", cur.ID, "previous", len(prev))
	return nil
}

// fillStatus is the admin hook for Status.
func (a *Agent) fillStatus(st *admin.Status) {
	st.Running = true
	st.Ready = a.ready.Load()
	st.Version = a.opts.Version
	st.PID = os.Getpid()
	st.Started = a.started
	st.URL = a.baseURL
	st.APIURL = a.baseURL + a.cfg.API.BasePath
}

// URL is the base URL of the HTTP listener (no trailing slash).
func (a *Agent) URL() string { return a.baseURL }

// APIURL is the base URL of the BWS routes (with the base path).
func (a *Agent) APIURL() string { return a.baseURL + a.cfg.API.BasePath }

// Config is the agent's resolved configuration.
func (a *Agent) Config() config.Config { return a.cfg }

// Run serves until ctx ends, then shuts down gracefully and closes
// everything. It returns nil after a clean shutdown. Call it once.
func (a *Agent) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	// Ready before serving: a connection that waited in the listener's
	// backlog during start-up (socket activation) is answered by Serve at
	// once and must not be told 503.
	a.ready.Store(true)
	go func() {
		err := a.srv.Serve(a.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else if err != nil {
			err = fmt.Errorf("http: %w", err)
		}
		errc <- err
	}()
	admCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	admDone := make(chan error, 1)
	go func() { admDone <- a.adm.Serve(admCtx) }()
	hkDone := make(chan struct{})
	go func() {
		defer close(hkDone)
		a.housekeeping(runCtx)
	}()

	a.log.Info("serving", "url", a.baseURL, "api", a.APIURL(), "admin", a.adm.Path(),
		"workers", a.cfg.Workers, "version", a.opts.Version)
	a.opts.Notify("READY=1\nSTATUS=serving on " + a.baseURL)
	stopWatchdog := a.startWatchdog(runCtx)
	// Until Run returns: a SIGHUP during shutdown must not kill the
	// process (its default action).
	defer a.startReload(context.WithoutCancel(ctx))()

	var runErr error
	served := false
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		// The listener failed: shut down as well, reporting why.
		served = true
	}
	stopWatchdog()
	a.ready.Store(false)
	a.opts.Notify("STOPPING=1\nSTATUS=shutting down")
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	cancel()
	<-hkDone
	a.cam.stop() // sessions and preview sockets end before the listener drains

	shutCtx, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancelShut()
	if err := a.srv.Shutdown(shutCtx); err != nil {
		// Requests still running past the deadline lose their connection
		// (and so their context).
		a.log.Warn("requests still running at the shutdown deadline; closing their connections", "err", err)
		a.srv.Close()
	}
	if !served {
		runErr = <-errc
	}
	// Admin calls in flight (a backup) finish within the admin server's own
	// bound before the store closes under them.
	stopAdmin()
	if err := <-admDone; err != nil && runErr == nil {
		runErr = err
	}
	if err := a.Close(); err != nil && runErr == nil {
		runErr = err
	}
	a.log.Info("stopped")
	return runErr
}

// housekeeping runs sweep every housekeepingInterval.
func (a *Agent) housekeeping(ctx context.Context) {
	t := time.NewTicker(housekeepingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.sweep(ctx, now)
		}
	}
}

// sweep deletes what has expired: samples in memory, token state and
// audit entries older than the retention in the store; and returns the
// C heap's free pages to the system.
func (a *Agent) sweep(ctx context.Context, now time.Time) {
	a.api.Sweep()
	face.ReleaseMemory()
	n, err := a.db.SweepTokens(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Warn("sweep expired tokens", "err", err)
	case n > 0:
		a.log.Debug("expired tokens swept", "tokens", n)
	}
	if a.cfg.AuditRetention <= 0 {
		return
	}
	n, err = a.db.TrimAudit(ctx, now.Add(-a.cfg.AuditRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Warn("trim the audit log", "err", err)
	case n > 0:
		a.log.Info("audit entries past their retention deleted", "entries", n, "retention", a.cfg.AuditRetention)
	}
}

// Close releases everything New opened: the API server, the admin socket,
// the listener, the engine and the store. Run calls it; call it yourself
// only when Run is not called.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.closeAll() })
	return a.closeErr
}

func (a *Agent) closeAll() error {
	var errs []error
	errs = append(errs, a.cam.close()) // before the API its sessions call and the engine
	if a.api != nil {
		errs = append(errs, a.api.Close())
	}
	if a.adm != nil {
		a.adm.Close()
	}
	if a.srv != nil {
		a.srv.Close()
	}
	if a.ln != nil {
		a.ln.Close()
	}
	errs = append(errs, a.stopSync()) // after the HTTP server, before the store
	if a.engine != nil {
		errs = append(errs, a.engine.Close())
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	return errors.Join(errs...)
}

// APIConfig converts the configuration's api section to the API server's
// Config, with the resolved public URL and the program's version.
func APIConfig(cfg config.Config, publicURL, version string) api.Config {
	c := cfg.API
	nilIfEmpty := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	return api.Config{
		BasePath:             c.BasePath,
		PublicURL:            publicURL,
		AllowedHosts:         nilIfEmpty(c.AllowedHosts),
		CORSOrigins:          nilIfEmpty(c.CORSOrigins),
		MaxUploadBytes:       c.MaxUploadBytes,
		MaxPixels:            c.MaxPixels,
		MaxSamplesPerToken:   c.MaxSamplesPerToken,
		MaxHeldSamples:       c.MaxHeldSamples,
		JobTimeout:           c.JobTimeout,
		VerifyThreshold:      c.VerifyThreshold,
		IdentifyThreshold:    c.IdentifyThreshold,
		MaxTemplatesPerClass: c.MaxTemplatesPerClass,
		LockoutFailures:      c.LockoutFailures,
		LockoutWindow:        c.LockoutWindow,
		AuthFailures:         c.AuthFailures,
		AuthWindow:           c.AuthWindow,
		MaxAuthLockout:       c.MaxAuthLockout,
		Version:              version,
		Label:                c.Label,
	}
}

// IssueToken issues a BWS token as /token would, for in-process clients
// (capture sessions) and tests.
func (a *Agent) IssueToken(ctx context.Context, app string, bcid bws.BCID, op bws.Operation, opts api.TokenOptions) (string, error) {
	return a.api.IssueToken(ctx, app, bcid, op, opts)
}
