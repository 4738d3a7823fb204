package capture

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestPrometheusMetrics(t *testing.T) {
	gate := make(chan func() Frame)
	l := &Loop{Source: gatedSource(gate)}
	live := l.Subscribe("preview", 1)
	frozen := l.Subscribe("session", 1)
	defer frozen.Close()
	reg := prometheus.NewRegistry()
	if err := RegisterMetrics(reg, l, prometheus.Labels{"camera": "front"}); err != nil {
		t.Fatal(err)
	}
	startLoop(t, l)
	for i := 1; i <= 5; i++ {
		gate <- func() Frame { return tinyFrame(i) }
		f := nextWithin(t, live, 3*time.Second)
		_ = f.Close()
	}
	// A second "preview" client that leaves: its counts must stay.
	other := l.Subscribe("preview", 1)
	gate <- func() Frame { return tinyFrame(6) }
	f := nextWithin(t, other, 3*time.Second)
	_ = f.Close()
	_ = other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if f, err := live.Next(ctx); err == nil {
		_ = f.Close()
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	value := func(name, sub string) float64 {
		t.Helper()
		mf := got[name]
		if mf == nil {
			t.Fatalf("metric %s missing; have %v", name, keys(got))
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["camera"] != "front" {
				t.Errorf("%s lacks the const label: %v", name, labels)
			}
			if sub != "" && labels["subscriber"] != sub {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("metric %s{subscriber=%q} missing", name, sub)
		return 0
	}
	if v := value("bwsagent_capture_frames_total", ""); v != 6 {
		t.Errorf("frames_total %v, want 6", v)
	}
	if v := value("bwsagent_capture_read_duration_seconds", ""); v != 6 {
		t.Errorf("read histogram count %v, want 6", v)
	}
	if v := value("bwsagent_capture_dropped_frames_total", "session"); v != 5 {
		t.Errorf("session dropped %v, want 5", v)
	}
	if v := value("bwsagent_capture_delivered_frames_total", "preview"); v != 7 {
		t.Errorf("preview delivered %v, want 7 (6 live + 1 from the client that left)", v)
	}
	if v := value("bwsagent_capture_up", ""); v != 1 {
		t.Errorf("up %v, want 1", v)
	}
	for _, name := range []string{"bwsagent_capture_fps", "bwsagent_capture_reconnects_total",
		"bwsagent_capture_last_frame_timestamp_seconds", "bwsagent_capture_queued_frames"} {
		if got[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
}

func keys(m map[string]*dto.MetricFamily) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
