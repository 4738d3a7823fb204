// Package e2e drives the real daemon: it builds bwsagent once, starts
// `bwsagent serve` with a temporary data directory for each test, and runs
// the kiosk page in headless Chromium (kiosk.mjs) against it — preview,
// capture sessions through the real BWS API and liveness checker, and the
// page's browser-camera mode — and measures the preview bars.
//
// Needs: /usr/bin/chromium, node, playwright-core in e2e/node_modules
// (scripts/setup.sh installs all three; no browser is downloaded), ffmpeg
// and the face models. Missing pieces skip, or fail under
// BWSAGENT_REQUIRE_MODELS=1 for the models.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bwsagent/bwsagent/agent/demo"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/synth"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

var (
	binDir   string // TestMain's temporary directory for the binary
	build    sync.Once
	agentBin string
	buildErr error
)

func TestMain(m *testing.M) {
	if os.Getenv("OPENCV_LOG_LEVEL") == "" {
		os.Setenv("OPENCV_LOG_LEVEL", "ERROR")
	}
	var err error
	if binDir, err = os.MkdirTemp("", "bwsagent-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// bin builds ./cmd/bwsagent once per test binary.
func bin(t testing.TB) string {
	t.Helper()
	build.Do(func() {
		agentBin = filepath.Join(binDir, "bwsagent")
		cmd := exec.Command("go", "build", "-o", agentBin, "../cmd/bwsagent")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return agentBin
}

func needModels(t testing.TB) {
	t.Helper()
	if _, err := face.ModelFiles(testenv.ModelsDir()); err != nil {
		testenv.MissingModels(t, err)
	}
}

func requireBrowser(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are long")
	}
	for _, b := range []string{"node", "ffmpeg"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not in PATH (scripts/setup.sh installs it)", b)
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Skip("no /usr/bin/chromium (scripts/setup.sh installs it)")
	}
	if _, err := os.Stat("node_modules/playwright-core"); err != nil {
		t.Skip("no e2e/node_modules/playwright-core (scripts/setup.sh runs npm ci)")
	}
}

// The demo app and class of every test agent.
const (
	demoApp  = "demo"
	demoBCID = "demo.1.7"
)

// agentProc is a running `bwsagent serve`.
type agentProc struct {
	URL    string
	Secret string // the demo app's secret
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer
}

func (a *agentProc) logs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

var servingURL = regexp.MustCompile(`msg=serving .*url=(http://\S+)`)

// startAgent adds the demo app to a fresh data directory and starts the
// agent on a free port with source (empty: no camera) and env (KEY=VALUE
// settings). It stops the agent with SIGTERM at cleanup and fails the test
// unless the agent then exits cleanly.
func startAgent(t testing.TB, source string, env ...string) *agentProc {
	t.Helper()
	needModels(t)
	b := bin(t)
	data := t.TempDir()
	out, err := exec.Command(b, "apps", "add", "--data-dir", data, "--id", demoApp,
		"--storage", "demo", "--partition", "1").Output()
	if err != nil {
		t.Fatalf("apps add: %v %s", err, out)
	}
	a := &agentProc{}
	for _, l := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(l, "secret: "); ok {
			a.Secret = s
		}
	}
	args := []string{"serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--models-dir", testenv.ModelsDir(), "--workers", "2"}
	if source != "" {
		args = append(args, "--source", source)
	}
	a.cmd = exec.Command(b, args...)
	a.cmd.Env = append(os.Environ(), "BWSAGENT_KIOSK_DEMO_APP="+demoApp, "BWSAGENT_KIOSK_DEMO_BCID="+demoBCID)
	a.cmd.Env = append(a.cmd.Env, env...)
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			a.mu.Lock()
			a.log.WriteString(sc.Text() + "\n")
			a.mu.Unlock()
			if m := servingURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-logDone
		exited <- a.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("agent exited with %v after SIGTERM; log:\n%s", err, a.logs())
			}
		case <-time.After(20 * time.Second):
			_ = a.cmd.Process.Kill()
			t.Errorf("agent did not stop within 20 s of SIGTERM; log:\n%s", a.logs())
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs())
		}
	})
	select {
	case a.URL = <-urlc:
	case err := <-exited:
		exited <- err
		t.Fatalf("agent exited at start: %v\n%s", err, a.logs())
	case <-time.After(90 * time.Second):
		t.Fatalf("agent not serving after 90 s:\n%s", a.logs())
	}
	return a
}

