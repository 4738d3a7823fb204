// Package crash proves that kill -9 loses nothing: it enrolls classes
// through the BWS API of a real bwsagent process while SIGKILL hits it at
// random moments, and after every kill checks that the store passes
// 'bwsagent store check', that every enrollment the API acknowledged is
// present and usable, and that no uploaded sample is on disk.
//
//	go test ./tests/crash                                 # CI: 30 classes, 3 kills
//	go test ./tests/crash -v -args -classes 1000 -kills 20  # make crash
package crash

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/internal/testenv"
	"github.com/bwsagent/bwsagent/tests/agentproc"
)

var (
	nClasses = flag.Int("classes", 30, "classes to enroll")
	nKills   = flag.Int("kills", 3, "SIGKILLs during the run")
	binPath  = flag.String("bin", "", "bwsagent binary (default: built from this module)")
	seed     = flag.Uint64("seed", 0, "random seed (0: from the clock; printed)")
)

const (
	storage   = "crash"
	partition = 1
	// workers is how many enroll flows run at once, so that kills land
	// while several requests are in flight.
	workers = 2
)

func bcid(i int) string {
	return bws.BCID{Storage: storage, Partition: partition, ClassID: int64(i)}.String()
}

type harness struct {
	t       *testing.T
	bin     string
	dataDir string
	models  string
	log     *agentproc.Buffer
	rng     *rand.Rand
	needles [][]byte
	samples []string

	mu    sync.Mutex
	acked map[int]bool // acknowledged by a 200 Success from /enroll
	cut   int          // flows in flight when a kill hit
}

func TestKill9DuringEnrollment(t *testing.T) {
	testenv.RequireModels(t)
	if testing.Short() && *nClasses > 30 {
		t.Skip("long crash run skipped with -short")
	}
	ctx := context.Background()
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	h := &harness{t: t, dataDir: t.TempDir(), models: testenv.ModelsDir(), log: &agentproc.Buffer{},
		rng: rand.New(rand.NewPCG(s, 1)), acked: map[int]bool{}}
	t.Logf("seed %d (rerun with -args -seed %d)", s, s)
	h.bin = *binPath
	if h.bin == "" {
		var err error
		if h.bin, err = agentproc.Build(ctx, testenv.ModuleRoot(), t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"face.jpg", "face-detect.jpg"} {
		u, raw, err := agentproc.DataURL(testenv.GocvImage(t, name))
		if err != nil {
			t.Fatal(err)
		}
		h.samples = append(h.samples, u)
		h.needles = append(h.needles, agentproc.Needles(raw)...)
	}
	secret, err := agentproc.AddApp(ctx, h.dataDir, "crash", storage, []int{partition})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("agent log (last 4 KiB):\n%s", tail(h.log.Bytes(), 4096))
		}
	}()

	start := time.Now()
	pending := make([]int, 0, *nClasses)
	for i := 1; i <= *nClasses; i++ {
		pending = append(pending, i)
	}
	kills, startupKills := 0, 0
	for len(pending) > 0 || kills < *nKills {
		p := h.start(ctx)
		c := &agentproc.Client{Base: p.APIURL, App: "crash", Secret: secret, HTTP: &http.Client{Timeout: time.Minute}}
		if kills > 0 {
			h.checkServed(ctx, c)
		}
		if kills >= *nKills {
			if left := h.enroll(ctx, c, pending, -1, nil); len(left) > 0 {
				t.Errorf("%d classes not enrolled without kills", len(left))
			}
			h.checkServed(ctx, c)
			if err := p.Stop(); err != nil {
				t.Errorf("graceful stop: %v", err)
			}
			h.checkStopped(ctx)
			break
		}
		// Kill after a random share of what is left, at a random moment
		// of a flow in flight; now and then right after start-up instead.
		left := max(len(pending), 1)
		quota := 1 + h.rng.IntN(max(2*left/(*nKills-kills), 1))
		if kills > 0 && h.rng.IntN(6) == 0 {
			quota = 0
			startupKills++
		}
		pending = h.enroll(ctx, c, pending, quota, p)
		kills++
		h.checkStopped(ctx)
	}
	h.mu.Lock()
	acked, cut := len(h.acked), h.cut
	h.mu.Unlock()
	if acked != *nClasses {
		t.Errorf("%d of %d classes acknowledged", acked, *nClasses)
	}
	msg := fmt.Sprintf("crash: %d classes enrolled and acknowledged, %d kill -9 survived (%d right after start-up, %d flows cut mid-way), store check and every acknowledged enrollment intact after each, no sample bytes on disk; %.0f s",
		acked, kills, startupKills, cut, time.Since(start).Seconds())
	t.Log(msg)
	fmt.Println(msg)
}

