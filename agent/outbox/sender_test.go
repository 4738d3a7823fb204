package outbox

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/store"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// startSender starts a sender with jitter fixed at its midpoint (delays
// are exactly Initial × 2^n) and closes it when the test ends.
func startSender(t testing.TB, ctx context.Context, db *store.DB, cfg Config, clk *fakeClock, reg prometheus.Registerer) *Sender {
	t.Helper()
	client, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{DB: db, Client: client, Config: cfg, Clock: clk, Rand: func() float64 { return 0.5 }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// TestScenarioBWS2: centre down → 100 enrollments → retries with capped
// backoff → centre up → every job delivered exactly once, in order per
// class, samples gone, outbox empty.
func TestScenarioBWS2(t *testing.T) {
	clk := newFakeClock()
	db := newStore(t, clk)
	centre := newCentre2(t)
	centre.set(func(c *centre2) { c.down = true })
	ctx := context.Background()

	const classes = 50
	var jobs []store.OutboxJob
	var images [][]byte
	for k := range 2 { // two enrollments per class, interleaved across classes
		for i := int64(1); i <= classes; i++ {
			jobs = append(jobs, enqueue(t, db, class(i), k))
			images = append(images, fakeImage(i, 2*k))
		}
	}

	cfg := centre.config()
	cfg.Backoff = Backoff{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}
	reg := prometheus.NewRegistry()
	s := startSender(t, ctx, db, cfg, clk, reg)

	for i, want := range []time.Duration{1, 2, 4, 8, 10, 10} { // capped at Max
		d := clk.idle(t)
		if d != want*time.Second {
			t.Fatalf("wait %d = %v, want %v", i, d, want*time.Second)
		}
		clk.Advance(d)
	}
	d := clk.idle(t)
	st := s.Status()
	if st.Pending != 100 || !strings.Contains(st.LastError, "503") || st.RetryAt == nil || st.OldestAgeSeconds != 35 {
		t.Fatalf("status while down: %+v", st)
	}
	if j, _ := db.FindOutbox(ctx, jobs[0].ID); j.Attempts != 7 {
		t.Fatalf("head job attempts %d, want 7 (the others wait behind the pause)", j.Attempts)
	}
	if j, _ := db.FindOutbox(ctx, jobs[1].ID); j.Attempts != 0 {
		t.Fatalf("a job behind the pause was tried: %+v", j)
	}

	centre.set(func(c *centre2) { c.down = false })
	clk.Advance(d)
	if d := clk.idle(t); d != cfg.PollInterval {
		t.Fatalf("idle wait after draining %v", d)
	}
	for i := int64(1); i <= classes; i++ {
		got := centre.enrollsOf(class(i).String())
		want := []string{jobs[i-1].ID.String(), jobs[classes+i-1].ID.String()}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("class %d enrolled by %v, want %v (once each, in order)", i, got, want)
		}
	}
	st = s.Status()
	if st.Pending != 0 || st.DeadLetters != 0 || st.SampleBytes != 0 || st.Delivered != 100 || st.RetryAt != nil {
		t.Fatalf("status after delivery: %+v", st)
	}
	if got := metricValue(t, reg, "bwsagent_sync_delivered_total", "kind", "enroll"); got != 100 {
		t.Fatalf("delivered metric %v", got)
	}
	if got := metricValue(t, reg, "bwsagent_sync_failures_total", "class", "transient"); got != 7 {
		t.Fatalf("transient failures metric %v", got)
	}
	if got := metricValue(t, reg, "bwsagent_sync_outbox_jobs"); got != 0 {
		t.Fatalf("outbox gauge %v", got)
	}
	if _, err := db.OutboxSamples(ctx, jobs[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("samples after delivery: %v", err)
	}
	// Nothing of the samples in the file, ever in the clear.
	s.Close()
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range images {
		if bytes.Contains(raw, img[8:40]) {
			t.Fatal("plaintext sample bytes in the store file")
		}
	}
}

// TestClassification: which answers dead-letter a job and which retry it.
func TestClassification(t *testing.T) {
	tests := []struct {
		status int
		dead   bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusNotFound, true},
		{http.StatusConflict, true},
		{http.StatusUnauthorized, false}, // credentials: the sender's fault
		{http.StatusForbidden, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			clk := newFakeClock()
			db := newStore(t, clk)
			centre := newCentre2(t)
			bad := class(3)
			centre.set(func(c *centre2) { c.reject[bad.String()] = tt.status })
			ctx := context.Background()
			enqueue(t, db, class(1), 0)
			j := enqueue(t, db, bad, 0)
			enqueue(t, db, class(2), 0)
			s := startSender(t, ctx, db, centre.config(), clk, nil)
			clk.idle(t)
			got, err := db.FindOutbox(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			if dead := !got.DeadAt.IsZero(); dead != tt.dead || !strings.Contains(got.LastError, "HTTP") {
				t.Fatalf("job after HTTP %d: dead %v, last error %q", tt.status, dead, got.LastError)
			}
			st := s.Status()
			if !strings.Contains(st.LastError, "HTTP") {
				t.Fatalf("status last error %q", st.LastError)
			}
			if tt.dead {
				// Reported, the others delivered, and retryable once fixed.
				if st.DeadLetters != 1 || st.Pending != 0 {
					t.Fatalf("status %+v", st)
				}
				var out bytes.Buffer
				if err := List(ctx, db, &out, ListOptions{Dead: true, Now: clk.Now()}); err != nil || !strings.Contains(out.String(), j.ID.String()) {
					t.Fatalf("List dead: %q, %v", out.String(), err)
				}
				centre.set(func(c *centre2) { delete(c.reject, bad.String()) })
				if n, err := Retry(ctx, db, &out, []string{j.ID.String()}, false); n != 1 || err != nil {
					t.Fatalf("Retry = %d, %v", n, err)
				}
				s.Notify()
				clk.idle(t)
				if got := centre.enrollsOf(bad.String()); len(got) != 1 || got[0] != j.ID.String() {
					t.Fatalf("retried job delivered as %v", got)
				}
				if st := s.Status(); st.DeadLetters != 0 || st.Pending != 0 {
					t.Fatalf("status after retry %+v", st)
				}
			} else if st.Pending != 2 || st.RetryAt == nil {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// TestCrashRedelivery: the centre applied an enrollment but the agent
// never learned it (answer lost, or the agent killed during the call) →
// after a restart the job is recognized as delivered, not enrolled twice.
func TestCrashRedelivery(t *testing.T) {
	for _, mode := range []string{"answer lost", "killed in flight"} {
		t.Run(mode, func(t *testing.T) {
			clk := newFakeClock()
			path := t.TempDir() + "/agent.db"
			db := openStore(t, path, clk)
			centre := newCentre2(t)
			victim := class(5)
			delivered := make(chan string, 100)
			centre.set(func(c *centre2) {
				c.delivered = delivered
				if mode == "answer lost" {
					c.lose[victim.String()] = true
				}
			})
			var jobs []store.OutboxJob
			for i := int64(1); i <= 10; i++ {
				jobs = append(jobs, enqueue(t, db, class(i), 0))
			}
			ctx, kill := context.WithCancel(context.Background())
			defer kill()
			if mode == "killed in flight" {
				centre.set(func(c *centre2) { c.hangAfter[victim.String()] = true })
			}
			s := startSender(t, ctx, db, centre.config(), clk, nil)
			if mode == "answer lost" {
				if d := clk.idle(t); d != time.Second {
					t.Fatalf("wait after a lost answer %v", d)
				}
			} else {
				// The centre committed the victim's enrollment; the agent
				// dies before the answer.
				for b := range delivered {
					if b == victim.String() {
						break
					}
				}
				kill()
			}
			s.Close()
			// No mark was written for the victim: its checkpoint is there.
			j, err := db.FindOutbox(context.Background(), jobs[4].ID)
			if err != nil || len(j.Checkpoint) == 0 {
				t.Fatalf("victim job after the crash: %+v, %v", j, err)
			}
			db.Close()
			centre.set(func(c *centre2) { c.hang = false; c.delivered = nil })

			db = openStore(t, path, clk)
			s = startSender(t, context.Background(), db, centre.config(), clk, nil)
			clk.drain(t, DefaultConfig().PollInterval)
			for i := int64(1); i <= 10; i++ {
				if got := centre.enrollsOf(class(i).String()); len(got) != 1 || got[0] != jobs[i-1].ID.String() {
					t.Fatalf("class %d enrolled %v, want exactly once", i, got)
				}
			}
			if st := s.Status(); st.Pending != 0 || st.SampleBytes != 0 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// TestDeleteSupersedes: a deletion drops the class's pending enrollment
// (and its samples) and reaches the centre.
func TestDeleteSupersedes(t *testing.T) {
	clk := newFakeClock()
	db := newStore(t, clk)
	centre := newCentre2(t)
	centre.set(func(c *centre2) { c.down = true })
	ctx := context.Background()
	enqueue(t, db, class(1), 0)
	enqueue(t, db, class(2), 0)
	if _, n, err := db.DeleteClassWithOutbox(ctx, class(1), store.OutboxJob{}); err != nil || n != 1 {
		t.Fatalf("DeleteClassWithOutbox = %d, %v", n, err)
	}
	s := startSender(t, ctx, db, centre.config(), clk, nil)
	d := clk.idle(t)
	centre.set(func(c *centre2) { c.down = false })
	clk.Advance(d)
	clk.idle(t)
	centre.mu.Lock()
	dels, e1, e2 := centre.deletes[class(1).String()], len(centre.enrolls[class(1).String()]), len(centre.enrolls[class(2).String()])
	centre.mu.Unlock()
	if dels != 1 || e1 != 0 || e2 != 1 {
		t.Fatalf("centre: %d deletes, %d and %d enrollments", dels, e1, e2)
	}
	if st := s.Status(); st.Pending != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestScenarioBWS3: delivery to BWS 3 REST, a re-delivery after a lost
// answer recognized by the template count (even for a class the centre
// had already), and a 400 dead-lettered.
func TestScenarioBWS3(t *testing.T) {
	clk := newFakeClock()
	path := t.TempDir() + "/agent.db"
	db := openStore(t, path, clk)
	centre := newCentre3(t)
	centre.vectors[4] = 3 // enrolled centrally before
	centre.lose[4] = true
	centre.badReq[6] = true
	ctx := context.Background()
	var jobs []store.OutboxJob
	for i := int64(1); i <= 6; i++ {
		jobs = append(jobs, enqueue(t, db, class(i), 0))
	}
	if _, _, err := db.DeleteClassWithOutbox(ctx, class(2), store.OutboxJob{}); err != nil {
		t.Fatal(err)
	}
	s := startSender(t, ctx, db, centre.config(), clk, nil)
	if d := clk.idle(t); d != time.Second {
		t.Fatalf("wait after the lost answer %v", d)
	}
	s.Close()
	db.Close()

	db = openStore(t, path, clk)
	s = startSender(t, ctx, db, centre.config(), clk, nil)
	clk.drain(t, DefaultConfig().PollInterval)
	centre.mu.Lock()
	defer centre.mu.Unlock()
	if got := centre.enrolls[4]; len(got) != 1 || got[0] != jobs[3].ID.String() || centre.vectors[4] != 5 {
		t.Fatalf("class 4: enrolls %v, %d vectors", got, centre.vectors[4])
	}
	for _, id := range []int64{1, 3, 5} {
		if len(centre.enrolls[id]) != 1 || centre.vectors[id] != 2 {
			t.Fatalf("class %d: %v", id, centre.enrolls[id])
		}
	}
	if _, ok := centre.vectors[2]; ok {
		t.Fatal("class 2 not deleted centrally")
	}
	st := s.Status()
	if st.Pending != 0 || st.DeadLetters != 1 || !strings.Contains(st.LastError, "400") {
		t.Fatalf("status %+v", st)
	}
}

// TestCloseBounded: Close returns within the flush timeout although the
// centre hangs, and the job stays for the next start.
func TestCloseBounded(t *testing.T) {
	clk := newFakeClock()
	db := newStore(t, clk)
	centre := newCentre2(t)
	centre.set(func(c *centre2) { c.hang = true })
	j := enqueue(t, db, class(1), 0)
	cfg := centre.config()
	cfg.FlushTimeout = 50 * time.Millisecond
	cfg.Timeout = time.Minute
	client, _ := NewClient(cfg)
	s, err := New(Options{DB: db, Client: client, Config: cfg, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Close()
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("Close took %v", el)
	}
	s.Close() // twice is harmless
	if _, err := db.FindOutbox(context.Background(), j.ID); err != nil {
		t.Fatalf("job after a cut-off flush: %v", err)
	}
	// A sender never started closes at once.
	s2, _ := New(Options{DB: db, Client: client, Config: cfg})
	s2.Close()
}

func TestApplied(t *testing.T) {
	tests := []struct {
		pre, now ClassStatus
		want     bool
	}{
		{ClassStatus{false, -1}, ClassStatus{false, -1}, false},
		{ClassStatus{false, -1}, ClassStatus{true, -1}, true},
		{ClassStatus{true, -1}, ClassStatus{true, -1}, false}, // BWS 2 re-enrollment: undecidable, enroll again
		{ClassStatus{true, 3}, ClassStatus{true, 3}, false},
		{ClassStatus{true, 3}, ClassStatus{true, 5}, true},
		{ClassStatus{false, 0}, ClassStatus{true, 2}, true},
	}
	for _, tt := range tests {
		if got := applied(tt.pre, tt.now); got != tt.want {
			t.Errorf("applied(%+v, %+v) = %v", tt.pre, tt.now, got)
		}
	}
}

// TestFuncClient drives the sender through the func-field mock: a crash
// between the checkpoint and the enroll call (the centre never saw it)
// must enroll.
func TestFuncClient(t *testing.T) {
	clk := newFakeClock()
	db := newStore(t, clk)
	ctx := context.Background()
	j := enqueue(t, db, class(1), 0)
	// The checkpoint of an attempt that never reached the centre.
	if err := db.SetOutboxCheckpoint(ctx, j.Seq, j.ID, []byte(`{"v":1,"pre":{"e":false,"n":-1}}`)); err != nil {
		t.Fatal(err)
	}
	var enrolled [][]byte
	client := &FuncClient{
		StatusFunc: func(context.Context, bws.BCID) (ClassStatus, error) { return ClassStatus{Templates: -1}, nil },
		EnrollFunc: func(_ context.Context, c bws.BCID, id uuid.UUID, s [][]byte) error {
			if c != class(1) || id != j.ID {
				t.Errorf("enroll %v %v", c, id)
			}
			enrolled = s
			return nil
		},
	}
	cfg := DefaultConfig()
	s, err := New(Options{DB: db, Client: client, Config: cfg, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	clk.idle(t)
	s.Close()
	if len(enrolled) != 2 || !bytes.Equal(enrolled[0], fakeImage(1, 0)) {
		t.Fatalf("enrolled %d samples", len(enrolled))
	}
}

// TestConcurrentDelivery: with Concurrency 4, classes are delivered in
// parallel (calls overlap), but never two jobs of one class at once, each
// class's jobs in outbox order, each exactly once.
func TestConcurrentDelivery(t *testing.T) {
	clk := newFakeClock()
	db := newStore(t, clk)
	ctx := context.Background()
	var want = map[bws.BCID][]uuid.UUID{}
	for k := range 3 {
		for i := int64(1); i <= 8; i++ {
			j := enqueue(t, db, class(i), k)
			want[class(i)] = append(want[class(i)], j.ID)
		}
	}
	var (
		mu       sync.Mutex
		inFlight = map[bws.BCID]bool{}
		running  int
		peak     int
		got      = map[bws.BCID][]uuid.UUID{}
		overlap  = make(chan struct{})
		once     sync.Once
	)
	client := &FuncClient{
		StatusFunc: func(ctx context.Context, c bws.BCID) (ClassStatus, error) { return ClassStatus{Templates: -1}, nil },
		DeleteFunc: func(ctx context.Context, c bws.BCID, job uuid.UUID) error { return nil },
		EnrollFunc: func(ctx context.Context, c bws.BCID, job uuid.UUID, samples [][]byte) error {
			mu.Lock()
			if inFlight[c] {
				t.Errorf("two jobs of %v in flight", c)
			}
			inFlight[c] = true
			running++
			peak = max(peak, running)
			if running == 2 {
				once.Do(func() { close(overlap) })
			}
			mu.Unlock()
			// The first call waits for a second one: proof that they overlap.
			select {
			case <-overlap:
			case <-time.After(10 * time.Second):
				t.Error("no second call while the first was in flight")
			}
			mu.Lock()
			inFlight[c] = false
			running--
			got[c] = append(got[c], job)
			mu.Unlock()
			return nil
		},
	}
	cfg := DefaultConfig()
	cfg.Concurrency = 4
	s, err := New(Options{DB: db, Client: client, Config: cfg, Clock: clk, Rand: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clk.drain(t, cfg.PollInterval)
	mu.Lock()
	defer mu.Unlock()
	for c, ids := range want {
		if !slices.Equal(got[c], ids) {
			t.Errorf("%v delivered %v, want %v (in order, once each)", c, got[c], ids)
		}
	}
	if peak < 2 || peak > 4 {
		t.Errorf("peak of %d calls in flight, want 2..4", peak)
	}
	if st := s.Status(); st.Pending != 0 || st.Delivered != 24 {
		t.Errorf("status %+v", st)
	}
}
