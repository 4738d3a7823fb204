package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

// These tests run the real binary as systemd would: NOTIFY_SOCKET and
// WATCHDOG_USEC point at sockets of the test, JOURNAL_STREAM names its
// stderr, and the journal's socket is moved into the test's directory at
// link time (go-systemd's journal package reads it from a variable).

// buildDaemon builds bwsagent into dir, its journal socket dir/journal.sock.
func buildDaemon(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bwsagent")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X github.com/coreos/go-systemd/v22/journal.journalSocket="+filepath.Join(dir, "journal.sock"), ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// datagrams collects what the daemon sends to a unixgram socket.
type datagrams struct {
	conn *net.UnixConn
	c    chan string
	seen []string // every message taken, for failure messages
}

func listenUnixgram(t *testing.T, path string) *datagrams {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	d := &datagrams{conn: conn, c: make(chan string, 1024)}
	go func() {
		defer close(d.c)
		buf := make([]byte, 1<<16)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			d.c <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return d
}

// next returns the next message that match accepts, failing the test
// after timeout. Messages skipped are kept in seen.
func (d *datagrams) next(t *testing.T, what string, timeout time.Duration, match func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-d.c:
			if !ok {
				t.Fatalf("socket closed waiting for %s", what)
			}
			d.seen = append(d.seen, m)
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %v; got:\n%s", what, timeout, strings.Join(d.seen, "\n--\n"))
		}
	}
}

// drain drops the messages received so far.
func (d *datagrams) drain() {
	for {
		select {
		case m := <-d.c:
			d.seen = append(d.seen, m)
		default:
			return
		}
	}
}

// none fails if a message match accepts arrives within d.
func (d *datagrams) none(t *testing.T, what string, within time.Duration, match func(string) bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-d.c:
			d.seen = append(d.seen, m)
			if match(m) {
				t.Fatalf("%s arrived: %q", what, m)
			}
		case <-deadline:
			return
		}
	}
}

func hasLine(line string) func(string) bool {
	return func(m string) bool { return slicesContains(strings.Split(m, "\n"), line) }
}

func slicesContains(ls []string, s string) bool {
	for _, l := range ls {
		if l == s {
			return true
		}
	}
	return false
}

func statusOf(m string) string {
	for _, l := range strings.Split(m, "\n") {
		if s, ok := strings.CutPrefix(l, "STATUS="); ok {
			return s
		}
	}
	return ""
}

// journalEntry parses one datagram of journald's native protocol.
func journalEntry(t *testing.T, b string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for b != "" {
		line, rest, _ := strings.Cut(b, "\n")
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
			b = rest
			continue
		}
		// KEY\n<uint64 LE length><value>\n
		if len(rest) < 8 {
			t.Fatalf("bad journal datagram %q", b)
		}
		n := binary.LittleEndian.Uint64([]byte(rest[:8]))
		fields[line] = rest[8 : 8+n]
		b = rest[8+n+1:]
	}
	return fields
}

type daemon struct {
	cmd    *exec.Cmd
	stderr *os.File
	exited chan struct{} // closed when the process has exited
	err    error         // its exit error, set before exited closes
}

