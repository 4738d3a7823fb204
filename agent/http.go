package agent

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxHeaderBytes bounds request headers: a BWS token is at most 8 KiB.
const maxHeaderBytes = 32 << 10

// newHTTPServer builds the one listener's server: the BWS routes under the
// base path and /openapi.json (the API server), /metrics, /healthz and
// /readyz, all behind the API's middleware (Host allow-list, CORS, panic
// recovery). Everything else is 404; "/" is left free for the kiosk page.
func (a *Agent) newHTTPServer() *http.Server {
	mux := http.NewServeMux()
	apiH := a.api.Handler()
	mux.Handle(a.cfg.API.BasePath, apiH)
	mux.Handle("/openapi.json", apiH)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 2,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Liveness: the process answers. Readiness is /readyz.
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			writeText(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	})
	a.cam.routes(mux)
	return &http.Server{
		Handler:           a.api.Middleware(mux),
		ReadHeaderTimeout: min(a.cfg.ReadTimeout, 10*time.Second),
		ReadTimeout:       a.cfg.ReadTimeout,
		WriteTimeout:      a.cfg.WriteTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		// Requests keep their context when shutdown starts: they are to
		// finish, and Shutdown's deadline closes the stragglers.
		BaseContext: func(net.Listener) context.Context { return context.Background() },
	}
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// registerMetrics registers the process's own series on reg (never the
// global registry): Go runtime, process (RSS, FDs, CPU), build info,
// readiness and more. The API registers its request and decision series
// itself.
func registerMetrics(reg *prometheus.Registry, version string, ready *atomic.Bool, more ...prometheus.Collector) error {
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "bwsagent", Name: "build_info",
		Help:        "Always 1; the version is a label.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	readyG := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "bwsagent", Name: "ready",
		Help: "1 while the agent serves requests, 0 while starting or stopping.",
	}, func() float64 {
		if ready.Load() {
			return 1
		}
		return 0
	})
	for _, c := range append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, readyG,
	}, more...) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
