// Command flows is a load generator for a running agent: it plays whole BWS
// client flows — an enroll flow is GET /token (Basic), 4 × POST /upload in
// parallel, GET /enroll (Bearer); a verify flow is token, 1 upload, /verify
// — mixed as -mix says, at a fixed rate or as fast as -concurrency allows,
// from its own process, and reports throughput, latency percentiles,
// errors, the /enroll latency after the last upload, and the agent's RSS
// and open file descriptors (from /proc/<pid>).
//
// It talks to loopback addresses only and is bounded in flows and time.
// With -data-dir it finds the agent through its admin socket, creates a
// temporary app for the run, and deletes that app and the classes it
// enrolled afterwards.
//
//	go run ./bench/flows -data-dir DIR [-flows 200] [-rate 10 | -rate 0 -concurrency 8] [-mix enroll|enroll+verify|alternate] [-json]
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/tests/agentproc"
)

// Bounds, so a typo cannot turn the generator into a flood.
const (
	maxFlows       = 100_000
	maxDuration    = time.Hour
	maxConcurrency = 256
	uploadsPerFlow = 4
	verifyPool     = 8 // classes enrolled before the clock starts, for -mix alternate
)

// The flow mixes.
const (
	mixEnroll       = "enroll"        // every flow enrolls a new class
	mixEnrollVerify = "enroll+verify" // every flow enrolls a new class, then verifies it
	mixAlternate    = "alternate"     // even flows enroll, odd flows verify a pool class
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "flows:", err)
		os.Exit(1)
	}
}