// startDaemon runs `bin serve args...` with env added; with journal set,
// JOURNAL_STREAM names its stderr, as systemd does.
func startDaemon(t *testing.T, bin string, journal bool, env []string, args ...string) *daemon {
	t.Helper()
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stderr.Close() })
	if journal {
		var st unix.Stat_t
		if err := unix.Fstat(int(stderr.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		env = append(env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	d := &daemon{cmd: cmd, stderr: stderr, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.exited
	})
	return d
}

func (d *daemon) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (d *daemon) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(d.stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wait returns the exit error, failing after timeout.
func (d *daemon) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-d.exited:
		return d.err
	case <-time.After(timeout):
		t.Fatalf("bwsagent still running %v after SIGTERM:\n%s", timeout, d.log(t))
		return nil
	}
}

func writeConfig(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func journalMessage(t *testing.T, prefix string) func(string) bool {
	return func(m string) bool { return strings.HasPrefix(journalEntry(t, m)["MESSAGE"], prefix) }
}

// TestDaemon runs the real binary; the subtests share one build.
func TestDaemon(t *testing.T) {
	needEngine(t)
	dir := shortTempDir(t)
	bin := buildDaemon(t, dir)
	t.Run("systemd", func(t *testing.T) { testDaemonSystemd(t, bin, dir) })
	t.Run("graceful shutdown", func(t *testing.T) { testDaemonShutdown(t, bin) })
	t.Run("socket activation", func(t *testing.T) { testDaemonSocketActivation(t, bin) })
	t.Run("stalled camera", func(t *testing.T) { testDaemonStalledCamera(t, bin) })
}

// testDaemonStalledCamera: a network camera that sends one frame and then
// hangs with the connection open (a wedged encoder) stops the watchdog
// pings; once the agent reconnects and frames flow again they resume.
func testDaemonStalledCamera(t *testing.T, bin string) {
	jpg, err := os.ReadFile(testenv.GocvImage(t, "face.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	quit := make(chan struct{})
	camera := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(jpg))
		_, _ = w.Write(jpg)
		_, _ = io.WriteString(w, "\r\n")
		w.(http.Flusher).Flush()
		select { // hang, connection open
		case <-r.Context().Done():
		case <-quit:
		}
	}))
	defer camera.Close()
	defer close(quit)

	dir := shortTempDir(t)
	notify := listenUnixgram(t, filepath.Join(dir, "notify.sock"))
	const watchdog = 200 * time.Millisecond
	d := startDaemon(t, bin, false, []string{
		"NOTIFY_SOCKET=" + filepath.Join(dir, "notify.sock"),
		"WATCHDOG_USEC=" + strconv.FormatInt(watchdog.Microseconds(), 10),
	}, "--data-dir", dir, "--models-dir", testenv.ModelsDir(), "--listen", "127.0.0.1:0", "--workers", "1",
		"--source", camera.URL+"/stream")
	notify.next(t, "READY=1", 30*time.Second, hasLine("READY=1"))
	notify.next(t, "WATCHDOG=1", 5*time.Second, hasLine("WATCHDOG=1"))
	st := statusOf(notify.next(t, "STATUS=unhealthy…", 10*time.Second, func(m string) bool {
		return strings.HasPrefix(statusOf(m), "unhealthy")
	}))
	if !strings.Contains(st, "capture stalled") {
		t.Errorf("unhealthy STATUS does not name the camera: %q", st)
	}
	notify.none(t, "WATCHDOG=1 while the camera hangs", 5*watchdog, hasLine("WATCHDOG=1"))
	// The capture source's read timeout reconnects; the first frame of the
	// new connection makes the agent healthy again.
	resumed := notify.next(t, "WATCHDOG=1 after the camera reconnected", 15*time.Second, hasLine("WATCHDOG=1"))
	if !strings.HasPrefix(statusOf(resumed), "serving on ") {
		t.Errorf("STATUS not restored: %q", resumed)
	}
	d.signal(t, syscall.SIGTERM)
	if err := d.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.log(t))
	}
}

