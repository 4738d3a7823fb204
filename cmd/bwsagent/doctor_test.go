package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/config"
)

// testDoctor is a doctor over temp dirs with a fixed clock and NTP synced.
func testDoctor(t *testing.T) *doctor {
	t.Helper()
	dir := t.TempDir()
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.DataDir = filepath.Join(dir, "state")
	c.ModelsDir = filepath.Join(dir, "models")
	c.TemplateKeyFile = filepath.Join(c.DataDir, config.TemplateKeyName)
	return &doctor{
		cfg:     c,
		keyFile: c.TemplateKeyFile,
		devGlob: filepath.Join(dir, "dev", "video*"),
		now:     func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		ntp:     func(context.Context) (bool, bool) { return true, true },
		client:  &http.Client{Timeout: 2 * time.Second},
	}
}

func writeKey(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(path, []byte(key), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func checkFinding(t *testing.T, got finding, want level, contains string) {
	t.Helper()
	if got.level != want || !strings.Contains(got.msg+" "+got.fix, contains) {
		t.Errorf("got %v %q (fix %q), want %v containing %q", got.level, got.msg, got.fix, want, contains)
	}
	if got.level != levelOK && got.fix == "" && want == levelFail {
		t.Errorf("FAIL without a fix: %q", got.msg)
	}
}

func TestDoctorKeys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, d *doctor)
		want     level
		contains string
	}{
		{"absent, generated later", func(t *testing.T, d *doctor) {}, levelWarn, "generates it"},
		{"absent but needed", func(t *testing.T, d *doctor) { d.keyNeeded = true }, levelFail, "od -An -tx1"},
		{"0600", func(t *testing.T, d *doctor) { writeKey(t, d.keyFile, 0o600) }, levelOK, "mode 0600"},
		{"0400", func(t *testing.T, d *doctor) { writeKey(t, d.keyFile, 0o400) }, levelOK, "mode 0400"},
		{"0644", func(t *testing.T, d *doctor) { writeKey(t, d.keyFile, 0o644) }, levelFail, "chmod 600"},
		{"0640", func(t *testing.T, d *doctor) { writeKey(t, d.keyFile, 0o640) }, levelFail, "others can read it"},
		{"garbage", func(t *testing.T, d *doctor) {
			writeKey(t, d.keyFile, 0o600)
			os.WriteFile(d.keyFile, []byte("not a key\n"), 0o600)
		}, levelFail, "restore the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDoctor(t)
			tc.setup(t, d)
			checkFinding(t, d.checkKey(), tc.want, tc.contains)
		})
	}
}

func TestDoctorStore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, d *doctor)
		want     level
		contains string
	}{
		{"absent, parent writable", func(t *testing.T, d *doctor) {}, levelWarn, "creates it on first start"},
		{"absent, system", func(t *testing.T, d *doctor) { d.system = true }, levelWarn, "StateDirectory="},
		{"empty dir", func(t *testing.T, d *doctor) { os.MkdirAll(d.cfg.DataDir, 0o700) }, levelOK, "no store yet"},
		{"with store", func(t *testing.T, d *doctor) {
			os.MkdirAll(d.cfg.DataDir, 0o700)
			os.WriteFile(d.cfg.StorePath(), make([]byte, 3<<20), 0o600)
		}, levelOK, "3.0 MiB"},
		{"agent running", func(t *testing.T, d *doctor) {
			os.MkdirAll(d.cfg.DataDir, 0o700)
			os.WriteFile(d.cfg.StorePath(), []byte("x"), 0o600)
			d.agentUp = true
		}, levelOK, "in use by the running agent"},
		{"a file", func(t *testing.T, d *doctor) {
			os.WriteFile(d.cfg.DataDir, nil, 0o600)
		}, levelFail, "not a directory"},
		{"read-only", func(t *testing.T, d *doctor) {
			if os.Geteuid() == 0 {
				t.Skip("root writes anywhere")
			}
			os.MkdirAll(d.cfg.DataDir, 0o500)
		}, levelFail, "not writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDoctor(t)
			tc.setup(t, d)
			checkFinding(t, d.checkStore(), tc.want, tc.contains)
		})
	}
}

func TestDoctorCamera(t *testing.T) {
	mkdev := func(t *testing.T, d *doctor, name string) string {
		// A regular file stands in for a device node in the glob tests.
		p := filepath.Join(filepath.Dir(d.devGlob), name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o660); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, d *doctor)
		want     level
		contains string
	}{
		{"no camera, no source", func(t *testing.T, d *doctor) {}, levelWarn, "no camera"},
		{"devices present", func(t *testing.T, d *doctor) { mkdev(t, d, "video0"); mkdev(t, d, "video1") }, levelOK, "video0"},
		{"bad source", func(t *testing.T, d *doctor) { d.cfg.Source = "webcam" }, levelFail, "accepted forms"},
		{"rtsp source", func(t *testing.T, d *doctor) { d.cfg.Source = "rtsp://admin:secret@10.0.0.5/stream" }, levelOK, "rtsp://…@10.0.0.5/stream"},
		{"missing device", func(t *testing.T, d *doctor) { d.cfg.Source = "v4l2:/dev/video-absent-42" }, levelFail, "no such file"},
		{"not a device", func(t *testing.T, d *doctor) { d.cfg.Source = "v4l2:" + mkdev(t, d, "video7") }, levelFail, "not a device node"},
		{"char device", func(t *testing.T, d *doctor) { d.cfg.Source = "v4l2:/dev/null" }, levelOK, "/dev/null present and accessible"},
		{"camera index", func(t *testing.T, d *doctor) { d.cfg.Source = "camera:63" }, levelFail, "/dev/video63"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDoctor(t)
			tc.setup(t, d)
			f := d.checkCamera()
			checkFinding(t, f, tc.want, tc.contains)
			if strings.Contains(f.msg, "secret") {
				t.Errorf("password in the report: %q", f.msg)
			}
		})
	}
}

