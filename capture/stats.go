package capture

import (
	"slices"
	"strings"
	"time"
)

// Stats is a snapshot of a Loop's counters.
type Stats struct {
	Source     string
	State      State
	Reconnects uint64
	// FramesCaptured counts frames read from the source since Start.
	FramesCaptured uint64
	// FPS is the capture rate over the Loop's FPSWindow (0 when stalled).
	FPS float64
	// ReadLatency is how long Source.Read took per frame (for live sources
	// that includes waiting for the device's next frame).
	ReadLatency LatencyStats
	LastFrame   time.Time
	Subscribers []SubscriberStats
}

// LatencyStats summarises read durations.
type LatencyStats struct {
	Last, Mean, Max time.Duration // Mean is exponentially weighted (α=0.1)
}

// SubscriberStats are one subscription's counters.
type SubscriberStats struct {
	Name      string
	Delivered uint64
	Dropped   uint64
	Queued    int
}

// latencyBuckets are the upper bounds (seconds) of the read histogram
// exported to Prometheus: 1 ms to 2.5 s.
func latencyBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32, .64, 1.28, 2.56}
}

// fpsSamples bounds the frame-time ring. FPS is computed from the span of
// the samples inside the window, so it stays right above 512/window fps.
const fpsSamples = 512

// loopStats is guarded by Loop.mu.
type loopStats struct {
	frames   uint64
	lat      LatencyStats
	hist     []uint64 // per latencyBuckets, non-cumulative; last is +Inf
	histSum  float64
	times    [fpsSamples]int64 // unix nanos, circular
	timesPos int
	timesN   int
}

// record books one frame read at now that took lat.
func (l *Loop) record(now time.Time, lat time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.st
	s.frames++
	l.status.LastFrame = now
	s.lat.Last = lat
	if s.frames == 1 {
		s.lat.Mean = lat
	} else {
		s.lat.Mean += (lat - s.lat.Mean) / 10
	}
	s.lat.Max = max(s.lat.Max, lat)
	if s.hist == nil {
		s.hist = make([]uint64, len(latencyBuckets())+1)
	}
	sec := lat.Seconds()
	i := 0
	for _, b := range latencyBuckets() {
		if sec <= b {
			break
		}
		i++
	}
	s.hist[i]++
	s.histSum += sec
	s.times[s.timesPos] = now.UnixNano()
	s.timesPos = (s.timesPos + 1) % fpsSamples
	s.timesN = min(s.timesN+1, fpsSamples)
}

// fpsLocked is frames per second over the window ending now.
func (l *Loop) fpsLocked(now time.Time) float64 {
	s := &l.st
	from := now.Add(-l.FPSWindow).UnixNano()
	n, oldest := 0, int64(0)
	for i := 1; i <= s.timesN; i++ {
		t := s.times[(s.timesPos-i+fpsSamples)%fpsSamples]
		if t < from {
			break
		}
		n, oldest = n+1, t
	}
	if n < 2 {
		return 0
	}
	span := now.UnixNano() - oldest
	if span <= 0 {
		return 0
	}
	return float64(n-1) / (float64(span) / 1e9)
}

// Stats returns a snapshot of the counters.
func (l *Loop) Stats() Stats {
	l.mu.Lock()
	l.lazyInit()
	st := Stats{
		State:          l.status.State,
		Reconnects:     l.status.Reconnects,
		FramesCaptured: l.st.frames,
		FPS:            l.fpsLocked(l.Clock.Now()),
		ReadLatency:    l.st.lat,
		LastFrame:      l.status.LastFrame,
	}
	subs := l.subs
	l.mu.Unlock()
	if l.Source != nil {
		st.Source = l.Source.String()
	}
	for _, s := range subs {
		st.Subscribers = append(st.Subscribers, SubscriberStats{
			Name: s.name, Delivered: s.Delivered(), Dropped: s.Dropped(), Queued: s.Queued(),
		})
	}
	return st
}

// subscriberTotals sums counters per subscriber name over live and closed
// subscriptions, so that they only ever grow.
func (l *Loop) subscriberTotals() []SubscriberStats {
	l.mu.Lock()
	subs := l.subs
	totals := make(map[string]SubscriberStats, len(l.retired)+len(subs))
	for k, v := range l.retired {
		totals[k] = v
	}
	l.mu.Unlock()
	for _, s := range subs {
		t := totals[s.name]
		t.Name = s.name
		t.Delivered += s.Delivered()
		t.Dropped += s.Dropped()
		t.Queued += s.Queued()
		totals[s.name] = t
	}
	out := make([]SubscriberStats, 0, len(totals))
	for _, v := range totals {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b SubscriberStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// readHistogram returns cumulative bucket counts keyed by upper bound, the
// total count and the sum in seconds, for the Prometheus collector.
func (l *Loop) readHistogram() (buckets map[float64]uint64, count uint64, sum float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buckets = make(map[float64]uint64, len(latencyBuckets()))
	var cum uint64
	for i, b := range latencyBuckets() {
		if l.st.hist != nil {
			cum += l.st.hist[i]
		}
		buckets[b] = cum
	}
	return buckets, l.st.frames, l.st.histSum
}