// testDaemonSocketActivation: with the socket passed as bwsagent.socket
// would (systemd-socket-activate sets LISTEN_FDS), a client connecting
// while the models load waits and is answered, on the passed socket.
func testDaemonSocketActivation(t *testing.T, bin string) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed")
	}
	dir := shortTempDir(t)
	notify := listenUnixgram(t, filepath.Join(dir, "notify.sock"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// The tool passes only the variables named with -E.
	cmd := exec.Command(tool, "-l", addr, "-E", "NOTIFY_SOCKET="+filepath.Join(dir, "notify.sock"), "-E", "PATH", "-E", "HOME",
		bin, "serve", "--data-dir", dir, "--models-dir", testenv.ModelsDir(), "--workers", "1", "--listen", "127.0.0.1:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	// The tool starts the agent on this first connection, which then
	// waits in the socket's backlog until the agent serves.
	var code int
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for start := time.Now(); ; {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
			break
		}
		// Until the tool has bound the socket.
		if time.Since(start) > 10*time.Second {
			t.Fatalf("GET /readyz: %v\n%s", err, stderr.String())
		}
		<-tick.C
	}
	ready := notify.next(t, "READY=1", 30*time.Second, hasLine("READY=1"))
	if code != 200 || statusOf(ready) != "serving on http://"+addr {
		t.Errorf("first request answered %d; READY %q (want serving on the passed socket, not --listen)", code, ready)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	exited <- nil
}

// testDaemonSystemd: READY=1 once the listener answers, STATUS lines,
// watchdog pings that stop while the HTTP server is wedged and resume when
// it recovers, SIGHUP reloads, structured journal entries, STOPPING=1 and
// a clean exit on SIGTERM.
func testDaemonSystemd(t *testing.T, bin, dir string) {
	sub := shortTempDir(t)
	notify := listenUnixgram(t, filepath.Join(sub, "notify.sock"))
	journal := listenUnixgram(t, filepath.Join(dir, "journal.sock"))
	cfgPath := filepath.Join(sub, "bwsagent.yaml")
	base := "listen: 127.0.0.1:0\nworkers: 1\nreadTimeout: 2s\n"
	writeConfig(t, cfgPath, base+"logLevel: warn\n")
	const watchdog = 200 * time.Millisecond // pings every 100 ms
	d := startDaemon(t, bin, true, []string{
		"NOTIFY_SOCKET=" + filepath.Join(sub, "notify.sock"),
		"WATCHDOG_USEC=" + strconv.FormatInt(watchdog.Microseconds(), 10),
	}, "--config", cfgPath, "--data-dir", sub, "--models-dir", testenv.ModelsDir())

	// STATUS lines while starting, then READY=1 — and the listener
	// answers the moment READY=1 arrives.
	notify.next(t, "STATUS while opening the store", 30*time.Second, func(m string) bool {
		return strings.HasPrefix(statusOf(m), "opening the store")
	})
	notify.next(t, "STATUS while loading the models", 30*time.Second, func(m string) bool {
		return strings.HasPrefix(statusOf(m), "loading the face models")
	})
	ready := notify.next(t, "READY=1", 30*time.Second, hasLine("READY=1"))
	url, ok := strings.CutPrefix(statusOf(ready), "serving on ")
	if !ok {
		t.Fatalf("READY without the URL in STATUS: %q", ready)
	}
	for _, path := range []string{"/readyz", "/healthz"} {
		if code, _ := httpGet(t, url+path, nil); code != 200 {
			t.Fatalf("GET %s right after READY=1: %d", path, code)
		}
	}
	for range 3 {
		notify.next(t, "WATCHDOG=1", 2*time.Second, hasLine("WATCHDOG=1"))
	}

	// A wedged HTTP server (here: no file descriptor left, so neither the
	// accept loop nor the self-probe gets one) stops the pings; they
	// resume once it recovers.
	pid := d.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Only the soft limit goes down: raising it back needs no privilege,
	// while raising a lowered hard limit needs CAP_SYS_RESOURCE, which
	// containers often lack — the daemon would then run the rest of the
	// test two descriptors from the limit.
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit on the daemon: %v", err)
	}
	lim := uint64(len(fds) + 2)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit on the daemon: %v", err)
	}
	var hogs []net.Conn
	for range 8 {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
		if err != nil {
			break // the backlog is full
		}
		hogs = append(hogs, c)
	}
	// The journal's socket is open already; the notify socket needs a new
	// descriptor per message, so systemd hears nothing at all now.
	e := journalEntry(t, journal.next(t, "journal entry 'unhealthy'", 5*time.Second, journalMessage(t, "unhealthy")))
	notify.drain()
	notify.none(t, "WATCHDOG=1 while unhealthy", 5*watchdog, hasLine("WATCHDOG=1"))
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
		t.Fatalf("restoring the daemon's descriptor limit: %v", err)
	}
	for _, c := range hogs {
		c.Close()
	}
	notify.next(t, "WATCHDOG=1 after recovery", 10*time.Second, hasLine("WATCHDOG=1"))

	// Journal: structured entries; at logLevel warn, no info entry.
	for k, want := range map[string]string{"PRIORITY": "3", "SYSLOG_IDENTIFIER": "bwsagent", "COMPONENT": "agent"} {
		if e[k] != want {
			t.Errorf("journal field %s = %q, want %q (entry %v)", k, e[k], want, e)
		}
	}
	if !strings.HasPrefix(e["ERR"], "http server: ") || !strings.Contains(e["MESSAGE"], " component=agent err=") {
		t.Errorf("journal entry lacks the attributes: %v", e)
	}
	for _, m := range journal.seen {
		if journalMessage(t, "serving")(m) {
			t.Errorf("info entry logged at logLevel warn: %q", m)
		}
	}

	// SIGHUP: the CORS origins and the log level change at once; an
	// invalid file is refused whole; a key that needs a restart is named.
	origin := map[string]string{"Origin": "https://ui.example"}
	if code, _ := httpGet(t, url+"/healthz", origin); code != http.StatusForbidden {
		t.Fatalf("foreign origin before reload: %d", code)
	}
	reload := func(yaml string) string {
		t.Helper()
		writeConfig(t, cfgPath, yaml)
		d.signal(t, syscall.SIGHUP)
		notify.next(t, "RELOADING=1", 5*time.Second, hasLine("RELOADING=1"))
		return statusOf(notify.next(t, "READY=1 after reload", 5*time.Second, hasLine("READY=1")))
	}
	reloaded := base + "logLevel: info\napi:\n  corsOrigins: [https://ui.example]\n"
	if st := reload(reloaded); st != "serving on "+url {
		t.Errorf("STATUS after a clean reload: %q", st)
	}
	code, hdr := httpGet(t, url+"/healthz", origin)
	if code != 200 || hdr.Get("Access-Control-Allow-Origin") != "https://ui.example" {
		t.Errorf("origin added by reload: %d %v", code, hdr)
	}
	e = journalEntry(t, journal.next(t, "journal entry 'configuration reloaded'", 5*time.Second, journalMessage(t, "configuration reloaded")))
	if e["PRIORITY"] != "6" || e["APPLIED"] != "[logLevel api.corsOrigins]" {
		t.Errorf("want an info entry naming the keys applied: %v", e)
	}

	if st := reload(base + "logLevel: loud\n"); !strings.Contains(st, "refused") || !strings.Contains(st, "'logLevel'") {
		t.Errorf("STATUS after an invalid file: %q", st)
	}
	if code, _ := httpGet(t, url+"/healthz", origin); code != 200 {
		t.Errorf("a refused reload changed the origins: %d", code)
	}
	if st := reload(reloaded + "idleTimeout: 1m\n"); !strings.HasSuffix(st, "changes need a restart: idleTimeout") {
		t.Errorf("STATUS does not name the key needing a restart: %q", st)
	}

	// SIGTERM: STOPPING=1, no ping after it, exit 0.
	d.signal(t, syscall.SIGTERM)
	notify.next(t, "STOPPING=1", 5*time.Second, hasLine("STOPPING=1"))
	notify.none(t, "WATCHDOG=1 after STOPPING=1", 3*watchdog, hasLine("WATCHDOG=1"))
	if err := d.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.log(t))
	}
	if out := d.log(t); out != "" {
		t.Errorf("stderr should stay empty when the journal takes the entries, got:\n%s", out)
	}
}

