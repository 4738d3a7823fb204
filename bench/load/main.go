// Command load is the soak harness: it starts a bwsagent on a temporary
// data directory and a loopback port (or attaches to a running one with
// -data-dir), drives full BWS flows against it with bench/flows in its own
// process — by default alternating enroll flows (token + 4 uploads +
// enroll) and verify flows (token + upload + verify) — at a fixed rate,
// samples the agent's RSS and open file descriptors over time, and
// reports throughput, latency percentiles, errors and memory growth.
// It fails (exit 1) when errors exceed -max-errors or RSS grows more than
// -max-rss-growth from the end of the warm-up to the end of the run.
//
//	go run ./bench/load -rate 8 -duration 30m    # make soak
//	go run ./bench/load -rate 2 -duration 1m     # the CI pass
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/internal/testenv"
	"github.com/bwsagent/bwsagent/tests/agentproc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, os.Args[1:], os.Stdout)
	if err == nil {
		err = res.verdict()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, flowsBin string
	dataDir       string
	modelsDir     string
	workers       int
	rate          float64
	duration      time.Duration
	concurrency   int
	mix           string
	classes       int
	sample        time.Duration
	warmup        time.Duration
	maxGrowth     float64
	maxErrors     int
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "", "bwsagent binary (default: built from this module)")
	fs.StringVar(&o.flowsBin, "flows-bin", "", "bench/flows binary (default: built from this module)")
	fs.StringVar(&o.dataDir, "data-dir", "", "attach to the agent running on this data directory instead of starting one")
	fs.StringVar(&o.modelsDir, "models-dir", testenv.ModelsDir(), "model cache of the started agent")
	fs.IntVar(&o.workers, "workers", 2, "face workers of the started agent")
	fs.Float64Var(&o.rate, "rate", 8, "flows started per second")
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "how long flows start (at most 1h)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "flows in flight at most")
	fs.IntVar(&o.classes, "classes", 256, "bench/flows' -classes: enroll flows re-enroll this many classes in turn, so that the store reaches its size (each class at its template cap) during the warm-up and RSS growth afterwards is the agent's own; 0: a new class per flow, and the store's pages count in RSS as it grows")
	fs.StringVar(&o.mix, "mix", "alternate", "bench/flows' -mix: alternate (even flows enroll, odd flows verify), enroll+verify or enroll")
	fs.DurationVar(&o.sample, "sample", 10*time.Second, "RSS/FD sampling interval")
	fs.DurationVar(&o.warmup, "warmup", 0, "RSS baseline taken after this long (default: a tenth of -duration, at least 10s)")
	fs.Float64Var(&o.maxGrowth, "max-rss-growth", 0.10, "fail when RSS grows more than this fraction after the warm-up")
	fs.IntVar(&o.maxErrors, "max-errors", 0, "fail when more flows than this fail")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.rate <= 0 || o.rate > 100:
		return o, errors.New("-rate must be in (0, 100]: a fixed rate")
	case o.duration <= 0 || o.duration > time.Hour:
		return o, errors.New("-duration must be in (0, 1h]")
	case o.sample < 100*time.Millisecond:
		return o, errors.New("-sample must be at least 100ms")
	}
	if o.warmup == 0 {
		o.warmup = max(o.duration/10, 10*time.Second)
	}
	return o, nil
}

// sample is one reading of the agent's /proc.
type sample struct {
	At float64 `json:"t_s"`
	agentproc.ProcStats
}

// flowsReport is the part of bench/flows' JSON report used here.
type flowsReport struct {
	Mix        string         `json:"mix"`
	Flows      int            `json:"flows"`
	OK         int            `json:"ok"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds"`
	Seconds    float64        `json:"seconds"`
	Throughput float64        `json:"flows_per_second"`
	Flow       latency        `json:"flow"`
	VerifyFlow *latency       `json:"verify_flow"`
}

