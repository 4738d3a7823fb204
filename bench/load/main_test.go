package main

import (
	"os"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/internal/testenv"
	"github.com/bwsagent/bwsagent/tests/agentproc"
)

// TestShortSoak is the CI pass of 'make soak': one minute of enroll and
// verify flows at a low rate against a real agent; no flow may fail and
// RSS may not grow by more than a fifth after the warm-up (the long soak's
// bound is a tenth; a minute is noisier).
func TestShortSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("one-minute soak skipped with -short")
	}
	testenv.RequireModels(t)
	res, err := run(t.Context(), []string{"-rate", "2", "-duration", "1m", "-sample", "5s", "-warmup", "20s",
		"-max-rss-growth", "0.2", "-bin", os.Getenv("BWSAGENT_BIN")}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.verdict(); err != nil {
		t.Fatalf("%v\nagent log:\n%s", err, res.AgentLogs)
	}
	if res.Flows.OK < 60 {
		t.Errorf("only %d flows completed in a minute at 2/s", res.Flows.OK)
	}
}

func TestFlagBounds(t *testing.T) {
	for _, args := range [][]string{{"-rate", "0"}, {"-rate", "1000"}, {"-duration", "2h"}, {"-sample", "1ms"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	o, err := parseFlags([]string{"-duration", "30m"})
	if err != nil || o.warmup != 3*time.Minute {
		t.Errorf("warm-up %v, %v", o.warmup, err)
	}
}

func TestGrowth(t *testing.T) {
	// Samples every 5 s: the windows are a minute, capped at half the
	// 8 samples after the warm-up.
	r := result{o: options{warmup: 10 * time.Second, duration: 45 * time.Second, sample: 5 * time.Second, maxGrowth: 0.1}}
	// The last sample (t=50s) is the clean-up after the load: not counted.
	for i, rss := range []float64{50, 100, 100, 100, 104, 106, 108, 110, 110, 110, 300} {
		r.Samples = append(r.Samples, sample{At: float64(5 * i), ProcStats: agentproc.ProcStats{RSSMiB: rss, FDs: 10 + i}})
	}
	r.summarize()
	if r.BaseRSS != (100+100+104+106)/4.0 || r.EndRSS != (108+110+110+110)/4.0 || r.PeakFDs != 20 {
		t.Errorf("%+v", r)
	}
	r.Flows.OK = 1
	if err := r.verdict(); err != nil {
		t.Errorf("growth %.3f should pass: %v", r.Growth, err)
	}
	r.Flows.Errors = 1
	if r.verdict() == nil {
		t.Error("an error should fail the soak")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}
