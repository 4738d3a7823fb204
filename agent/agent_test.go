package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/api"
	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/internal/testenv"
	"github.com/bwsagent/bwsagent/store"
)

// The configuration's api defaults are the API server's defaults.
func TestAPIConfigDefaults(t *testing.T) {
	got := APIConfig(config.Default(), api.DefaultPublicURL, "dev")
	if want := api.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("config.Default().API differs from api.DefaultConfig():\n got %+v\nwant %+v", got, want)
	}
	// Every api.Config field has a configuration key (or is set by the
	// agent: PublicURL is resolved, Version is the build's).
	n := reflect.TypeOf(api.Config{}).NumField()
	if m := reflect.TypeOf(config.API{}).NumField() + 1; m != n {
		t.Errorf("api.Config has %d fields, config.API %d (+Version): a new API option needs a config key", n, m-1)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
}

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger(io.Discard, "loud", "text"); err == nil {
		t.Error("bad level accepted")
	}
	if _, err := NewLogger(io.Discard, "debug", "xml"); err == nil {
		t.Error("bad format accepted")
	}
	if l, err := NewLogger(io.Discard, "warn", "json"); err != nil || l.Enabled(context.Background(), slog.LevelInfo) {
		t.Errorf("warn logger: %v", err)
	}
}

// needModels skips (or fails under BWSAGENT_REQUIRE_MODELS=1) without the
// face models.
func needModels(t *testing.T) {
	t.Helper()
	if _, err := face.ModelFiles(testenv.ModelsDir()); err != nil {
		testenv.MissingModels(t, err)
	}
}

func testConfig(t *testing.T) config.Config {
	t.Helper()
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.ModelsDir = testenv.ModelsDir()
	c.Workers = 1
	c.ShutdownTimeout = 10 * time.Second
	return c
}

// running is an agent serving in the background.
type running struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func start(t *testing.T, cfg config.Config, setup ...func(*Agent)) *running {
	t.Helper()
	needModels(t)
	a, err := New(context.Background(), cfg, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	waitReady(t, a.URL())
	return r
}

// stop shuts the agent down and returns Run's error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns Run's error once Run has returned.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			r.err = errors.New("agent did not stop within 30 s")
		}
	})
	return r.err
}

// waitReady polls /readyz until it answers 200, with a deadline.
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		<-tick.C
	}
	t.Fatalf("%s/readyz did not become ready", base)
}

