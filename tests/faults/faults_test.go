// Package faults runs a real bwsagent process through the faults a kiosk
// meets: a full disk and a corrupt model cache. (A camera that disappears
// and returns is covered by the capture package's reconnect tests.)
package faults

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/face/models"
	"github.com/bwsagent/bwsagent/internal/testenv"
	"github.com/bwsagent/bwsagent/tests/agentproc"
)

func binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("BWSAGENT_BIN"); b != "" {
		return b
	}
	b, err := agentproc.Build(t.Context(), testenv.ModuleRoot(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func samples(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, name := range []string{"face.jpg", "face-detect.jpg"} {
		u, _, err := agentproc.DataURL(testenv.GocvImage(t, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// TestDiskFull puts the data directory on a small tmpfs, fills it, and
// expects enrollments to fail with 500 and a {"Message":…} while the agent
// keeps serving what it has; once space returns enrollments succeed again
// and the store passes its check with every acknowledged class in it.
func TestDiskFull(t *testing.T) {
	testenv.RequireModels(t)
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=24m,mode=0700"); err != nil {
		t.Skipf("needs root to mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	ctx := t.Context()
	bin, data := binary(t), filepath.Join(mnt, "data")
	secret, err := agentproc.AddApp(ctx, data, "full", "full", []int{1})
	if err != nil {
		t.Fatal(err)
	}
	var log agentproc.Buffer
	p, err := agentproc.Start(ctx, agentproc.Config{Bin: bin, DataDir: data, ModelsDir: testenv.ModelsDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	c := &agentproc.Client{Base: p.APIURL, App: "full", Secret: secret, HTTP: &http.Client{Timeout: time.Minute}}
	ss := samples(t)
	acked := []string{}
	enroll := func(id string) error {
		err := c.Flow(ctx, "enroll", "full.1."+id, ss)
		if err == nil {
			acked = append(acked, "full.1."+id)
		}
		return err
	}
	if err := enroll("1"); err != nil {
		t.Fatal(err)
	}

	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	failures := 0
	for i := 2; i <= 40 && failures < 5; i++ {
		err := enroll(strconv.Itoa(i))
		if err == nil {
			continue
		}
		failures++
		var se *agentproc.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusInternalServerError {
			t.Fatalf("enroll on a full disk: %v, want HTTP 500", err)
		}
		var body struct{ Message string }
		if json.Unmarshal([]byte(se.Body), &body) != nil || body.Message == "" {
			t.Fatalf("enroll on a full disk answered %q, want {\"Message\":…}", se.Body)
		}
	}
	if failures == 0 {
		t.Fatal("no enrollment failed on a full disk: the test did not fill it")
	}
	select {
	case <-p.Done():
		t.Fatalf("agent died on a full disk:\n%s", log.String())
	default:
	}
	for _, b := range acked {
		if ok, err := c.IsEnrolled(ctx, b); !ok || err != nil {
			t.Fatalf("%s not served on a full disk: %v", b, err)
		}
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"100", "101"} {
		if err := enroll(id); err != nil {
			t.Fatalf("enroll after space returned: %v", err)
		}
	}
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v\n%s", err, log.String())
	}
	if out, err := exec.CommandContext(ctx, bin, "store", "check", "--data-dir", data).CombinedOutput(); err != nil {
		t.Fatalf("store check after the full disk: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "classes", "list", "--json", "--data-dir", data).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range acked {
		if !strings.Contains(string(out), `"`+strings.ReplaceAll(b, ".", "/")+`"`) {
			t.Errorf("acknowledged %s missing after the full disk:\n%s", b, out)
		}
	}
	t.Logf("disk full: %d enrollments refused with 500 and a message, %d acknowledged and intact", failures, len(acked))
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// TestCorruptModelCache corrupts one model file in a copy of the cache: the
// agent refuses to start with an error naming the file and the repair
// command, 'models fetch' (or, offline, 'models install' of a bundle)
// repairs it, and the agent starts.
func TestCorruptModelCache(t *testing.T) {
	testenv.RequireModels(t)
	ctx := t.Context()
	bin := binary(t)
	cache := t.TempDir()
	man, err := models.Default()
	if err != nil {
		t.Fatal(err)
	}
	src := models.Cache{Dir: testenv.ModelsDir()}
	dst := models.Cache{Dir: cache}
	var victim string
	for _, p := range man.Kind(models.KindModel) {
		for _, f := range p.Files {
			b, err := os.ReadFile(src.Path(p, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			to := dst.Path(p, f.Path)
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f.Path, "fr_landmark.onnx") {
				victim = to
				b[len(b)/2] ^= 0xff
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if victim == "" {
		t.Fatal("no fr_landmark.onnx in the manifest")
	}
	data := t.TempDir()
	serve := exec.CommandContext(ctx, bin, "serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--models-dir", cache)
	out, err := serve.CombinedOutput()
	if err == nil || !strings.Contains(string(out), victim) || !strings.Contains(string(out), "models fetch") {
		t.Fatalf("serve with a corrupt model: %v\n%s\nwant an error naming %s and the repair", err, out, victim)
	}

	fetch := exec.CommandContext(ctx, bin, "models", "fetch", "--models-dir", cache)
	if out, err := fetch.CombinedOutput(); err != nil {
		// No registry here: repair from a bundle of the intact cache.
		t.Logf("models fetch failed (offline?), repairing with a bundle: %v\n%s", err, out)
		bundle := filepath.Join(t.TempDir(), "models.tar.gz")
		run(ctx, t, bin, "models", "bundle", "--models-dir", testenv.ModelsDir(), bundle)
		run(ctx, t, bin, "models", "install", "--models-dir", cache, bundle)
	}
	p, err := agentproc.Start(ctx, agentproc.Config{Bin: bin, DataDir: data, ModelsDir: cache, ReadyTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatalf("agent after the repair: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
}

func run(ctx context.Context, t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