func (h *harness) start(ctx context.Context) *agentproc.Proc {
	h.t.Helper()
	p, err := agentproc.Start(ctx, agentproc.Config{Bin: h.bin, DataDir: h.dataDir, ModelsDir: h.models, Log: h.log})
	if err != nil {
		h.t.Fatalf("restart: %v", err)
	}
	return p
}

// enroll runs flows for the pending classes with a few workers. With p,
// after quota acknowledged enrollments (0: at once) it kills p within the
// next few hundred milliseconds, while flows are in flight, and returns
// once p is dead and the flows in flight have failed. It returns the
// classes not acknowledged, to be enrolled again.
func (h *harness) enroll(ctx context.Context, c *agentproc.Client, pending []int, quota int, p *agentproc.Proc) []int {
	var mu sync.Mutex
	queue := slices.Clone(pending)
	var failed []int
	done := 0
	var once sync.Once
	var killSent atomic.Bool
	killed := make(chan struct{})
	fire := func() {
		if p == nil {
			return
		}
		once.Do(func() {
			d := time.Duration(h.rng.Int64N(int64(400 * time.Millisecond)))
			time.AfterFunc(d, func() {
				killSent.Store(true)
				p.Kill()
				close(killed)
			})
		})
	}
	if quota == 0 {
		fire()
	}
	stop := false
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				if stop || len(queue) == 0 {
					mu.Unlock()
					return
				}
				i := queue[0]
				queue = queue[1:]
				mu.Unlock()
				err := c.Flow(ctx, "enroll", bcid(i), h.samples)
				mu.Lock()
				if err != nil {
					failed = append(failed, i)
					stop = true
					h.mu.Lock()
					h.cut++
					h.mu.Unlock()
					// Only the kill may fail a flow.
					if !killSent.Load() {
						h.t.Errorf("class %d failed before any kill: %v", i, err)
					}
				} else {
					h.mu.Lock()
					h.acked[i] = true
					h.mu.Unlock()
					done++
					if quota > 0 && done >= quota {
						fire()
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Out of work before the quota: kill the idle agent.
	fire()
	if p != nil {
		<-killed
	}
	return append(failed, queue...)
}

// checkStopped runs with the agent dead: the store must pass its full
// check, hold every acknowledged class, and no sample may be on disk.
func (h *harness) checkStopped(ctx context.Context) {
	h.t.Helper()
	out, err := exec.CommandContext(ctx, h.bin, "store", "check", "--data-dir", h.dataDir).CombinedOutput()
	if err != nil {
		h.t.Fatalf("store check after kill: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, h.bin, "classes", "list", "--json", "--data-dir", h.dataDir,
		"--storage", storage, "--partition", fmt.Sprint(partition)).Output()
	if err != nil {
		h.t.Fatalf("classes list: %v", err)
	}
	var cs []admin.Class
	if err := json.Unmarshal(out, &cs); err != nil {
		h.t.Fatalf("classes list: %v\n%s", err, out)
	}
	have := map[string]admin.Class{}
	for _, c := range cs {
		b, err := bws.ParseBCID(c.BCID)
		if err != nil {
			h.t.Fatalf("classes list: %v", err)
		}
		have[b.String()] = c
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.acked {
		if c, ok := have[bcid(i)]; !ok || c.Templates < 1 || c.Stale > 0 {
			h.t.Fatalf("acknowledged class %s lost after kill -9: %+v (present %v)", bcid(i), c, ok)
		}
	}
	if f, err := agentproc.ContainsAny(h.dataDir, h.needles); err != nil || f != "" {
		h.t.Fatalf("raw sample bytes on disk in %q (%v)", f, err)
	}
}

// checkServed runs after a restart: every acknowledged class answers
// /isenrolled 200 and shows its templates over the admin socket.
func (h *harness) checkServed(ctx context.Context, c *agentproc.Client) {
	h.t.Helper()
	h.mu.Lock()
	ids := make([]int, 0, len(h.acked))
	for i := range h.acked {
		ids = append(ids, i)
	}
	h.mu.Unlock()
	slices.Sort(ids)
	for _, i := range ids {
		ok, err := c.IsEnrolled(ctx, bcid(i))
		if err != nil || !ok {
			h.t.Fatalf("isenrolled %s after restart: %v, %v", bcid(i), ok, err)
		}
	}
	svc, err := admin.Dial(ctx, agentproc.SocketPath(h.dataDir))
	if err != nil {
		h.t.Fatal(err)
	}
	defer svc.Close()
	for range min(5, len(ids)) {
		i := ids[h.rng.IntN(len(ids))]
		b, _ := bws.ParseBCID(bcid(i))
		d, err := svc.Class(ctx, b)
		if err != nil || len(d.List) == 0 {
			h.t.Fatalf("classes show %s: %+v, %v", bcid(i), d, err)
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
