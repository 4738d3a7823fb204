package api

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus series. A nil *metrics (no registerer
// given) records nothing.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	uploads   *prometheus.CounterVec
	analysisS prometheus.Histogram
	decisions *prometheus.CounterVec
	decisionS *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, held func() float64) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bwsagent", Subsystem: "api", Name: "requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "bwsagent", Subsystem: "api", Name: "request_duration_seconds",
			Help:    "HTTP request duration by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bwsagent", Subsystem: "api", Name: "uploads_total",
			Help: "Analysed uploads by outcome (accepted or the upload error code).",
		}, []string{"outcome"}),
		analysisS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bwsagent", Subsystem: "api", Name: "sample_analysis_seconds",
			Help:    "Time to analyse one uploaded sample (detection, landmarks, template, PAD), including the wait for a worker.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bwsagent", Subsystem: "api", Name: "decisions_total",
			Help: "Biometric calls by action and outcome (success, failure or the error code).",
		}, []string{"action", "outcome"}),
		decisionS: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "bwsagent", Subsystem: "api", Name: "decision_seconds",
			Help:    "Time from the samples being taken to the decision, by action.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"action"}),
	}
	heldG := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "bwsagent", Subsystem: "api", Name: "samples_held",
		Help: "Analysed samples held in memory for tokens.",
	}, held)
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.uploads, m.analysisS, m.decisions, m.decisionS, heldG} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register metrics: %w (one Server per registry)", err)
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) request(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) upload(res UploadResult) {
	if m == nil {
		return
	}
	o := "accepted"
	if !res.Accepted {
		o = res.Error
	}
	m.uploads.WithLabelValues(o).Inc()
}

func (m *metrics) analysis(d time.Duration) {
	if m == nil {
		return
	}
	m.analysisS.Observe(d.Seconds())
}

func (m *metrics) decision(op bws.Operation, res Result, d time.Duration) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(op.Action(), outcome(res.Success, res.Error)).Inc()
	m.decisionS.WithLabelValues(op.Action()).Observe(d.Seconds())
}