func TestDoctorModels(t *testing.T) {
	d := testDoctor(t)
	checkFinding(t, d.checkModels(), levelFail, "models install")
	// A cache with every model in place, linked from the machine's cache
	// when it has one (the files are large).
	src, err := modelsDir("")
	if err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat(src); err != nil {
		if os.Getenv("BWSAGENT_REQUIRE_MODELS") == "1" {
			t.Fatalf("models not fetched: %v", err)
		}
		t.Skip("models not fetched")
	}
	d.cfg.ModelsDir = src
	checkFinding(t, d.checkModels(), levelOK, "files verified")
}

func TestDoctorModelsCorrupt(t *testing.T) {
	d := testDoctor(t)
	// One package's file with wrong content: Verify reports corruption.
	p := filepath.Join(d.cfg.ModelsDir, "faceplugin-face-recognition-js@0.0.1", "model", "fr_detect.onnx")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("x"), 0o644)
	checkFinding(t, d.checkModels(), levelFail, "model file corrupt")
}

func TestDoctorClock(t *testing.T) {
	for _, tc := range []struct {
		name          string
		now           time.Time
		synced, known bool
		want          level
		contains      string
	}{
		{"synced", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true, true, levelOK, "NTP-synchronised"},
		{"unsynced", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false, true, levelWarn, "set-ntp true"},
		{"unknown", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false, false, levelOK, "unknown"},
		{"1970", time.Unix(0, 0), true, true, levelFail, "never set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDoctor(t)
			d.now = func() time.Time { return tc.now }
			d.ntp = func(context.Context) (bool, bool) { return tc.synced, tc.known }
			checkFinding(t, d.checkClock(context.Background()), tc.want, tc.contains)
		})
	}
}

func TestDoctorListener(t *testing.T) {
	ctx := context.Background()
	t.Run("free", func(t *testing.T) {
		d := testDoctor(t)
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		d.cfg.Listen = l.Addr().String()
		l.Close()
		checkFinding(t, d.checkListener(ctx), levelOK, "is free")
	})
	t.Run("agent answers", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, "ok\n")
		}))
		defer srv.Close()
		d := testDoctor(t)
		d.cfg.Listen = srv.Listener.Addr().String()
		checkFinding(t, d.checkListener(ctx), levelOK, "the agent answers")
		if !d.agentUp {
			t.Error("agentUp not set")
		}
	})
	t.Run("unhealthy", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "capture loop stalled", http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		d := testDoctor(t)
		d.cfg.Listen = srv.Listener.Addr().String()
		checkFinding(t, d.checkListener(ctx), levelWarn, "capture loop stalled")
	})
	t.Run("taken by another program", func(t *testing.T) {
		// Accepts and closes at once: not HTTP.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		d := testDoctor(t)
		d.cfg.Listen = l.Addr().String()
		checkFinding(t, d.checkListener(ctx), levelFail, "in use by a program")
	})
	t.Run("foreign address", func(t *testing.T) {
		d := testDoctor(t)
		d.cfg.Listen = "192.0.2.1:8480" // TEST-NET-1, on no interface
		d.client.Timeout = 200 * time.Millisecond
		checkFinding(t, d.checkListener(ctx), levelFail, "not an address of this machine")
	})
}

func TestDoctorReportAndExit(t *testing.T) {
	d := testDoctor(t)
	var out bytes.Buffer
	n := d.report(&out, []finding{
		{check: "models", level: levelOK, msg: "fine"},
		{check: "keys", level: levelFail, msg: "bad mode", fix: "chmod 600 k"},
		{check: "clock", level: levelWarn, msg: "unsynced", fix: "ntp"},
	})
	if n != 1 {
		t.Errorf("failed = %d, want 1", n)
	}
	want := "OK    models  fine\nFAIL  keys    bad mode — fix: chmod 600 k\nWARN  clock   unsynced — fix: ntp\n"
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestDoctorCommand runs the whole command on a temp layout: one FAIL
// (models missing) makes it return an error (exit code 1).
func TestDoctorCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bwsagent.yaml")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	body := "listen: " + addr + "\ndataDir: " + filepath.Join(dir, "state") + "\nmodelsDir: " + filepath.Join(dir, "models") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	err := m.doctor(context.Background(), []string{"--config", cfg})
	if err == nil || !strings.Contains(err.Error(), "1 check(s) failed") {
		t.Fatalf("got %v, want 1 failed check\n%s", err, stdout.String())
	}
	for _, want := range []string{"OK    listener", "FAIL  models", "WARN  store", "WARN  keys"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}
