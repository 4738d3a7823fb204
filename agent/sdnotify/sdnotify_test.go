package sdnotify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// helperEnv switches the test binary into a tiny daemon (see TestMain).
const helperEnv = "BWSAGENT_SDNOTIFY_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "1":
		os.Exit(helperMain())
	case "listen":
		os.Exit(helperListen())
	}
	os.Exit(m.Run())
}

// helperMain is a minimal daemon with the agent's notify sequence: READY,
// the watchdog loop guarded by a health check, STOPPING on SIGTERM. Its
// "capture loop" stalls when a line "stall" arrives on stdin and recovers
// on "resume".
func helperMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	n, err := New(Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var stalled atomic.Bool
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			stalled.Store(sc.Text() == "stall")
		}
	}()
	if err := n.Ready("serving on 127.0.0.1:8480"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = n.Watchdog(ctx, func() error {
		if stalled.Load() {
			return errors.New("capture loop stalled")
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := n.Stopping("shutting down"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperCommand runs this test binary again as a helper process. Under
// qemu-user (scripts/arm64.sh) the binary is not native, so the command in
// $BWSAGENT_TEST_EXEC (e.g. "qemu-aarch64-static -L SYSROOT") runs it.
func helperCommand(t *testing.T) *exec.Cmd {
	t.Helper()
	args := append(strings.Fields(os.Getenv("BWSAGENT_TEST_EXEC")), os.Args[0], "-test.run=^$")
	return exec.Command(args[0], args[1:]...)
}

// notifySocket listens like systemd's notify socket in a temp dir and
// points NOTIFY_SOCKET at it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// next reads one datagram, failing the test after timeout.
func next(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	msg, err := read(conn, timeout)
	if err != nil {
		t.Fatalf("waiting for a notify message: %v", err)
	}
	return msg
}

func read(conn *net.UnixConn, timeout time.Duration) (string, error) {
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	k, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}

// manualTicker is ticked by the test.
type manualTicker struct {
	c       chan time.Time
	stopped atomic.Bool
}

func (m *manualTicker) C() <-chan time.Time { return m.c }
func (m *manualTicker) Stop()               { m.stopped.Store(true) }

func TestMessagesAndWatchdog(t *testing.T) {
	conn := notifySocket(t)
	tick := &manualTicker{c: make(chan time.Time)} // unbuffered: a send means the loop took it
	var gotInterval time.Duration
	n, err := New(Options{
		WatchdogInterval: 15 * time.Second,
		NewTicker: func(d time.Duration) Ticker {
			gotInterval = d
			return tick
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	const wait = 5 * time.Second
	if err := n.Ready("serving on 127.0.0.1:8480\nsecond line"); err != nil {
		t.Fatal(err)
	}
	if got, want := next(t, conn, wait), "READY=1\nSTATUS=serving on 127.0.0.1:8480 second line"; got != want {
		t.Fatalf("ready: got %q, want %q", got, want)
	}

	// The loop blocks in health until the test answers, so each tick's
	// outcome is decided here, not by scheduling.
	health := make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Watchdog(ctx, func() error { return <-health }) }()
	// Every message the loop sends is read in order; a stray WATCHDOG=1
	// while unhealthy would show up in place of the expected next one.
	want := func(msg string) {
		t.Helper()
		if got := next(t, conn, wait); got != msg {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
	stalled := errors.New("capture loop stalled for 12s")
	health <- nil // checked at once, then every tick
	want("WATCHDOG=1")
	tick.c <- time.Time{}
	health <- nil
	want("WATCHDOG=1")
	if gotInterval != 15*time.Second {
		t.Errorf("ticker interval %v, want 15s", gotInterval)
	}

	tick.c <- time.Time{}
	health <- stalled
	want("STATUS=unhealthy, watchdog pings withheld: capture loop stalled for 12s")
	tick.c <- time.Time{} // still stalled: nothing at all is sent
	health <- stalled
	tick.c <- time.Time{}
	health <- stalled
	tick.c <- time.Time{}
	health <- nil
	want("WATCHDOG=1\nSTATUS=serving on 127.0.0.1:8480 second line") // recovered: status restored
	tick.c <- time.Time{}
	health <- nil
	want("WATCHDOG=1")

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !tick.stopped.Load() {
		t.Error("ticker not stopped")
	}
	if err := n.Notify("STATUS=draining\nEXTEND_TIMEOUT_USEC=5000000"); err != nil {
		t.Fatal(err)
	}
	want("STATUS=draining\nEXTEND_TIMEOUT_USEC=5000000")
	if err := n.Status("draining"); err != nil {
		t.Fatal(err)
	}
	want("STATUS=draining")
	if err := n.Stopping("shutting down"); err != nil {
		t.Fatal(err)
	}
	want("STOPPING=1\nSTATUS=shutting down")
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		opt       time.Duration
		want      time.Duration
		wantErr   bool
	}{
		{usec: "", want: 0},
		{usec: "30000000", want: 15 * time.Second},
		{usec: "30000000", pid: fmt.Sprint(os.Getpid()), want: 15 * time.Second},
		{usec: "30000000", pid: "1", want: 0}, // armed for another process
		{usec: "30000000", opt: -1, want: 0},
		{usec: "", opt: time.Second, want: time.Second},
		{usec: "soon", wantErr: true},
	} {
		t.Run(tc.usec+"/"+tc.pid+"/"+tc.opt.String(), func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			n, err := New(Options{WatchdogInterval: tc.opt})
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := n.WatchdogInterval(); got != tc.want {
				t.Errorf("interval %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
	// No watchdog armed: returns at once even with a live context.
	if err := n.Watchdog(context.Background(), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestSendErrorIsWrapped(t *testing.T) {
	boom := errors.New("boom")
	n, err := New(Options{Send: func(string) (bool, error) { return false, boom }, WatchdogInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready("x"); !errors.Is(err, boom) || !strings.Contains(err.Error(), "READY") {
		t.Fatalf("got %v", err)
	}
}

// TestProcess runs a real process (this test binary as a tiny daemon) with
// NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets them, and checks the
// messages it sends, that a stalled capture loop stops its watchdog pings
// and that they resume on recovery.
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	conn := notifySocket(t)
	const watchdogUsec = 40_000 // pings every 20 ms
	cmd := helperCommand(t)
	cmd.Env = append(os.Environ(), helperEnv+"=1", fmt.Sprintf("WATCHDOG_USEC=%d", watchdogUsec))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	const wait = 10 * time.Second
	if got, want := next(t, conn, wait), "READY=1\nSTATUS=serving on 127.0.0.1:8480"; got != want {
		t.Fatalf("first message %q, want %q", got, want)
	}
	for range 3 {
		if got := next(t, conn, wait); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}

	if _, err := fmt.Fprintln(stdin, "stall"); err != nil {
		t.Fatal(err)
	}
	// Pings already in flight may arrive before the stall is seen.
	for {
		got := next(t, conn, wait)
		if got == "WATCHDOG=1" {
			continue
		}
		if want := "STATUS=unhealthy, watchdog pings withheld: capture loop stalled"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		break
	}
	// 10 ping periods of silence: systemd's WatchdogSec (twice the period)
	// would have expired five times over.
	if msg, err := read(conn, 10*watchdogUsec/2*time.Microsecond); err == nil {
		t.Fatalf("stalled daemon sent %q", msg)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatal(err)
	}

	if _, err := fmt.Fprintln(stdin, "resume"); err != nil {
		t.Fatal(err)
	}
	if got, want := next(t, conn, wait), "WATCHDOG=1\nSTATUS=serving on 127.0.0.1:8480"; got != want {
		t.Fatalf("after recovery got %q, want %q", got, want)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		got := next(t, conn, wait)
		if got == "WATCHDOG=1" {
			continue
		}
		if want := "STOPPING=1\nSTATUS=shutting down"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		break
	}
	if err := <-exited; err != nil {
		t.Fatalf("daemon exited with %v: %s", err, stderr.String())
	}
	exited <- nil // for the cleanup
}

// A failed send does not stop the watchdog: the unhealthy STATUS is sent
// again on the next tick, and pings resume once sends work.
func TestWatchdogSurvivesSendErrors(t *testing.T) {
	stalled := errors.New("stalled")
	emfile := errors.New("socket: too many open files")
	steps := []struct {
		health  error
		sendErr error
		want    string // the message attempted on this tick, "" none
	}{
		{nil, nil, "WATCHDOG=1"},
		{stalled, emfile, "STATUS=unhealthy, watchdog pings withheld: stalled"},
		{stalled, nil, "STATUS=unhealthy, watchdog pings withheld: stalled"}, // retried
		{stalled, nil, ""}, // said already: silence
		{nil, emfile, "WATCHDOG=1\nSTATUS=serving"},
		{nil, nil, "WATCHDOG=1\nSTATUS=serving"}, // the restore is retried too
		{nil, emfile, "WATCHDOG=1"},
	}
	tick := &manualTicker{c: make(chan time.Time, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := -1 // the step running
	var sent []string
	n, err := New(Options{
		Send: func(s string) (bool, error) {
			sent = append(sent, s)
			if k < 0 {
				return true, nil // the Status below
			}
			return true, steps[k].sendErr
		},
		WatchdogInterval: time.Second,
		NewTicker:        func(time.Duration) Ticker { return tick },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Status("serving"); err != nil {
		t.Fatal(err)
	}
	sent = nil
	err = n.Watchdog(ctx, func() error {
		k++
		if k == len(steps)-1 {
			cancel() // the last tick
		} else {
			tick.c <- time.Time{}
		}
		return steps[k].health
	})
	if !errors.Is(err, emfile) {
		t.Errorf("Watchdog returned %v, want the last send error", err)
	}
	var want []string
	for _, s := range steps {
		if s.want != "" {
			want = append(want, s.want)
		}
	}
	if strings.Join(sent, "|") != strings.Join(want, "|") {
		t.Errorf("sent\n%q\nwant\n%q", sent, want)
	}
}
