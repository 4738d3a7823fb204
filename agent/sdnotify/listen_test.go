package sdnotify

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
)

// helperListen serves one connection on the listener Activated returns
// from LISTEN_FDS. systemd sets LISTEN_PID between fork and exec; os/exec
// cannot, so the helper sets its own.
func helperListen() int {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	l, err := Activated()
	if err != nil || l == nil {
		fmt.Fprintln(os.Stderr, "no activated listener:", err)
		return 1
	}
	c, err := l.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	fmt.Fprint(c, "activated")
	return 0
}

func TestNotActivated(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	t.Setenv("LISTEN_PID", "")
	if l, err := Activated(); l != nil || err != nil {
		t.Fatalf("Activated without LISTEN_FDS: %v, %v", l, err)
	}
}

func TestListenActivation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := helperCommand(t)
	cmd.Env = append(os.Environ(), helperEnv+"=listen", "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f} // fd 3, SD_LISTEN_FDS_START
	out, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Our own copy of the socket could accept too; close it so only the
	// helper does.
	l.Close()
	f.Close()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("helper: %v: %s", err, b)
	}
	if string(got) != "activated" {
		t.Fatalf("got %q", got)
	}
}
