package outbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/store"
	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)

// fakeClock is moved by the test. Every After call is reported on waits,
// so a test knows when the sender has finished a pass and sleeps.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waits   chan time.Duration
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: t0, waits: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	c.mu.Unlock()
	c.waits <- d
	return ch
}

// Advance moves time and fires the waiters that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// drain advances time until the sender sleeps for a whole poll interval:
// nothing is due any more.
func (c *fakeClock) drain(t *testing.T, poll time.Duration) {
	t.Helper()
	for range 20 {
		d := c.idle(t)
		if d == poll {
			return
		}
		c.Advance(d)
	}
	t.Fatal("the sender does not settle")
}

// idle waits until the sender sleeps and returns how long it sleeps for.
func (c *fakeClock) idle(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("the sender never went idle")
		return 0
	}
}

var testStoreKey = bytes.Repeat([]byte{7}, store.KeySize)

func storeOptions(clk *fakeClock) store.Options {
	return store.Options{
		Timeout:       time.Second,
		EncryptionKey: testStoreKey,
		SecretHash:    store.HashParams{Time: 1, MemoryKiB: 64, Threads: 1},
		NoSync:        true,
		Now:           clk.Now,
	}
}

// openStore opens a store and checks it (bbolt's tx.Check and every
// record) when the test ends, unless the test closed it.
func openStore(t testing.TB, path string, clk *fakeClock) *store.DB {
	t.Helper()
	db, err := store.Open(path, storeOptions(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(context.Background()); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("consistency check: %v", err)
		}
		db.Close()
	})
	return db
}

func newStore(t testing.TB, clk *fakeClock) *store.DB {
	return openStore(t, filepath.Join(t.TempDir(), "agent.db"), clk)
}

func class(n int64) bws.BCID { return bws.BCID{Storage: "bws", Partition: 12, ClassID: n} }

// fakeImage is a PNG-looking sample with bytes unique to (class, k).
func fakeImage(class int64, k int) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	b = fmt.Appendf(b, "IMG-%d-%d-", class, k)
	for i := 0; len(b) < 2048; i++ {
		b = append(b, byte(i*7+k), byte(class))
	}
	return b
}