// isEnrolled asks the real API whether the demo class is enrolled.
func (a *agentProc) isEnrolled(t *testing.T) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/extension/isenrolled?bcid="+demoBCID, nil)
	req.SetBasicAuth(demoApp, a.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

var updateScreenshots = flag.Bool("screenshots", false, "write the page screenshots to docs/screenshots")

// runScript runs kiosk.mjs and returns its JSON line.
func runScript(t *testing.T, base, scenario string, extra ...string) map[string]any {
	t.Helper()
	// Screenshots go to a temporary folder; -screenshots rewrites the ones in
	// docs/ (a normal test run must not change tracked files).
	out := t.TempDir()
	if *updateScreenshots {
		out, _ = filepath.Abs("../docs/screenshots")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := append([]string{"kiosk.mjs", "--base", base, "--scenario", scenario, "--out", out}, extra...)
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	var res map[string]any
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &res); jerr != nil {
		t.Fatalf("kiosk.mjs %s: %v; output %q", scenario, err, b)
	}
	t.Logf("kiosk.mjs %s: %s", scenario, lines[len(lines)-1])
	if err != nil || res["ok"] != true {
		t.Fatalf("kiosk.mjs %s failed: %v %v", scenario, err, res["error"])
	}
	return res
}

// TestKioskVideo: the page shows the demo camera moving, with the face
// overlay, in English and German.
func TestKioskVideo(t *testing.T) {
	requireBrowser(t)
	a := startAgent(t, "demo")
	runScript(t, a.URL, "video")
}

// TestKioskSessions runs enrollment sessions on the agent's camera through
// the real API and liveness checker: the synthetic head (the demo source)
// must enroll; a still photo and a flat print turned like a head must not.
func TestKioskSessions(t *testing.T) {
	requireBrowser(t)
	photo := photoFrames(t)
	attacker := newPrintAttacker(t)
	cam := httptest.NewServer(attacker)
	defer cam.Close()
	// The demo head and the print visit every direction within 6.2 s; a
	// still photo never moves, so its sessions may give up sooner.
	for _, tc := range []struct {
		scenario, source, expect string
		noMovement               time.Duration
	}{
		{"bonafide", "demo", "succeeded", 15 * time.Second},
		{"photo", "file:" + photo, "failed", 5 * time.Second},
		{"print", cam.URL + "/print.mjpg", "failed", 15 * time.Second},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			a := startAgent(t, tc.source, "BWSAGENT_KIOSK_NO_MOVEMENT_TIMEOUT="+tc.noMovement.String())
			if tc.scenario == "print" {
				attacker.watch(t, a.URL)
			}
			res := runScript(t, a.URL, tc.scenario, "--expect", tc.expect)
			r, _ := res["result"].(map[string]any)
			enrolled := a.isEnrolled(t)
			t.Logf("%s: %.0f s, result %v, enrolled %v", tc.scenario, res["seconds"], r, enrolled)
			if want := tc.expect == "succeeded"; enrolled != want {
				t.Errorf("isenrolled %v after the session, want %v", enrolled, want)
			}
			if tc.scenario == "print" && r["error"] == "NoMovement" {
				// A print turned 45° moves the tracker's pose estimate by
				// only ~6° (20°: ~2°), so the 6° pose trigger itself stops
				// most print attacks before the liveness checker sees them.
				t.Logf("print: the session's pose trigger never fired; the liveness checker was not reached")
			}
		})
	}
}

// TestKioskBrowserCamera: the agent has no camera; Chromium's fake camera
// plays a rendered head turning and shifting, and the page itself runs
// /token → /upload → /enroll against the real API.
func TestKioskBrowserCamera(t *testing.T) {
	requireBrowser(t)
	y4m := renderY4M(t)
	a := startAgent(t, "", "BWSAGENT_KIOSK_DEMO_CHALLENGE=false")
	for _, p := range []string{"/ws/preview", "/sessions"} {
		resp, err := http.Get(a.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "no camera") {
			t.Errorf("GET %s without a source: %d %s, want 503 naming the missing camera", p, resp.StatusCode, b)
		}
	}
	runScript(t, a.URL, "browser", "--y4m", y4m)
	if !a.isEnrolled(t) {
		t.Error("browser-camera enrollment succeeded on the page but the class is not enrolled")
	}
	if !strings.Contains(a.logs(), `msg="biometric call"`) {
		t.Error("no biometric call in the agent's log")
	}
}

// photoFrames is a still photo as a video: a photo held in front of the
// camera.
func photoFrames(t *testing.T) string {
	t.Helper()
	m, err := demo.Photo(640, 480)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	img, err := m.ToImage()
	if err != nil {
		t.Fatal(err)
	}
	return encodeVideo(t, []image.Image{img, img})
}

// printAttacker is an MJPEG camera that sees the photo as a flat print,
// which the attacker turns as the session prompts: it watches the preview
// socket as an attacker would watch the kiosk's screen. This is the planar
// attack that imitates head turns best, so the liveness checker, not a
// timeout, has to reject it.
type printAttacker struct {
	photo image.Image
	mu    sync.Mutex
	pose  geom.Pose // of the print, in the camera's (unmirrored) view
	goal  geom.Pose
	jpegs map[geom.Pose][]byte
}

