package preview

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Registerer is where the hub registers its series (a
// prometheus.Registerer); nil registers nothing.
type Registerer = prometheus.Registerer

type metrics struct {
	clients       prometheus.Gauge
	framesSent    prometheus.Counter
	framesDropped prometheus.Counter
	eventsDropped prometheus.Counter
	rejects       *prometheus.CounterVec
	latency       prometheus.Histogram
}

func newMetrics(reg Registerer, _ *Hub) (*metrics, error) {
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bwsagent_preview_clients", Help: "Open preview websockets.",
		}),
		framesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bwsagent_preview_frames_sent_total", Help: "JPEG frames written to preview sockets, summed over clients.",
		}),
		framesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bwsagent_preview_frames_dropped_total", Help: "Frames dropped from a slow client's queue.",
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bwsagent_preview_events_dropped_total", Help: "Events dropped from a slow client's queue.",
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bwsagent_preview_rejected_total", Help: "Preview sockets refused, by reason (origin, max_clients).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bwsagent_preview_latency_seconds",
			Help:    "Capture to websocket write completed, per frame and client.",
			Buckets: []float64{.005, .01, .02, .03, .05, .075, .1, .2, .5, 1},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.clients, m.framesSent, m.framesDropped, m.eventsDropped, m.rejects, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) rejected(reason string) { m.rejects.WithLabelValues(reason).Inc() }