type options struct {
	url         string
	dataDir     string
	app, secret string
	storage     string
	partition   int
	images      []string
	flows       int
	duration    time.Duration
	rate        float64
	concurrency int
	mix         string
	classes     int
	pid         int
	asJSON      bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("flows", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "the agent's BWS base URL, loopback only (default: from the admin socket in -data-dir)")
	fs.StringVar(&o.dataDir, "data-dir", "", "the agent's data directory: finds URL and PID, creates a temporary app")
	fs.StringVar(&o.app, "app", "", "use this existing app instead of a temporary one")
	fs.StringVar(&o.secret, "secret", os.Getenv("BWSAGENT_APP_SECRET"), "the app's secret (default $BWSAGENT_APP_SECRET)")
	fs.StringVar(&o.storage, "storage", "bench", "storage of the enrolled classes")
	fs.IntVar(&o.partition, "partition", 900, "partition of the enrolled classes")
	images := fs.String("images", "", "comma-separated images uploaded in turn (default: 4 LFW photos of one person, else gocv's face.jpg and face-detect.jpg)")
	fs.IntVar(&o.flows, "flows", 200, fmt.Sprintf("enroll flows to run (at most %d)", maxFlows))
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "stop starting flows after this long (at most 1h)")
	fs.Float64Var(&o.rate, "rate", 10, "flows started per second; 0: as fast as -concurrency allows")
	fs.IntVar(&o.concurrency, "concurrency", 16, "flows in flight at most")
	fs.StringVar(&o.mix, "mix", mixEnroll, "what the flows are: "+mixEnroll+" (each enrolls a new class), "+mixEnrollVerify+
		" (each enrolls, then verifies that class), or "+mixAlternate+
		" (even flows enroll, odd flows verify one of "+strconv.Itoa(verifyPool)+" classes enrolled before the clock starts)")
	fs.IntVar(&o.classes, "classes", 0, "enroll flows cycle through this many classes, re-enrolling them (the store stops growing once each is full); 0: a new class per flow")
	fs.IntVar(&o.pid, "pid", 0, "the agent's PID for RSS and FDs (default: from the admin socket)")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *images != "" {
		o.images = strings.Split(*images, ",")
	}
	switch {
	case o.flows < 1 || o.flows > maxFlows:
		return o, fmt.Errorf("-flows must be 1..%d", maxFlows)
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-duration must be in (0, %v]", maxDuration)
	case o.rate < 0 || o.rate > 1000:
		return o, errors.New("-rate must be 0..1000")
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return o, fmt.Errorf("-concurrency must be 1..%d", maxConcurrency)
	case o.url == "" && o.dataDir == "":
		return o, errors.New("give -data-dir (or -url with -app and -secret)")
	case o.app == "" && o.dataDir == "":
		return o, errors.New("without -data-dir, give -app and -secret")
	case o.classes < 0 || o.classes > maxFlows:
		return o, fmt.Errorf("-classes must be 0..%d", maxFlows)
	case o.mix != mixEnroll && o.mix != mixEnrollVerify && o.mix != mixAlternate:
		return o, fmt.Errorf("-mix %q: want %s, %s or %s", o.mix, mixEnroll, mixEnrollVerify, mixAlternate)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	var svc admin.Service
	if o.dataDir != "" {
		cfg := config.Default()
		cfg.DataDir = o.dataDir
		if cfg, err = cfg.Resolve(nil); err != nil {
			return err
		}
		c, err := admin.Dial(ctx, cfg.AdminSocket())
		if err != nil {
			return fmt.Errorf("%w (start the agent: bwsagent serve --data-dir %s)", err, o.dataDir)
		}
		defer c.Close()
		svc = c
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if o.url == "" {
			o.url = st.APIURL
		}
		if o.pid == 0 {
			o.pid = st.PID
		}
	}
	base, err := loopbackURL(o.url)
	if err != nil {
		return err
	}
	if o.app == "" {
		o.app = fmt.Sprintf("bench-%d", os.Getpid())
		_, secret, err := svc.AddApp(ctx, admin.NewApp{ID: o.app, Name: "bench/flows", Storage: o.storage, Partitions: []int{o.partition}})
		if err != nil {
			return fmt.Errorf("temporary app: %w", err)
		}
		o.secret = secret
		defer func() {
			if err := svc.RemoveApp(context.WithoutCancel(ctx), o.app); err != nil {
				fmt.Fprintln(os.Stderr, "flows: remove temporary app:", err)
			}
		}()
	}
	if o.secret == "" {
		return errors.New("-app needs -secret")
	}
	samples, err := loadImages(o.images)
	if err != nil {
		return err
	}

	g := &generator{o: o, samples: samples, bws: &agentproc.Client{
		Base: base.String(), App: o.app, Secret: o.secret,
		HTTP: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: o.concurrency * (uploadsPerFlow + 1),
			IdleConnTimeout:     30 * time.Second,
		}, Timeout: time.Minute},
	}}
	if o.mix == mixAlternate {
		if err := g.enrollPool(ctx); err != nil {
			return err
		}
	}
	before := agentproc.ReadProcStats(o.pid)
	rep := g.run(ctx)
	rep.AgentBefore, rep.AgentAfter = before, agentproc.ReadProcStats(o.pid)
	rep.AgentPeakRSSMiB = rep.AgentAfter.PeakRSSMiB
	rep.AgentPeakFDs = g.peakFDs
	if rep.OK > 0 && rep.AgentAfter.CPUSeconds > 0 {
		rep.AgentCPUPerFlowMS = (rep.AgentAfter.CPUSeconds - before.CPUSeconds) * 1000 / float64(rep.OK)
	}

	if svc != nil {
		// Leave the store as it was: delete the classes the run enrolled.
		cctx := context.WithoutCancel(ctx)
		n := g.started
		if o.classes > 0 {
			n = min(n, o.classes)
		}
		for i := range n {
			_ = svc.DeleteClass(cctx, g.class(i))
		}
		if o.mix == mixAlternate {
			for k := range verifyPool {
				_ = svc.DeleteClass(cctx, g.poolClass(k))
			}
		}
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	return nil
}

// loopbackURL parses the base URL and refuses anything but loopback: this
// is a load generator, not a tool to point at other people's servers.
func loopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("-url %q: want http://127.0.0.1:PORT/extension/", s)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-url %q: only loopback addresses are allowed", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// loadImages returns the images as data URLs.
func loadImages(paths []string) ([]string, error) {
	if len(paths) == 0 {
		paths = defaultImages()
	}
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		mime := http.DetectContentType(b)
		if !strings.HasPrefix(mime, "image/") {
			return nil, fmt.Errorf("image %s: not an image (%s)", p, mime)
		}
		out = append(out, "data:"+mime+";base64,"+base64.StdEncoding.EncodeToString(b))
	}
	return out, nil
}