func newPrintAttacker(t *testing.T) *printAttacker {
	t.Helper()
	m, err := demo.Photo(640, 480)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	img, err := m.ToImage()
	if err != nil {
		t.Fatal(err)
	}
	return &printAttacker{photo: img, jpegs: map[geom.Pose][]byte{}}
}

// frame turns the print one step toward its goal and returns its JPEG.
func (p *printAttacker) frame() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	const step = 3.6 // degrees per frame, as the demo head
	toward := func(v, g float64) float64 {
		if d := g - v; math.Abs(d) > step {
			return v + math.Copysign(step, d)
		}
		return g
	}
	p.pose.Yaw, p.pose.Pitch = toward(p.pose.Yaw, p.goal.Yaw), toward(p.pose.Pitch, p.goal.Pitch)
	if b, ok := p.jpegs[p.pose]; ok {
		return b
	}
	w := synth.WarpHomography(p.photo, synth.PlaneRotation(640, 480, p.pose.Yaw, p.pose.Pitch, 0, 0.9, geom.Point{}))
	scene := image.NewRGBA(image.Rect(0, 0, 640, 480))
	draw.Draw(scene, scene.Bounds(), image.NewUniform(color.RGBA{R: 90, G: 96, B: 104, A: 255}), image.Point{}, draw.Src)
	draw.Draw(scene, scene.Bounds(), w, image.Point{}, draw.Over)
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, scene, &jpeg.Options{Quality: 90})
	p.jpegs[p.pose] = buf.Bytes()
	return buf.Bytes()
}

// ServeHTTP streams MJPEG at 25 fps.
func (p *printAttacker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		b := p.frame()
		part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"image/jpeg"}, "Content-Length": {strconv.Itoa(len(b))}})
		if err != nil {
			return
		}
		if _, err := part.Write(b); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// watch follows the prompts on the agent's preview socket: each direction
// turns the print 45° further that way (the sample is mirrored once, so
// yaw turns the other way in the camera's view); "any" faces it forward.
func (p *printAttacker) watch(t *testing.T, base string) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/preview", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			var ev struct{ Type, Direction string }
			if typ != websocket.TextMessage || json.Unmarshal(b, &ev) != nil || ev.Type != "prompt" {
				continue
			}
			p.mu.Lock()
			const turn = 45.0
			switch ev.Direction {
			case "left":
				p.goal.Yaw += turn
			case "right":
				p.goal.Yaw -= turn
			case "up":
				p.goal.Pitch += turn
			case "down":
				p.goal.Pitch -= turn
			default:
				p.goal = geom.Pose{}
			}
			p.goal.Yaw = math.Max(-60, math.Min(60, p.goal.Yaw))
			p.goal.Pitch = math.Max(-60, math.Min(60, p.goal.Pitch))
			p.mu.Unlock()
		}
	}()
}

// encodeVideo writes frames as a 25 fps MJPEG AVI (OpenCV reads it on
// every platform) and returns its path.
func encodeVideo(t *testing.T, frames []image.Image) string {
	t.Helper()
	dir := t.TempDir()
	writePNGs(t, dir, frames)
	out := filepath.Join(dir, "clip.avi")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-framerate", "25", "-i", filepath.Join(dir, "%03d.png"),
		"-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj420p", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, b)
	}
	return out
}

func writePNGs(t *testing.T, dir string, frames []image.Image) {
	t.Helper()
	errs := make([]error, len(frames))
	var wg sync.WaitGroup
	for i, img := range frames {
		wg.Go(func() {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%03d.png", i)))
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			errs[i] = png.Encode(f, img)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// renderY4M renders 2 s of the demo head turning ±20° while shifting
// ±60 px, the way a person in front of a laptop moves, as a y4m for
// Chromium's fake camera.
func renderY4M(t *testing.T) string {
	t.Helper()
	needModels(t)
	e, err := face.New(face.Config{ModelsDir: testenv.ModelsDir(), Workers: 1})
	if err != nil {
		testenv.MissingModels(t, err)
	}
	defer e.Close()
	head, err := demo.NewHead(context.Background(), e, 640, 480)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	frames := make([]image.Image, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ph := 2 * math.Pi * float64(i) / n
			frames[i] = head.Render(geom.Pose{Yaw: 20 * math.Sin(ph)}, synth.RenderOptions{Shift: geom.Point{X: 60 * math.Sin(ph)}})
		})
	}
	wg.Wait()
	dir := t.TempDir()
	writePNGs(t, dir, frames)
	out := filepath.Join(dir, "head.y4m")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-framerate", "25", "-i", filepath.Join(dir, "%03d.png"), "-pix_fmt", "yuv420p", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, b)
	}
	return out
}

// previewClient reads /ws/preview and records each frame's arrival and
// capture→arrival latency (the "frame" event carries the capture time).
type previewClient struct {
	mu      sync.Mutex
	arrived []time.Time
	lat     []time.Duration
	measure bool
}

func dialPreview(t testing.TB, base string, pc *previewClient) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/ws/preview"
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		var meta struct{ T int64 }
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now()
			switch {
			case typ == websocket.TextMessage && bytes.HasPrefix(b, []byte(`{"type":"frame"`)):
				_ = json.Unmarshal(b, &meta)
			case typ == websocket.BinaryMessage:
				pc.mu.Lock()
				pc.arrived = append(pc.arrived, now)
				if pc.measure {
					pc.lat = append(pc.lat, now.Sub(time.UnixMilli(meta.T)))
				}
				pc.mu.Unlock()
			}
		}
	}()
	return c
}

