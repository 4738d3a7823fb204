package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for the serve goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a `bwsagent serve` running in-process.
type served struct {
	dataDir string
	url     string // listener base URL
	apiURL  string // with the base path
	log     *syncBuffer
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
	err     error
}

// needEngine skips without the face models (fails under
// BWSAGENT_REQUIRE_MODELS=1).
func needEngine(t *testing.T) {
	t.Helper()
	if _, err := face.ModelFiles(testenv.ModelsDir()); err != nil {
		testenv.MissingModels(t, err)
	}
}

// shortTempDir is a data directory whose admin socket path fits in
// sun_path (t.TempDir paths can be long).
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "bws")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startServe runs `bwsagent serve` and waits until it is ready: the admin
// socket answers and /readyz says 200.
func startServe(t *testing.T, dataDir, listen string, extra ...string) *served {
	t.Helper()
	needEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{dataDir: dataDir, log: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", listen, "--workers", "1",
		"--models-dir", testenv.ModelsDir(), "--log-level", "warn"}, extra...)
	go func() {
		m := &Main{Stdout: s.log, Stderr: s.log}
		s.done <- m.Run(ctx, args)
	}()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sock := filepath.Join(dataDir, "admin.sock")
	for s.url == "" {
		select {
		case err := <-s.done:
			t.Fatalf("serve ended before it was ready: %v\n%s", err, s.log)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 30 s:\n%s", s.log)
		}
		c, err := admin.Dial(ctx, sock)
		if err != nil {
			continue
		}
		st, err := c.Status(ctx)
		c.Close()
		if err == nil && st.Running {
			s.url, s.apiURL = st.URL, st.APIURL
		}
	}
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 within 30 s", s.url)
		}
		<-tick.C
	}
}

// stop sends the equivalent of SIGTERM and returns serve's error.
func (s *served) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = errors.New("serve did not stop within 30 s")
		}
	})
	return s.err
}

func (s *served) addr() string { return strings.TrimPrefix(s.url, "http://") }

// lastLine is the last line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// secretOf checks that the secret is the last line of stdout and returns it.
func secretOf(t *testing.T, stdout string) string {
	t.Helper()
	secret, ok := strings.CutPrefix(lastLine(stdout), "secret: ")
	if !ok || len(secret) < 32 {
		t.Fatalf("the last line of stdout is not 'secret: <value>':\n%s", stdout)
	}
	return secret
}

// faces returns enrolment images and a probe of person A, and a probe of
// another person B when the real data set is there. Without it, gocv's two
// photos of one man serve as A (and there is no B).
func faces(t *testing.T) (enrollA []string, probeA, probeB string) {
	t.Helper()
	dir := filepath.Join(testenv.ModuleRoot(), "..", "shared", "data", "identities", "lfw_deepfunneled_min10")
	if d := os.Getenv("BWSAGENT_TESTDATA"); d != "" {
		dir = filepath.Join(d, "identities", "lfw_deepfunneled_min10")
	}
	people, err := os.ReadDir(dir)
	if err != nil || len(people) < 2 {
		t.Logf("LFW not found at %s; using gocv's photos", dir)
		return []string{gocvImage(t, "face.jpg")}, gocvImage(t, "face-detect.jpg"), ""
	}
	list := func(p string) []string {
		ms, _ := filepath.Glob(filepath.Join(dir, p, "*.jpg"))
		slices.Sort(ms)
		return ms
	}
	a, b := list(people[0].Name()), list(people[1].Name())
	if len(a) < 4 || len(b) < 1 {
		t.Fatalf("LFW people with too few photos: %d, %d", len(a), len(b))
	}
	return a[:3], a[3], b[0]
}