type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// result is the run's outcome.
type result struct {
	o         options
	Flows     flowsReport `json:"flows"`
	Samples   []sample    `json:"samples"`
	BaseRSS   float64     `json:"baseline_rss_mib"`
	EndRSS    float64     `json:"end_rss_mib"`
	BaseAnon  float64     `json:"baseline_anon_mib"`
	EndAnon   float64     `json:"end_anon_mib"`
	Growth    float64     `json:"rss_growth"`
	PeakFDs   int         `json:"peak_fds"`
	StartFDs  int         `json:"start_fds"`
	EndFDs    int         `json:"end_fds"`
	AgentLogs string      `json:"-"`
}

// verdict applies the soak's bounds.
func (r result) verdict() error {
	var errs []error
	if r.Flows.Errors > r.o.maxErrors {
		errs = append(errs, fmt.Errorf("%d flows failed (at most %d allowed): %v", r.Flows.Errors, r.o.maxErrors, r.Flows.ErrorKinds))
	}
	if r.Growth > r.o.maxGrowth {
		errs = append(errs, fmt.Errorf("RSS grew %.1f %% after the warm-up (%.0f → %.0f MiB), bound %.0f %%",
			100*r.Growth, r.BaseRSS, r.EndRSS, 100*r.o.maxGrowth))
	}
	if r.Flows.OK == 0 {
		errs = append(errs, errors.New("no flow completed"))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, args []string, out io.Writer) (result, error) {
	o, err := parseFlags(args)
	res := result{o: o}
	if err != nil {
		return res, err
	}
	root := testenv.ModuleRoot()
	tmp, err := os.MkdirTemp("", "bwsagent-load-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	if o.flowsBin == "" {
		o.flowsBin = filepath.Join(tmp, "flows")
		if b, err := goBuild(ctx, root, o.flowsBin, "./bench/flows"); err != nil {
			return res, fmt.Errorf("build bench/flows: %w\n%s", err, b)
		}
	}
	dataDir, pid := o.dataDir, 0
	var logs agentproc.Buffer // written by the agent's output copier while we run
	if dataDir == "" {
		if o.bin == "" {
			if o.bin, err = agentproc.Build(ctx, root, tmp); err != nil {
				return res, err
			}
		}
		dataDir = filepath.Join(tmp, "data")
		p, err := agentproc.Start(ctx, agentproc.Config{Bin: o.bin, DataDir: dataDir, ModelsDir: o.modelsDir,
			Workers: o.workers, Log: &logs})
		if err != nil {
			return res, fmt.Errorf("start agent: %w\n%s", err, logs.String())
		}
		defer func() {
			if err := p.Stop(); err != nil {
				fmt.Fprintf(out, "agent exit: %v\n", err)
			}
		}()
		pid = p.PID
	}

	flows := int(o.rate*o.duration.Seconds()) + 1
	fargs := []string{"-data-dir", dataDir, "-rate", strconv.FormatFloat(o.rate, 'f', -1, 64),
		"-duration", o.duration.String(), "-flows", strconv.Itoa(min(flows, 100_000)),
		"-concurrency", strconv.Itoa(o.concurrency), "-mix", o.mix, "-classes", strconv.Itoa(o.classes), "-json"}
	if pid != 0 {
		fargs = append(fargs, "-pid", strconv.Itoa(pid))
	}
	cmd := exec.CommandContext(ctx, o.flowsBin, fargs...)
	cmd.Dir = root // bench/flows finds its default photos from there
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	fmt.Fprintf(out, "load: %.1f flows/s for %v (mix %s, %d classes), agent data dir %s\n", o.rate, o.duration, o.mix, o.classes, dataDir)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	if pid == 0 {
		pid = agentPID(ctx, dataDir)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
	take := func() {
		s := sample{ProcStats: agentproc.ReadProcStats(pid)}
		s.At = time.Since(start).Seconds()
		res.Samples = append(res.Samples, s)
		fmt.Fprintf(out, "  t=%6.0fs  RSS %7.1f MiB (anon %6.1f, file %6.1f)  FDs %4d\n", s.At, s.RSSMiB, s.AnonMiB, s.FileMiB, s.FDs)
	}
	take()
	var runErr error
loop:
	for {
		select {
		case runErr = <-done:
			break loop
		case <-tick.C:
			take()
		}
	}
	take()
	res.AgentLogs = logs.String()
	if runErr != nil {
		return res, fmt.Errorf("bench/flows: %w\n%s", runErr, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), &res.Flows); err != nil {
		return res, fmt.Errorf("bench/flows report: %w\n%s", err, stdout.String())
	}
	res.summarize()
	res.print(out)
	return res, nil
}

func goBuild(ctx context.Context, root, out, pkg string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	return cmd.CombinedOutput()
}

// agentPID asks the attached agent's admin socket for its PID.
func agentPID(ctx context.Context, dataDir string) int {
	c, err := admin.Dial(ctx, agentproc.SocketPath(dataDir))
	if err != nil {
		return 0
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return 0
	}
	return st.PID
}

// summarize computes the RSS growth: the mean of the samples of the last
// minute of the load over those of the first minute after the warm-up (at
// least three each), so one GC cycle does not decide the verdict.
func (r *result) summarize() {
	// The window ends with the load: afterwards bench/flows deletes the
	// classes it enrolled, which touches the store's pages but is no part
	// of the steady state.
	var after []sample
	for _, s := range r.Samples {
		if s.At >= r.o.warmup.Seconds() && s.At <= r.o.duration.Seconds() {
			after = append(after, s)
		}
		r.PeakFDs = max(r.PeakFDs, s.FDs)
	}
	if len(r.Samples) > 0 {
		r.StartFDs, r.EndFDs = r.Samples[0].FDs, r.Samples[len(r.Samples)-1].FDs
	}
	if len(after) < 2 {
		after = r.Samples
	}
	mean := func(ss []sample, v func(sample) float64) float64 {
		if len(ss) == 0 {
			return 0
		}
		var t float64
		for _, s := range ss {
			t += v(s)
		}
		return t / float64(len(ss))
	}
	rss := func(s sample) float64 { return s.RSSMiB }
	anon := func(s sample) float64 { return s.AnonMiB }
	// A minute of samples on each side: one GC cycle or a burst of flows
	// in flight moves RSS by ±2 % between two 10-second samples.
	k := 3
	if r.o.sample > 0 {
		k = max(int(time.Minute/r.o.sample), k)
	}
	k = min(k, len(after)/2)
	r.BaseRSS, r.EndRSS = mean(after[:k], rss), mean(after[len(after)-k:], rss)
	r.BaseAnon, r.EndAnon = mean(after[:k], anon), mean(after[len(after)-k:], anon)
	if r.BaseRSS > 0 {
		r.Growth = (r.EndRSS - r.BaseRSS) / r.BaseRSS
	}
}

func (r result) print(w io.Writer) {
	f := r.Flows
	fmt.Fprintf(w, "flows (%s): %d (%d ok, %d errors) in %.0f s, %.2f flows/s completed (%.1f offered)\n",
		f.Mix, f.Flows, f.OK, f.Errors, f.Seconds, f.Throughput, r.o.rate)
	fmt.Fprintf(w, "  enroll flow  p50 %6.0f ms  p95 %6.0f ms  p99 %6.0f ms  max %6.0f ms\n", f.Flow.P50, f.Flow.P95, f.Flow.P99, f.Flow.Max)
	if f.VerifyFlow != nil {
		v := f.VerifyFlow
		fmt.Fprintf(w, "  verify flow  p50 %6.0f ms  p95 %6.0f ms  p99 %6.0f ms  max %6.0f ms\n", v.P50, v.P95, v.P99, v.Max)
	}
	kinds := make([]string, 0, len(f.ErrorKinds))
	for k := range f.ErrorKinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  error ×%d: %s\n", f.ErrorKinds[k], k)
	}
	fmt.Fprintf(w, "agent RSS: %.0f MiB after the warm-up → %.0f MiB at the end (%+.1f %%; heap part %.0f → %.0f MiB); FDs %d → %d (peak %d)\n",
		r.BaseRSS, r.EndRSS, 100*r.Growth, r.BaseAnon, r.EndAnon, r.StartFDs, r.EndFDs, r.PeakFDs)
}
