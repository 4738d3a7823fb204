package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bwsagent/bwsagent/face"
)

// /metrics (the agent's own registry, never the global one) holds:
//   - process, Go runtime, build info, readiness (registerMetrics, http.go)
//   - bwsagent_model_inference_seconds{model}: each face-model inference
//     on a worker, without the wait for one (below)
//   - bwsagent_api_*: requests by route and code, request durations,
//     uploads by outcome, decisions by action (task) and outcome, sample
//     analysis time including the wait for a worker, samples held
//   - bwsagent_capture_*: frames, fps, drops per consumer, reconnects,
//     up (when a source is configured)
//   - bwsagent_preview_*, bwsagent_session_*: preview sockets, sessions
//   - bwsagent_sync_*: outbox depth, age, dead letters, deliveries (when
//     sync is configured)
//
// /healthz answers 200 while the process serves HTTP (the watchdog's own
// probe uses it, so it checks nothing else); /readyz answers 200 from the
// end of start-up to the start of shutdown, 503 otherwise — what a load
// balancer or a dependent unit should poll.

// newModelMetrics returns the histogram of face-model inference times and
// the engine observer that fills it.
func newModelMetrics() (*prometheus.HistogramVec, face.Observer) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "bwsagent", Name: "model_inference_seconds",
		Help: "Duration of one face-model inference on a worker (pre- and post-processing included, the wait for a worker not), by model.",
		// 1 ms (BlazeFace on a PC) to 2.5 s (templates on a Raspberry Pi).
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"model"})
	// Every model is exported from the start, so dashboards show zeros
	// rather than gaps.
	for _, m := range []string{face.ModelDetect, face.ModelTrack, face.ModelLandmarks, face.ModelEmbed, face.ModelPAD} {
		h.WithLabelValues(m)
	}
	return h, func(model string, d time.Duration) { h.WithLabelValues(model).Observe(d.Seconds()) }
}
