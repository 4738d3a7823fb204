package outbox

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the sender. Gauges read the status snapshot, which the loop
// refreshes after every pass, so a scrape never touches the store.
type metrics struct {
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
	expired   prometheus.Counter
	latency   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, status func() Status) (*metrics, error) {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bwsagent_sync_delivered_total", Help: "Outbox jobs the centre accepted, by kind.",
		}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bwsagent_sync_failures_total", Help: "Failed deliveries, by class (transient: retried; permanent: dead letter).",
		}, []string{"class"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bwsagent_sync_expired_total", Help: "Enroll jobs whose samples were erased after the retention period.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bwsagent_sync_delivery_seconds", Help: "Time to deliver one job.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
	}
	if reg == nil {
		return m, nil
	}
	gauge := func(name, help string, f func(Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(status()) })
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	cs := []prometheus.Collector{
		m.delivered, m.failures, m.expired, m.latency,
		gauge("bwsagent_sync_outbox_jobs", "Jobs waiting for delivery.", func(s Status) float64 { return float64(s.Pending) }),
		gauge("bwsagent_sync_dead_letters", "Jobs that failed permanently, kept for an operator.", func(s Status) float64 { return float64(s.DeadLetters) }),
		gauge("bwsagent_sync_outbox_sample_bytes", "Sample bytes held for delivery (outbox and dead letters).", func(s Status) float64 { return float64(s.SampleBytes) }),
		gauge("bwsagent_sync_outbox_oldest_age_seconds", "Age of the oldest job waiting for delivery.", func(s Status) float64 { return s.OldestAgeSeconds }),
		gauge("bwsagent_sync_outbox_full", "1 while the outbox is at its bound and new enrollments are refused.", func(s Status) float64 { return b2f(s.Full) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Both failure classes are exported from the start, so a rate() works
	// before the first failure.
	m.failures.WithLabelValues("transient")
	m.failures.WithLabelValues("permanent")
	return m, nil
}
