package agent

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

// TestMetricsAfterEnroll scrapes /metrics after one enroll flow and checks
// that every family operators need is there and moved: model latencies,
// decisions by task and outcome, requests by route and code, capture
// frames and drops, outbox depth.
func TestMetricsAfterEnroll(t *testing.T) {
	// The centre is away: the enrollment stays in the outbox.
	centre := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer centre.Close()
	cfg := testConfig(t)
	cfg.Source = "demo"
	cfg.Capture.FPS = 5
	cfg.Sync.Enabled = true
	cfg.Sync.URL = centre.URL + "/extension/"
	cfg.Sync.AppID, cfg.Sync.AppSecret = "edge", "secret"
	a := start(t, cfg)

	tok := enrollToken(t, a)
	img, err := os.ReadFile(testenv.GocvImage(t, "face.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	body := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(img)
	call := func(method, path, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, a.APIURL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b)
	}
	call(http.MethodPost, "upload?tag=any&index=0", body)
	if got := call(http.MethodGet, "enroll", ""); !strings.Contains(got, `"Success":true`) {
		t.Fatalf("enroll: %s", got)
	}

	resp, err := http.Get(a.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// value finds the sample of family with all labels given (name=value)
	// and returns its counter, gauge or histogram count.
	value := func(family string, labels ...string) (float64, bool) {
		f := families[family]
		if f == nil {
			return 0, false
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
		return 0, true
	}
	tests := []struct {
		family string
		labels []string
		min    float64 // the value must be at least this
	}{
		{"bwsagent_model_inference_seconds", []string{"model=detect"}, 1},
		{"bwsagent_model_inference_seconds", []string{"model=landmarks"}, 1},
		{"bwsagent_model_inference_seconds", []string{"model=embed"}, 1},
		{"bwsagent_model_inference_seconds", []string{"model=pad"}, 1},
		{"bwsagent_model_inference_seconds", []string{"model=track"}, 0},
		{"bwsagent_api_sample_analysis_seconds", nil, 1},
		{"bwsagent_api_decisions_total", []string{"action=enrollment", "outcome=success"}, 1},
		{"bwsagent_api_decision_seconds", []string{"action=enrollment"}, 1},
		{"bwsagent_api_requests_total", []string{"route=upload", "code=200"}, 1},
		{"bwsagent_api_requests_total", []string{"route=enroll", "code=200"}, 1},
		{"bwsagent_api_request_duration_seconds", []string{"route=upload"}, 1},
		{"bwsagent_capture_frames_total", nil, 0},
		{"bwsagent_capture_fps", nil, 0},
		{"bwsagent_capture_up", nil, 0},
		{"bwsagent_sync_outbox_jobs", nil, 0}, // refreshed by the sender, not at once
		{"bwsagent_sync_dead_letters", nil, 0},
		{"bwsagent_ready", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
	}
	for _, tt := range tests {
		v, ok := value(tt.family, tt.labels...)
		if !ok {
			t.Errorf("/metrics lacks %s", tt.family)
			continue
		}
		if v < tt.min {
			t.Errorf("%s%v = %v, want at least %v", tt.family, tt.labels, v, tt.min)
		}
	}
}