func get(t *testing.T, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeRoutes(t *testing.T) {
	cfg := testConfig(t)
	a := start(t, cfg)
	base := a.URL()
	if !strings.HasPrefix(base, "http://127.0.0.1:") || a.APIURL() != base+"/extension/" {
		t.Fatalf("URLs %s %s", base, a.APIURL())
	}

	tests := []struct {
		name, path string
		hdr        map[string]string
		status     int
		contains   string
	}{
		{"healthz", "/healthz", nil, 200, "ok"},
		{"readyz", "/readyz", nil, 200, "ready"},
		{"openapi", "/openapi.json", nil, 200, `"openapi"`},
		{"metrics: own registry with process, build and API series", "/metrics", nil, 200, "bwsagent_build_info{version=\"test\"} 1"},
		{"root is the kiosk page", "/", nil, 200, "<html"},
		{"unknown path", "/nope", nil, 404, ""},
		{"BWS route without credentials", "/extension/status", nil, 401, `"Message"`},
		{"foreign Host (DNS rebinding)", "/healthz", map[string]string{"Host": "evil.example:80"}, 403, ""},
		{"foreign Origin", "/extension/status", map[string]string{"Origin": "https://evil.example"}, 403, ""},
	}
	for _, tt := range tests {
		status, body := get(t, base+tt.path, tt.hdr)
		if status != tt.status || !strings.Contains(body, tt.contains) {
			t.Errorf("%s: GET %s = %d %.200q, want %d containing %q", tt.name, tt.path, status, body, tt.status, tt.contains)
		}
	}
	_, metrics := get(t, base+"/metrics", nil)
	for _, m := range []string{"process_resident_memory_bytes", "process_open_fds", "go_goroutines", "bwsagent_ready 1", "bwsagent_api_requests_total"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	var doc map[string]any
	_, spec := get(t, base+"/openapi.json", nil)
	if err := json.Unmarshal([]byte(spec), &doc); err != nil || doc["paths"] == nil {
		t.Errorf("openapi.json: %v", err)
	}

	// The admin socket reports the running agent.
	c, err := admin.Dial(context.Background(), filepath.Join(cfg.DataDir, "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	c.Close()
	if err != nil || !st.Running || !st.Ready || st.URL != base || st.PID != os.Getpid() {
		t.Errorf("status %+v %v", st, err)
	}

	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(cfg.DataDir, "admin.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left behind: %v", err)
	}
	// The store is closed: it opens again without waiting for the lock.
	db, _, _, err := admin.OpenStore(context.Background(), a.Config(), admin.StoreOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("store after shutdown: %v", err)
	}
	db.Close()
}

func TestSecondAgentRefused(t *testing.T) {
	cfg := testConfig(t)
	start(t, cfg)
	_, err := New(context.Background(), cfg, Options{})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "another bwsagent uses "+cfg.DataDir) {
		t.Fatalf("second agent on the same data dir: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listen = "nohost"
	if _, err := New(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "'listen'") {
		t.Errorf("bad config: %v", err)
	}
	needModels(t)
	cfg = testConfig(t)
	cfg.ModelsDir = t.TempDir()
	_, err := New(context.Background(), cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "bwsagent models fetch") {
		t.Errorf("missing models: %v", err)
	}
	// The store opened before the engine failed is closed again.
	db, _, _, err := admin.OpenStore(context.Background(), mustResolve(t, cfg), admin.StoreOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("store left locked after a failed start: %v", err)
	}
	db.Close()
}

func mustResolve(t *testing.T, c config.Config) config.Config {
	t.Helper()
	c, err := c.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uploadRequest starts an upload whose body the test feeds through a pipe.
func uploadRequest(t *testing.T, a *running, token string) (*io.PipeWriter, []byte, chan *http.Response, chan error) {
	t.Helper()
	img, err := os.ReadFile(testenv.GocvImage(t, "face.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(img))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, a.APIURL()+"upload?tag=any&index=0", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resps, errs := make(chan *http.Response, 1), make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errs <- err
			return
		}
		resps <- resp
	}()
	return pw, body, resps, errs
}

func enrollToken(t *testing.T, a *running) string {
	t.Helper()
	ctx := context.Background()
	if _, _, err := a.local.AddApp(ctx, admin.NewApp{ID: "kiosk", Storage: "bws", Partitions: []int{1}}); err != nil {
		t.Fatal(err)
	}
	opts := api.DefaultTokenOptions()
	opts.LiveDetection = false
	tok, err := a.IssueToken(ctx, "kiosk", bws.BCID{Storage: "bws", Partition: 1, ClassID: 7}, bws.OpEnroll, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// waitRefused polls until the listener no longer accepts connections: the
// shutdown has begun.
func waitRefused(t *testing.T, base string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		<-tick.C
	}
	t.Fatal("listener still accepting after shutdown began")
}

// watchHandling reports requests whose handler has started, so a test can
// begin shutting down while a request is surely in flight. A connection
// that has only turned active is not enough: net/http drops a request
// whose header it read just as Shutdown began, before its handler ran,
// and closes the connection unanswered.
func watchHandling(handling chan<- struct{}) func(*Agent) {
	return func(a *Agent) {
		h := a.srv.Handler
		a.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case handling <- struct{}{}:
			default:
			}
			h.ServeHTTP(w, r)
		})
	}
}

// A request in flight when shutdown begins is finished and answered.
func TestGracefulShutdownFinishesRequest(t *testing.T) {
	handling := make(chan struct{}, 16)
	a := start(t, testConfig(t), watchHandling(handling))
	tok := enrollToken(t, a)
	drain(handling) // the readiness probes
	pw, body, resps, errs := uploadRequest(t, a, tok)
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	<-handling
	a.cancel() // SIGTERM
	waitRefused(t, a.URL())
	if _, err := pw.Write(body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	select {
	case err := <-errs:
		t.Fatalf("in-flight upload failed: %v", err)
	case resp := <-resps:
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"Accepted":true`) {
			t.Fatalf("in-flight upload: %d %s", resp.StatusCode, b)
		}
	}
	if err := a.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func drain(c chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// A request that does not finish within the shutdown timeout loses its
// connection, and the agent still stops.
func TestGracefulShutdownDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownTimeout = 200 * time.Millisecond
	handling := make(chan struct{}, 16)
	a := start(t, cfg, watchHandling(handling))
	tok := enrollToken(t, a)
	drain(handling)
	pw, body, resps, errs := uploadRequest(t, a, tok)
	if _, err := pw.Write(body[:8192]); err != nil {
		t.Fatal(err)
	}
	<-handling
	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	pw.CloseWithError(errors.New("test gives up"))
	select {
	case <-errs:
	case resp := <-resps:
		resp.Body.Close()
		t.Fatalf("stalled upload answered %d", resp.StatusCode)
	}
}

// TestSweepTrimsAudit: the housekeeping sweep deletes audit entries past
// auditRetention and keeps the newer ones; a retention of 0 keeps all.
func TestSweepTrimsAudit(t *testing.T) {
	for _, tt := range []struct {
		name      string
		retention time.Duration
		left      int
	}{
		{"90 days", 90 * 24 * time.Hour, 1},
		{"keep every entry", 0, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.AuditRetention = tt.retention
			r := start(t, cfg)
			ctx := t.Context()
			now := time.Now()
			for _, at := range []time.Time{now.Add(-100 * 24 * time.Hour), now.Add(-time.Hour)} {
				if _, err := r.db.AppendAudit(ctx, store.AuditEntry{Time: at, App: "kiosk", Action: "verification", Result: "success"}); err != nil {
					t.Fatal(err)
				}
			}
			r.sweep(ctx, now)
			es, err := r.db.Audit(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != tt.left {
				t.Fatalf("%d entries left, want %d: %+v", len(es), tt.left, es)
			}
			if es[len(es)-1].Time.Before(now.Add(-2 * time.Hour)) {
				t.Errorf("the newest entry was deleted: %+v", es)
			}
		})
	}
}