// enqueue enrolls locally with an outbox job of two samples.
func enqueue(t testing.TB, db *store.DB, c bws.BCID, k int) store.OutboxJob {
	t.Helper()
	tpl := store.Template{Model: "m", Vector: []float32{1, float32(k)}, Quality: 1}
	_, j, err := db.AddTemplatesWithOutbox(context.Background(), c,
		store.OutboxJob{Samples: [][]byte{fakeImage(c.ClassID, 2*k), fakeImage(c.ClassID, 2*k+1)}}, tpl)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// centre2 is a fake BWS 2 extension centre: it checks credentials, tokens
// and data URLs like the real one, and records every enrollment.
type centre2 struct {
	t      testing.TB
	srv    *httptest.Server
	appID  string
	secret string

	mu        sync.Mutex
	down      bool                // answer 503 to everything
	tokens    map[string]*token2  // jwt → state
	enrolls   map[string][]string // bcid → job ids (Idempotency-Key), in order
	samples   map[string]int      // bcid → samples enrolled
	deletes   map[string]int
	reject    map[string]int  // bcid → HTTP status at /token
	lose      map[string]bool // bcid → apply the enroll, then drop the answer (once)
	hangAfter map[string]bool // bcid → apply the enroll, then hang until the client gives up
	hang      bool            // block requests until the client gives up
	nextToken int
	delivered chan string // bcid of each enrollment, if set
}

type token2 struct {
	bcid    string
	job     string
	samples map[int][]byte
}

func newCentre2(t testing.TB) *centre2 { return newCentre2With(t, false) }

func newCentre2With(t testing.TB, tls bool) *centre2 {
	c := &centre2{
		t: t, appID: "kiosk", secret: "s3cret",
		tokens: map[string]*token2{}, enrolls: map[string][]string{}, samples: map[string]int{},
		deletes: map[string]int{}, reject: map[string]int{}, lose: map[string]bool{}, hangAfter: map[string]bool{},
	}
	h := http.StripPrefix("/extension", http.HandlerFunc(c.serve))
	if tls {
		c.srv = httptest.NewTLSServer(h)
	} else {
		c.srv = httptest.NewServer(h)
	}
	t.Cleanup(c.srv.Close)
	return c
}

func (c *centre2) config() Config {
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.URL = c.srv.URL + "/extension/"
	cfg.AppID, cfg.AppSecret = c.appID, c.secret
	// One job at a time: these scenarios pin which jobs a transient
	// failure or a kill leaves pending (TestConcurrentDelivery covers more).
	cfg.Concurrency = 1
	return cfg
}

func (c *centre2) set(f func(c *centre2)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

func (c *centre2) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	down, hang := c.down, c.hang
	c.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	if down {
		http.Error(w, `{"Message":"down"}`, http.StatusServiceUnavailable)
		return
	}
	basic := func() bool {
		id, secret, ok := r.BasicAuth()
		if !ok || id != c.appID || secret != c.secret {
			w.WriteHeader(http.StatusUnauthorized)
			return false
		}
		return true
	}
	bearer := func() *token2 {
		c.mu.Lock()
		defer c.mu.Unlock()
		tk := c.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if tk == nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
		return tk
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/token":
		if !basic() {
			return
		}
		bcid, err := bws.ParseBCID(q.Get("bcid"))
		if err != nil || q.Get("id") != c.appID || q.Get("task") != "enroll" || q.Get("challenge") != "false" || q.Get("livedetection") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if st := c.reject[bcid.String()]; st != 0 {
			w.WriteHeader(st)
			return
		}
		c.nextToken++
		jwt := "jwt." + strconv.Itoa(c.nextToken)
		c.tokens[jwt] = &token2{bcid: bcid.String(), job: r.Header.Get("Idempotency-Key"), samples: map[int][]byte{}}
		io.WriteString(w, jwt)
	case "/upload":
		tk := bearer()
		if tk == nil {
			return
		}
		body, _ := io.ReadAll(r.Body)
		rest, ok := bytes.CutPrefix(body, []byte("data:image/png;base64,"))
		img, err := base64.StdEncoding.DecodeString(string(rest))
		idx, ierr := strconv.Atoi(q.Get("index"))
		if !ok || err != nil || ierr != nil || q.Get("tag") != "any" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		tk.samples[idx] = img
		c.mu.Unlock()
		io.WriteString(w, `{"Accepted":true,"Warnings":[]}`)
	case "/enroll":
		tk := bearer()
		if tk == nil {
			return
		}
		c.mu.Lock()
		if len(tk.samples) == 0 {
			c.mu.Unlock()
			io.WriteString(w, `{"Success":false,"Error":"NotEnoughSamples"}`)
			return
		}
		c.enrolls[tk.bcid] = append(c.enrolls[tk.bcid], tk.job)
		c.samples[tk.bcid] += len(tk.samples)
		tk.samples = map[int][]byte{} // consumed
		lose := c.lose[tk.bcid]
		delete(c.lose, tk.bcid)
		hangAfter := c.hangAfter[tk.bcid]
		delete(c.hangAfter, tk.bcid)
		delivered := c.delivered
		c.mu.Unlock()
		if delivered != nil {
			delivered <- tk.bcid
		}
		if hangAfter {
			<-r.Context().Done()
			return
		}
		if lose {
			// Applied, but the answer never arrives: what a crash or a
			// network cut after the centre's commit looks like.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, `{"Success":true}`)
	case "/isenrolled":
		if !basic() {
			return
		}
		c.mu.Lock()
		n := len(c.enrolls[q.Get("bcid")])
		c.mu.Unlock()
		if n == 0 {
			w.WriteHeader(http.StatusNotFound)
		}
	case "/deleteclass":
		if !basic() {
			return
		}
		if r.Method != http.MethodDelete {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		c.mu.Lock()
		bcid := q.Get("bcid")
		c.deletes[bcid]++
		found := len(c.enrolls[bcid]) > 0
		delete(c.enrolls, bcid)
		delete(c.samples, bcid)
		c.mu.Unlock()
		if !found {
			w.WriteHeader(http.StatusNotFound)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (c *centre2) enrollsOf(bcid string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.enrolls[bcid])
}

// centre3 is a small BWS 3 REST server: it checks the JWT and keeps a
// feature-vector count per class.
type centre3 struct {
	t        testing.TB
	srv      *httptest.Server
	clientID string
	key      []byte

	mu      sync.Mutex
	vectors map[int64]int
	enrolls map[int64][]string
	lose    map[int64]bool
	badReq  map[int64]bool
}

func newCentre3(t testing.TB) *centre3 {
	c := &centre3{
		t: t, clientID: "device-7", key: bytes.Repeat([]byte{9}, 32),
		vectors: map[int64]int{}, enrolls: map[int64][]string{}, lose: map[int64]bool{}, badReq: map[int64]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/face/v1/enroll/{id}", c.auth(c.enroll))
	mux.HandleFunc("GET /api/face/v1/template/status/{id}", c.auth(c.status))
	mux.HandleFunc("DELETE /api/face/v1/template/{id}", c.auth(c.delete))
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	return c
}

func (c *centre3) config() Config {
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.Protocol = ProtocolBWS3
	cfg.URL = c.srv.URL
	cfg.ClientID = c.clientID
	cfg.ClientKey = base64.StdEncoding.EncodeToString(c.key)
	// One job at a time: these scenarios pin which jobs a transient
	// failure or a kill leaves pending (TestConcurrentDelivery covers more).
	cfg.Concurrency = 1
	return cfg
}

func (c *centre3) auth(next func(w http.ResponseWriter, r *http.Request, id int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return c.key, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("BWS"), jwt.WithSubject(c.clientID), jwt.WithExpirationRequired())
		if err != nil || !tok.Valid {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		next(w, r, id)
	}
}

func (c *centre3) enroll(w http.ResponseWriter, r *http.Request, id int64) {
	var imgs []struct {
		Image string `json:"image"`
	}
	if err := json.NewDecoder(r.Body).Decode(&imgs); err != nil || len(imgs) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for _, im := range imgs {
		if _, err := base64.StdEncoding.DecodeString(im.Image); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	c.mu.Lock()
	if c.badReq[id] {
		c.mu.Unlock()
		http.Error(w, `{"errors":[{"errorCode":"FaceNotFound"}]}`, http.StatusBadRequest)
		return
	}
	c.vectors[id] += len(imgs)
	c.enrolls[id] = append(c.enrolls[id], r.Header.Get("Idempotency-Key"))
	lose := c.lose[id]
	delete(c.lose, id)
	c.mu.Unlock()
	if lose {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"TEMPLATE_UPDATED"}`)
}

func (c *centre3) status(w http.ResponseWriter, r *http.Request, id int64) {
	c.mu.Lock()
	n := c.vectors[id]
	c.mu.Unlock()
	if n == 0 {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	fmt.Fprintf(w, `{"classId":%d,"available":true,"featureVectors":%d}`, id, n)
}

func (c *centre3) delete(w http.ResponseWriter, r *http.Request, id int64) {
	c.mu.Lock()
	_, ok := c.vectors[id]
	delete(c.vectors, id)
	c.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
	}
}