// httpGet GETs url with headers and returns the status and the headers.
func httpGet(t *testing.T, url string, hdr map[string]string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// testDaemonShutdown: SIGTERM while one upload is in flight and another
// stalls: the first is answered, the second cut at the deadline, the
// process exits 0 within shutdownTimeout, and the store opens cleanly.
func testDaemonShutdown(t *testing.T, bin string) {
	dir := shortTempDir(t)
	out, _, err := run(t, "apps", "add", "--data-dir", dir, "--id", "kiosk", "--storage", "bws", "--partition", "1")
	if err != nil {
		t.Fatal(err)
	}
	secret := secretOf(t, out)
	notify := listenUnixgram(t, filepath.Join(dir, "notify.sock"))
	const shutdownTimeout = 3 * time.Second
	d := startDaemon(t, bin, false, []string{
		"NOTIFY_SOCKET=" + filepath.Join(dir, "notify.sock"),
		"BWSAGENT_SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
	}, "--data-dir", dir, "--models-dir", testenv.ModelsDir(), "--listen", "127.0.0.1:0", "--workers", "1")
	ready := notify.next(t, "READY=1", 30*time.Second, hasLine("READY=1"))
	url := strings.TrimPrefix(statusOf(ready), "serving on ")

	img, err := os.ReadFile(testenv.GocvImage(t, "face.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	body := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(img)
	finishing, finished := startUpload(t, url, token(t, url, secret), body)
	_, cut := startUpload(t, url, token(t, url, secret), body)

	sigterm := time.Now()
	d.signal(t, syscall.SIGTERM)
	notify.next(t, "STOPPING=1", 5*time.Second, hasLine("STOPPING=1"))
	// Stop accepting: new connections are refused while the two
	// requests in flight go on.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(5 * time.Second); ; <-tick.C {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting 5 s after STOPPING=1")
		}
	}
	if _, err := io.WriteString(finishing, body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	if r := <-finished; !strings.HasPrefix(r, "HTTP/1.1 200") || !strings.Contains(r, `"Accepted":true`) {
		t.Fatalf("in-flight upload: %q", r)
	}
	if err := d.wait(t, shutdownTimeout+10*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.log(t))
	}
	took := time.Since(sigterm)
	if r := <-cut; r != "" {
		t.Errorf("stalled upload answered %q", r)
	}
	if took < shutdownTimeout || took > shutdownTimeout+2*time.Second {
		t.Errorf("SIGTERM to exit took %v, want the shutdown timeout %v (the stalled upload's grace) and little more", took, shutdownTimeout)
	}
	t.Logf("SIGTERM to exit: %v with shutdownTimeout %v and a stalled upload", took.Round(time.Millisecond), shutdownTimeout)

	db, err := bbolt.Open(filepath.Join(dir, "bwsagent.db"), 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("store after shutdown: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("store check: %v", err)
	}
}

// token gets an enroll token for bws.1.7 without liveness.
func token(t *testing.T, url, secret string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/extension/token?id=kiosk&bcid=bws.1.7&task=enroll&livedetection=false", nil)
	req.SetBasicAuth("kiosk", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// startUpload sends an upload's headers with Expect: 100-continue and half
// its body, and returns once the server's "100 Continue" proves the
// handler is reading it: the request is in flight, not in the backlog. The
// caller writes the rest to the connection; the answer's first bytes (or
// "" when the connection is cut) come on the channel.
func startUpload(t *testing.T, url, tok, body string) (net.Conn, <-chan string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	host := strings.TrimPrefix(url, "http://")
	fmt.Fprintf(c, "POST /extension/upload?tag=any&index=0 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: text/plain\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", host, tok, len(body))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	answer := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, io.LimitReader(br, 4096))
		answer <- b.String()
	}()
	return c, answer
}
