package capture

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers collectors for l's counters on reg (never the
// global registry). constLabels tell several loops apart, e.g.
// {"camera": "front"}. Values are read from the Loop at scrape time, so
// capture pays nothing per frame for metrics.
func RegisterMetrics(reg prometheus.Registerer, l *Loop, constLabels prometheus.Labels) error {
	return reg.Register(newCollector(l, constLabels))
}

type collector struct {
	loop                                  *Loop
	frames, reconnects, fps, up, lastTime *prometheus.Desc
	readSeconds, dropped, delivered       *prometheus.Desc
	queued                                *prometheus.Desc
}

func newCollector(l *Loop, cl prometheus.Labels) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("bwsagent_capture_"+name, help, labels, cl)
	}
	return &collector{
		loop:        l,
		frames:      d("frames_total", "Frames read from the capture source."),
		reconnects:  d("reconnects_total", "Times the capture source was reopened after an error."),
		fps:         d("fps", "Capture frame rate over the loop's FPS window."),
		up:          d("up", "1 if the capture loop is running and its last frame is fresh."),
		lastTime:    d("last_frame_timestamp_seconds", "Unix time of the newest captured frame."),
		readSeconds: d("read_duration_seconds", "Time spent in one source read, including waiting for the device."),
		dropped:     d("dropped_frames_total", "Frames a subscriber lost because its ring was full.", "subscriber"),
		delivered:   d("delivered_frames_total", "Frames handed to a subscriber.", "subscriber"),
		queued:      d("queued_frames", "Frames waiting in a subscriber's ring.", "subscriber"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.reconnects, c.fps, c.up, c.lastTime,
		c.readSeconds, c.dropped, c.delivered, c.queued} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.loop.Stats()
	ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(st.FramesCaptured))
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects))
	ch <- prometheus.MustNewConstMetric(c.fps, prometheus.GaugeValue, st.FPS)
	up := 0.0
	if c.loop.Healthy() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if !st.LastFrame.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastTime, prometheus.GaugeValue,
			float64(st.LastFrame.UnixNano())/1e9)
	}
	buckets, count, sum := c.loop.readHistogram()
	ch <- prometheus.MustNewConstHistogram(c.readSeconds, count, sum, buckets)

	// Per name, over live and closed subscriptions, so counters never
	// go backwards when a preview client disconnects.
	for _, t := range c.loop.subscriberTotals() {
		name := t.Name
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(t.Dropped), name)
		ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(t.Delivered), name)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(t.Queued), name)
	}
}