// cpuTime is the process's user+system CPU time from /proc.
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the command (which may hold spaces) start at ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// BenchmarkPreviewBars measures the real daemon on the demo camera
// (640×480 at 25 fps) with the face overlay on: fps and capture→socket
// latency for 3 clients at once (the bar: ≥ 15 fps each, p95 ≤ 50 ms), and
// the agent's CPU while previewing. An iteration is 1 s of preview.
func BenchmarkPreviewBars(b *testing.B) {
	a := startAgent(b, "demo")
	clients := make([]*previewClient, 3)
	for i := range clients {
		clients[i] = &previewClient{}
		c := dialPreview(b, a.URL, clients[i])
		defer c.Close()
	}
	<-time.After(2 * time.Second) // warm-up: the demo source renders its cycle's poses once
	for _, c := range clients {
		c.mu.Lock()
		c.measure, c.arrived, c.lat = true, nil, nil
		c.mu.Unlock()
	}
	b.ResetTimer()
	t0 := time.Now()
	cpu0 := cpuTime(b, a.cmd.Process.Pid)
	<-time.After(time.Duration(b.N) * time.Second)
	wall := time.Since(t0)
	cpu := cpuTime(b, a.cmd.Process.Pid) - cpu0
	b.StopTimer()
	minFPS, worstP95 := 1e9, time.Duration(0)
	for _, c := range clients {
		c.mu.Lock()
		l := slices.Clone(c.lat)
		n := len(c.arrived)
		c.mu.Unlock()
		slices.Sort(l)
		if len(l) > 0 {
			worstP95 = max(worstP95, l[len(l)*95/100])
		}
		minFPS = min(minFPS, float64(n)/wall.Seconds())
	}
	b.ReportMetric(minFPS, "fps/client")
	b.ReportMetric(float64(worstP95)/float64(time.Millisecond), "p95-ms")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu%")
}

// TestSourceRecovers: an MJPEG camera that drops its stream every second
// (the agent must reconnect) keeps the preview going: no gap longer than
// 3 s, and the reconnects show in /metrics.
func TestSourceRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	m, err := demo.Photo(320, 240)
	if err != nil {
		t.Fatal(err)
	}
	img, err := m.ToImage()
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	streams := 0
	cam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		streams++
		mu.Unlock()
		mw := multipart.NewWriter(w)
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for range 25 { // 1 s of frames, then the stream breaks off
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			p, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"image/jpeg"}, "Content-Length": {strconv.Itoa(jpg.Len())}})
			if err != nil {
				return
			}
			_, _ = p.Write(jpg.Bytes())
			w.(http.Flusher).Flush()
		}
		// No closing boundary: the camera vanished mid-stream.
	}))
	defer cam.Close()

	a := startAgent(t, cam.URL+"/stream")
	pc := &previewClient{}
	c := dialPreview(t, a.URL, pc)
	defer c.Close()
	<-time.After(6 * time.Second)
	pc.mu.Lock()
	arrived := slices.Clone(pc.arrived)
	pc.mu.Unlock()
	mu.Lock()
	n := streams
	mu.Unlock()
	if n < 3 {
		t.Fatalf("the camera was connected %d times in 6 s, want ≥ 3 (it drops every second)", n)
	}
	if len(arrived) < 2 {
		t.Fatalf("%d preview frames in 6 s", len(arrived))
	}
	var worst time.Duration
	for i := 1; i < len(arrived); i++ {
		worst = max(worst, arrived[i].Sub(arrived[i-1]))
	}
	t.Logf("camera dropped %d times; %d preview frames; longest gap %s", n-1, len(arrived), worst)
	if worst > 3*time.Second {
		t.Errorf("longest preview gap %s, want ≤ 3 s", worst)
	}
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^bwsagent_capture_reconnects_total [1-9]`).Match(b) {
		t.Error("/metrics: bwsagent_capture_reconnects_total is not above 0")
	}
}