func defaultImages() []string {
	root, _ := os.Getwd()
	for d := root; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			root = d
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	lfw := filepath.Join(root, "..", "shared", "data", "identities", "lfw_deepfunneled_min10", "Colin_Powell")
	if ms, _ := filepath.Glob(filepath.Join(lfw, "*.jpg")); len(ms) >= uploadsPerFlow {
		slices.Sort(ms)
		return ms[:uploadsPerFlow]
	}
	modcache := os.Getenv("GOMODCACHE")
	if modcache == "" {
		home, _ := os.UserHomeDir()
		modcache = filepath.Join(home, "go", "pkg", "mod")
	}
	img := filepath.Join(modcache, "gocv.io", "x", "gocv@v0.31.0", "images")
	return []string{filepath.Join(img, "face.jpg"), filepath.Join(img, "face-detect.jpg")}
}

type generator struct {
	o       options
	samples []string
	bws     *agentproc.Client // the same BWS client calls the process tests use

	mu      sync.Mutex
	started int
	results []flowResult
	peakFDs int
}

type flowResult struct {
	kind                         string        // mixEnroll or "verify"
	flow, token, uploads, enroll time.Duration // enroll: after the last upload
	verifyFlow, verify           time.Duration
	err                          error
}

func (g *generator) class(i int) bws.BCID {
	if g.o.classes > 0 {
		i %= g.o.classes
	}
	return bws.BCID{Storage: g.o.storage, Partition: g.o.partition, ClassID: int64(i + 1)}
}