// The whole deployment story: serve, add an app over the admin socket,
// enroll and verify with real photos through the client commands, list the
// class, restart (apps, keys, templates and an unused token survive), and
// refuse a second agent on the same store.
func TestServeEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := shortTempDir(t)
	s := startServe(t, dir, "127.0.0.1:0")

	// apps add through the running agent (the store is locked: only the
	// socket can do it). The secret is the last line.
	out, errOut, err := run(t, "apps", "add", "--data-dir", dir, "--id", "kiosk", "--name", "Front door",
		"--storage", "bws", "--partition", "12", "--partition", "13")
	if err != nil {
		t.Fatalf("apps add: %v\n%s", err, errOut)
	}
	secret := secretOf(t, out)
	if !strings.Contains(errOut, "only this once") {
		t.Errorf("apps add does not warn that the secret is shown once: %q", errOut)
	}
	client := func(op, bcid string, images ...string) (string, error) {
		t.Helper()
		args := append([]string{"client", op, "--url", s.apiURL, "--bcid", bcid, "--app", "kiosk", "--secret", secret}, images...)
		out, errOut, err := run(t, args...)
		t.Logf("client %s %s: %s%s", op, bcid, out, errOut)
		return strings.TrimSpace(out), err
	}

	enrollA, probeA, probeB := faces(t)
	if out, err := client("enroll", "bws.12.4711", enrollA...); err != nil || out != `{"Success":true}` {
		t.Fatalf("enroll: %s %v", out, err)
	}
	if out, err := client("verify", "bws.12.4711", probeA); err != nil || out != `{"Success":true}` {
		t.Fatalf("verify A: %s %v", out, err)
	}
	if probeB != "" {
		if out, err := client("verify", "bws.12.4711", probeB); err == nil || out != `{"Success":false}` {
			t.Errorf("verify B against A: %s %v", out, err)
		}
	}
	out, err = client("identify", "bws.12.0", probeA)
	var idRes struct {
		Success bool
		Matches []struct {
			ClassID   int64
			Partition int
			Storage   string
		}
	}
	if err != nil || json.Unmarshal([]byte(out), &idRes) != nil || !idRes.Success || len(idRes.Matches) == 0 || idRes.Matches[0].ClassID != 4711 {
		t.Errorf("identify: %s %v", out, err)
	}
	if out, err := client("verify", "bws.12.999", probeA); err == nil || !strings.Contains(out, "NoTemplateAvailable") {
		t.Errorf("verify of a class never enrolled: %s %v", out, err)
	}
	if _, err := client("enroll", "bws.14.1", probeA); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("enroll into a partition the app may not use: %v", err)
	}

	// Admin listings over the socket.
	out, _, err = run(t, "classes", "list", "--data-dir", dir, "--json")
	var classes []admin.Class
	if err != nil || json.Unmarshal([]byte(out), &classes) != nil || len(classes) != 1 || classes[0].BCID != "bws/12/4711" {
		t.Fatalf("classes list: %s %v", out, err)
	}
	out, _, err = run(t, "classes", "show", "--data-dir", dir, "bws/12/4711")
	if err != nil || !strings.Contains(out, "class bws/12/4711: 1 templates") {
		t.Errorf("classes show: %s %v", out, err)
	}

	// A verify token issued before the restart.
	bc := &bwsClient{base: mustURL(t, s.apiURL), http: http.DefaultClient}
	oldTok, err := bc.token(ctx, url.Values{"id": {"kiosk"}, "bcid": {"bws.12.4711"}, "task": {"verify"}, "livedetection": {"false"}}, "kiosk", secret)
	if err != nil {
		t.Fatal(err)
	}

	// A second agent on the same data directory is refused, clearly.
	_, _, err = run(t, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--models-dir", testenv.ModelsDir())
	if err == nil || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), "another bwsagent uses "+dir) {
		t.Errorf("second serve on a locked store: %v", err)
	}

	// Restart on the same address (the tokens' audience).
	addr := s.addr()
	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "admin.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left after shutdown: %v", err)
	}
	// With no agent, the CLI opens the store itself.
	out, _, err = run(t, "apps", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "kiosk") || !strings.Contains(out, "Front door") {
		t.Fatalf("apps list without agent: %s %v", out, err)
	}
	s2 := startServe(t, dir, addr)
	if s2.url != s.url {
		t.Fatalf("restarted on %s, not %s", s2.url, s.url)
	}
	res, err := bc.upload(ctx, oldTok, probeA, 1, "any")
	if err != nil || res != "accepted" {
		t.Fatalf("upload with a token from before the restart: %s %v", res, err)
	}
	body, err := bc.perform(ctx, "verify", oldTok, nil)
	if err != nil || string(bytes.TrimSpace(body)) != `{"Success":true}` {
		t.Fatalf("verify with a token from before the restart: %s %v", body, err)
	}
	if out, err := client("verify", "bws.12.4711", probeA); err != nil || out != `{"Success":true}` {
		t.Errorf("verify after restart with the same secret: %s %v", out, err)
	}

	// A token signed before a signing-key rotation stays valid.
	tok, err := bc.token(ctx, url.Values{"id": {"kiosk"}, "bcid": {"bws.12.4711"}, "task": {"verify"}, "livedetection": {"false"}}, "kiosk", secret)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, "keys", "rotate-signing", "--data-dir", dir); err != nil || !strings.Contains(out, "1 previous key") {
		t.Fatalf("keys rotate-signing: %s %v", out, err)
	}
	if res, err := bc.upload(ctx, tok, probeA, 1, "any"); err != nil || res != "accepted" {
		t.Errorf("token from before the signing-key rotation: %s %v", res, err)
	}
	if out, _, err := run(t, "keys", "rotate-template", "--data-dir", dir); err != nil || !strings.Contains(out, "records resealed") {
		t.Fatalf("keys rotate-template: %s %v", out, err)
	}
	if out, err := client("verify", "bws.12.4711", probeA); err != nil || out != `{"Success":true}` {
		t.Errorf("verify after the template key rotation: %s %v", out, err)
	}

	// Backup through the running agent; restore is refused while it runs.
	bak := filepath.Join(dir, "store.bak")
	if out, _, err := run(t, "backup", "--data-dir", dir, bak); err != nil || !strings.Contains(out, "written to "+bak) {
		t.Fatalf("backup: %s %v", out, err)
	}
	if _, _, err := run(t, "restore", "--data-dir", dir, bak); !errors.Is(err, admin.ErrAgentRunning) {
		t.Errorf("restore while the agent runs: %v", err)
	}
	if out, _, err := run(t, "classes", "delete", "--data-dir", dir, "bws.12.4711"); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("classes delete: %s %v", out, err)
	}
	if out, err := client("verify", "bws.12.4711", probeA); err == nil || !strings.Contains(out, "NoTemplateAvailable") {
		t.Errorf("verify after classes delete (the gallery must forget the class too): %s %v", out, err)
	}

	// Restore the backup with the agent stopped: the class is back.
	if err := s2.stop(); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, "restore", "--data-dir", dir, bak); err != nil || !strings.Contains(out, "pre-restore") {
		t.Fatalf("restore: %s %v", out, err)
	}
	out, _, err = run(t, "classes", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "bws/12/4711") {
		t.Errorf("classes after restore: %s %v", out, err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Without a running agent every admin command opens the store itself.
func TestAdminCommandsWithoutAgent(t *testing.T) {
	dir := shortTempDir(t)
	missing := filepath.Join(dir, "nothing-here")
	if _, _, err := run(t, "apps", "list", "--data-dir", missing); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("apps list on an empty data dir: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("a listing created the data directory")
	}

	out, _, err := run(t, "apps", "add", "--data-dir", dir, "--id", "a1", "--storage", "bws", "--partition", "1,2")
	if err != nil {
		t.Fatal(err)
	}
	s1 := secretOf(t, out)
	if fi, err := os.Stat(filepath.Join(dir, "template.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("template key created by the first apps add: %v", err)
	}
	if _, _, err := run(t, "apps", "add", "--data-dir", dir, "--id", "a1", "--storage", "bws", "--partition", "1"); err == nil || !strings.Contains(err.Error(), "rotate-secret") {
		t.Errorf("duplicate app: %v", err)
	}
	out, _, err = run(t, "apps", "rotate-secret", "--data-dir", dir, "a1")
	if err != nil || secretOf(t, out) == s1 {
		t.Errorf("rotate-secret: %s %v", out, err)
	}
	out, _, err = run(t, "apps", "list", "--data-dir", dir, "--json")
	var apps []admin.App
	if err != nil || json.Unmarshal([]byte(out), &apps) != nil || len(apps) != 1 || !slices.Equal(apps[0].Partitions, []int{1, 2}) {
		t.Errorf("apps list --json: %s %v", out, err)
	}
	if out, _, err := run(t, "classes", "list", "--data-dir", dir, "--json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("classes list on an empty store: %q %v", out, err)
	}
	if _, _, err := run(t, "classes", "show", "--data-dir", dir, "bws.1.1"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("classes show unknown: %v", err)
	}
	if _, _, err := run(t, "keys", "rotate-signing", "--data-dir", dir); err != nil {
		t.Error(err)
	}
	if _, _, err := run(t, "keys", "rotate-template", "--data-dir", dir); err != nil {
		t.Error(err)
	}
	bak := filepath.Join(dir, "b.bak")
	if _, _, err := run(t, "backup", "--data-dir", dir, bak); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "apps", "remove", "--data-dir", dir, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "apps", "remove", "--data-dir", dir, "a1"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("remove twice: %v", err)
	}
	if _, _, err := run(t, "restore", "--data-dir", dir, bak); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := run(t, "apps", "list", "--data-dir", dir); !strings.Contains(out, "a1") {
		t.Errorf("app not back after restore: %s", out)
	}
	// A damaged backup is refused and the store stays.
	b, _ := os.ReadFile(bak)
	b[len(b)/2] ^= 1
	os.WriteFile(bak, b, 0o600)
	if _, _, err := run(t, "restore", "--data-dir", dir, bak); err == nil || !strings.Contains(err.Error(), "bad backup") {
		t.Errorf("damaged backup: %v", err)
	}
	if out, _, _ := run(t, "apps", "list", "--data-dir", dir); !strings.Contains(out, "a1") {
		t.Errorf("store lost after a refused restore: %s", out)
	}
}

func TestConfigCheck(t *testing.T) {
	shipped := filepath.Join(testenv.ModuleRoot(), "configs", "bwsagent.yaml")
	out, _, err := run(t, "config", "check", shipped)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), ": ok") {
		t.Errorf("shipped config: %s %v", out, err)
	}
	out, _, err = run(t, "config", "check", "--print", shipped)
	if err != nil || !strings.Contains(out, "basePath: /extension/") {
		t.Errorf("--print: %s %v", out, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:1\napi:\n  jobTimout: 5s\n"), 0o600)
	if _, _, err := run(t, "config", "check", bad); err == nil || !strings.Contains(err.Error(), "unknown key 'api.jobTimout' (line 3)") {
		t.Errorf("unknown key: %v", err)
	}
	os.WriteFile(bad, []byte("api:\n  basePath: extension\n"), 0o600)
	if _, _, err := run(t, "config", "check", bad); err == nil || !strings.Contains(err.Error(), "'api.basePath' must start and end with '/'") {
		t.Errorf("bad value: %v", err)
	}
	os.WriteFile(bad, []byte("liveness:\n  minPad: 2\n"), 0o600)
	if _, _, err := run(t, "config", "check", bad); err == nil || !strings.Contains(err.Error(), "bad.yaml: 'liveness.minPad' must be in [0, 1], got 2") {
		t.Errorf("bad liveness value: %v", err)
	}
	os.WriteFile(bad, []byte("liveness:\n  minPad: 0.7\n  maxFramed: 1\n"), 0o600)
	if out, _, err = run(t, "config", "check", "--print", bad); err != nil || !strings.Contains(out, "minPad: 0.7") || !strings.Contains(out, "maxFramed: 1") {
		t.Errorf("liveness --print: %s %v", out, err)
	}
}

// Flags override the configuration file.
func TestServeFlagOverridesFile(t *testing.T) {
	needEngine(t)
	dir := shortTempDir(t)
	file := filepath.Join(dir, "bwsagent.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1\nlogLevel: error\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, dir, "127.0.0.1:0", "--config", file)
	if strings.HasSuffix(s.url, ":1") {
		t.Errorf("--listen did not override the file: %s", s.url)
	}
	if _, err := config.Load(config.Sources{File: file}); err != nil {
		t.Fatal(err)
	}
}

func TestAdminUsage(t *testing.T) {
	for _, cmd := range [][]string{
		{"serve"}, {"apps", "add"}, {"apps", "list"}, {"apps", "remove"}, {"apps", "rotate-secret"},
		{"classes", "list"}, {"classes", "show"}, {"classes", "delete"}, {"backup"}, {"restore"},
		{"keys", "rotate-signing"}, {"keys", "rotate-template"},
	} {
		_, errOut, err := run(t, append(cmd, "-h")...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "-data-dir") || !strings.Contains(errOut, "Usage: bwsagent "+strings.Join(cmd, " ")) {
			t.Errorf("%v -h: %v\n%s", cmd, err, errOut)
		}
	}
	for _, op := range []string{"enroll", "verify", "identify"} {
		_, errOut, err := run(t, "client", op, "-h")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "-secret") {
			t.Errorf("client %s -h: %v", op, err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apps", "add", "--id", "x"}, "needs --id, --storage and at least one --partition"},
		{[]string{"apps", "add", "--id", "x", "--storage", "s", "--partition", "-1"}, "partition"},
		{[]string{"apps", "remove"}, "needs one app id"},
		{[]string{"classes", "show", "bws/x/1"}, "invalid BCID"},
		{[]string{"client", "enroll", "--app", "a", "--secret", "s", "--bcid", "bws.1.1"}, "at least one IMAGE"},
		{[]string{"apps", "frobnicate"}, `unknown command "apps frobnicate"`},
		{[]string{"keys"}, `"keys" needs a subcommand`},
	} {
		_, _, err := run(t, tc.args...)
		if !isUsage(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}