func (g *generator) run(ctx context.Context) report {
	// Flows stop starting after -duration; those running finish (bounded
	// by the HTTP client's timeout) so that none is counted as an error.
	startCtx, cancel := context.WithTimeout(ctx, g.o.duration)
	defer cancel()
	sem := make(chan struct{}, g.o.concurrency)
	var wg sync.WaitGroup
	stopProc := g.watchProc(ctx)
	start := time.Now()
	var interval time.Duration
	if g.o.rate > 0 {
		interval = time.Duration(float64(time.Second) / g.o.rate)
	}
loop:
	for i := 0; i < g.o.flows; i++ {
		// Latency counts from the scheduled start, so a backlog shows in
		// the percentiles instead of slowing the offered load silently.
		scheduled := time.Now()
		if interval > 0 {
			scheduled = start.Add(time.Duration(i) * interval)
			if d := time.Until(scheduled); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-startCtx.Done():
					t.Stop()
					break loop
				case <-t.C:
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-startCtx.Done():
			break loop
		}
		g.mu.Lock()
		g.started++
		g.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := g.flow(ctx, i, scheduled)
			g.mu.Lock()
			g.results = append(g.results, r)
			g.mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProc()
	return g.report(elapsed)
}

// watchProc samples the agent's FD count while the run lasts (RSS peak
// comes from VmHWM).
func (g *generator) watchProc(ctx context.Context) func() {
	if g.o.pid == 0 {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if p := agentproc.ReadProcStats(g.o.pid); p.FDs > 0 {
				g.mu.Lock()
				g.peakFDs = max(g.peakFDs, p.FDs)
				g.mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// poolClass is the k-th class that -mix alternate's verify flows verify.
func (g *generator) poolClass(k int) bws.BCID {
	return bws.BCID{Storage: g.o.storage, Partition: g.o.partition, ClassID: int64(maxFlows + 1 + k)}
}

// enrollPool enrolls the verify flows' classes before the clock starts.
func (g *generator) enrollPool(ctx context.Context) error {
	for k := range verifyPool {
		if r := g.enrollFlow(ctx, g.poolClass(k), k, time.Now()); r.err != nil {
			return fmt.Errorf("enroll verify pool: %w", r.err)
		}
	}
	return nil
}

func (g *generator) flow(ctx context.Context, i int, scheduled time.Time) flowResult {
	switch {
	case g.o.mix == mixAlternate && i%2 == 1:
		return g.verifyFlow(ctx, g.poolClass((i/2)%verifyPool), i, scheduled)
	case g.o.mix == mixEnrollVerify:
		r := g.enrollFlow(ctx, g.class(i), i, scheduled)
		if r.err != nil {
			return r
		}
		v := g.verifyFlow(ctx, g.class(i), i+uploadsPerFlow, time.Now())
		r.verifyFlow, r.verify, r.err = v.verifyFlow, v.verify, v.err
		return r
	default:
		return g.enrollFlow(ctx, g.class(i), i, scheduled)
	}
}

// enrollFlow is token, 4 uploads in parallel, /enroll; sample k of flow i
// is image (i+k) so consecutive flows differ.
func (g *generator) enrollFlow(ctx context.Context, class bws.BCID, i int, scheduled time.Time) flowResult {
	r := flowResult{kind: mixEnroll}
	t0 := time.Now()
	tok, err := g.bws.Token(ctx, "enroll", class.String())
	if err != nil {
		r.err = fmt.Errorf("token: %w", err)
		return r
	}
	r.token = time.Since(t0)
	t1 := time.Now()
	errs := make(chan error, uploadsPerFlow)
	for k := range uploadsPerFlow {
		go func() { errs <- g.bws.Upload(ctx, tok, g.samples[(i+k)%len(g.samples)], k+1) }()
	}
	for range uploadsPerFlow {
		if err := <-errs; err != nil && r.err == nil {
			r.err = fmt.Errorf("upload: %w", err)
		}
	}
	if r.err != nil {
		return r
	}
	r.uploads = time.Since(t1)
	t2 := time.Now()
	if err := g.bws.Perform(ctx, "enroll", tok); err != nil {
		r.err = fmt.Errorf("enroll: %w", err)
		return r
	}
	r.enroll = time.Since(t2)
	r.flow = time.Since(scheduled)
	return r
}

// verifyFlow is token, 1 upload (image i), /verify.
func (g *generator) verifyFlow(ctx context.Context, class bws.BCID, i int, scheduled time.Time) flowResult {
	r := flowResult{kind: "verify"}
	tok, err := g.bws.Token(ctx, "verify", class.String())
	if err == nil {
		err = g.bws.Upload(ctx, tok, g.samples[i%len(g.samples)], 1)
	}
	if err == nil {
		t := time.Now()
		err = g.bws.Perform(ctx, "verify", tok)
		r.verify = time.Since(t)
	}
	if err != nil {
		r.err = fmt.Errorf("verify flow: %w", err)
		return r
	}
	r.verifyFlow = time.Since(scheduled)
	return r
}

// latency is a distribution in milliseconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func dist(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	slices.Sort(ds)
	q := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.5) - 1
		i = min(max(i, 0), len(ds)-1)
		return float64(ds[i].Microseconds()) / 1000
	}
	return latency{N: len(ds), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: float64(ds[len(ds)-1].Microseconds()) / 1000}
}

type report struct {
	Mix             string              `json:"mix"`
	Flows           int                 `json:"flows"`
	OK              int                 `json:"ok"`
	Errors          int                 `json:"errors"`
	ErrorKinds      map[string]int      `json:"error_kinds,omitempty"`
	Seconds         float64             `json:"seconds"`
	RateOffered     float64             `json:"rate_offered"` // 0: as fast as possible
	Concurrency     int                 `json:"concurrency"`
	Throughput      float64             `json:"flows_per_second"`
	Flow            latency             `json:"flow"` // enroll flows: token + 4 uploads + enroll
	Token           latency             `json:"token"`
	Uploads         latency             `json:"uploads"` // the 4 in parallel
	EnrollAfterLast latency             `json:"enroll_after_last_upload"`
	VerifyFlow      *latency            `json:"verify_flow,omitempty"`
	Verify          *latency            `json:"verify,omitempty"`
	AgentBefore     agentproc.ProcStats `json:"agent_before"`
	AgentAfter      agentproc.ProcStats `json:"agent_after"`
	AgentPeakRSSMiB float64             `json:"agent_peak_rss_mib"`
	AgentPeakFDs    int                 `json:"agent_peak_fds"`
	// AgentCPUPerFlowMS is the agent's CPU time per completed flow: with
	// N cores free, N×1000/AgentCPUPerFlowMS flows/s is the ceiling,
	// whatever else the machine was doing during the run.
	AgentCPUPerFlowMS float64 `json:"agent_cpu_ms_per_flow"`
}

func (g *generator) report(elapsed time.Duration) report {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := report{Mix: g.o.mix, Flows: len(g.results), Seconds: elapsed.Seconds(), RateOffered: g.o.rate, Concurrency: g.o.concurrency, ErrorKinds: map[string]int{}}
	var flow, tok, up, en, vf, v []time.Duration
	for _, res := range g.results {
		if res.err != nil {
			r.Errors++
			r.ErrorKinds[errorKind(res.err)]++
			continue
		}
		r.OK++
		if res.kind == mixEnroll {
			flow, tok, up, en = append(flow, res.flow), append(tok, res.token), append(up, res.uploads), append(en, res.enroll)
		}
		if res.verifyFlow > 0 {
			vf, v = append(vf, res.verifyFlow), append(v, res.verify)
		}
	}
	r.Throughput = float64(r.OK) / elapsed.Seconds()
	r.Flow, r.Token, r.Uploads, r.EnrollAfterLast = dist(flow), dist(tok), dist(up), dist(en)
	if len(vf) > 0 {
		a, b := dist(vf), dist(v)
		r.VerifyFlow, r.Verify = &a, &b
	}
	return r
}

// errorKind shortens an error to its step and status for counting.
func errorKind(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": {"); i > 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func (r report) print(w io.Writer) {
	rate := "as fast as possible"
	if r.RateOffered > 0 {
		rate = fmt.Sprintf("%.1f/s offered", r.RateOffered)
	}
	fmt.Fprintf(w, "flows: %d (%d ok, %d errors) in %.1f s, %s, concurrency ≤ %d\n", r.Flows, r.OK, r.Errors, r.Seconds, rate, r.Concurrency)
	fmt.Fprintf(w, "throughput: %.2f flows/s (mix %s; enroll flow: token + %d uploads + enroll, verify flow: token + 1 upload + verify)\n",
		r.Throughput, r.Mix, uploadsPerFlow)
	line := func(name string, l latency) {
		fmt.Fprintf(w, "  %-26s p50 %7.1f ms  p95 %7.1f ms  p99 %7.1f ms  max %7.1f ms  (n=%d)\n", name, l.P50, l.P95, l.P99, l.Max, l.N)
	}
	line("enroll flow", r.Flow)
	line("token", r.Token)
	line("4 uploads (parallel)", r.Uploads)
	line("enroll after last upload", r.EnrollAfterLast)
	if r.VerifyFlow != nil {
		line("verify flow", *r.VerifyFlow)
		line("verify call", *r.Verify)
	}
	for k, n := range r.ErrorKinds {
		fmt.Fprintf(w, "  error ×%d: %s\n", n, k)
	}
	if r.AgentAfter.FDs > 0 || r.AgentAfter.RSSMiB > 0 {
		fmt.Fprintf(w, "agent: RSS %.0f → %.0f MiB (peak %.0f MiB), FDs %d → %d (peak %d)\n",
			r.AgentBefore.RSSMiB, r.AgentAfter.RSSMiB, r.AgentPeakRSSMiB, r.AgentBefore.FDs, r.AgentAfter.FDs, r.AgentPeakFDs)
		fmt.Fprintf(w, "agent CPU: %.0f ms per flow (ceiling %.1f flows/s per free core)\n",
			r.AgentCPUPerFlowMS, 1000/max(r.AgentCPUPerFlowMS, 1))
	}
}
