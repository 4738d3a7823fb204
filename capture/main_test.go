package capture

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

func TestMain(m *testing.M) {
	// Headless CI: keep OpenCV's backend probing quiet.
	if os.Getenv("OPENCV_LOG_LEVEL") == "" {
		os.Setenv("OPENCV_LOG_LEVEL", "ERROR")
	}
	start := matCount()
	code := m.Run()
	// With -tags matprofile every Mat any test created must be closed.
	if n := matCount(); code == 0 && n != start {
		var b bytes.Buffer
		_ = writeMatProfile(&b)
		fmt.Fprintf(os.Stderr, "Mat leak: %d Mats open after tests (started with %d)\n%s", n, start, b.String())
		code = 1
	}
	os.Exit(code)
}

// requireFFmpeg skips media tests on machines without ffmpeg.
func requireFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not found in PATH: install ffmpeg to run the media tests")
	}
}

// makeVideo renders n frames of ffmpeg's test source into a temp file.
func makeVideo(t testing.TB, name string, n, w, h int, fps float64, codecArgs ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	makeVideoInto(t, out, n, w, h, fps, codecArgs...)
	return out
}

// gocvDir is gocv's module directory (for its images/ and small.mp4).
func gocvDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "gocv.io/x/gocv").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("cannot locate gocv's module directory (go list: %v)", err)
	}
	return dir
}

// readAll reads src until io.EOF or limit frames, closing every Mat.
func readAll(t testing.TB, src Source, limit int) (sizes []image.Point, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Open(ctx); err != nil {
		return nil, err
	}
	defer src.Close()
	for len(sizes) < limit {
		f, err := src.Read(ctx)
		if err != nil {
			return sizes, err
		}
		if f.Mat.Type() != gocv.MatTypeCV8UC3 {
			t.Errorf("frame %d: Mat type %v, want CV8UC3 (BGR)", len(sizes), f.Mat.Type())
		}
		sizes = append(sizes, image.Pt(f.Width, f.Height))
		_ = f.Close()
	}
	return sizes, nil
}

// solidMat is a w×h BGR Mat of colour c.
func solidMat(w, h int, c color.RGBA) gocv.Mat {
	return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(c.B), float64(c.G), float64(c.R), 0), h, w, gocv.MatTypeCV8UC3)
}

// bgrAt returns the pixel at (x,y) of a BGR Mat.
func bgrAt(m gocv.Mat, x, y int) [3]uint8 {
	v := m.GetVecbAt(y, x)
	return [3]uint8{v[0], v[1], v[2]}
}

// funcSource is a scriptable Source for loop tests.
type funcSource struct {
	name  string
	open  func(ctx context.Context) error
	read  func(ctx context.Context) (Frame, error)
	close func() error
}

func (s *funcSource) Open(ctx context.Context) error {
	if s.open == nil {
		return nil
	}
	return s.open(ctx)
}
func (s *funcSource) Read(ctx context.Context) (Frame, error) { return s.read(ctx) }
func (s *funcSource) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}
func (s *funcSource) String() string { return s.name }

// tinyFrame is a small frame whose top-left pixel encodes i.
func tinyFrame(i int) Frame {
	return newFrame(solidMat(16, 12, color.RGBA{R: uint8(i), G: uint8(i >> 8), B: 7}), time.Now())
}

// fakeClock is a Clock whose time and timers the test drives.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	afters chan fakeTimer
}

type fakeTimer struct {
	d  time.Duration
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), afters: make(chan fakeTimer, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.afters <- fakeTimer{d: d, ch: ch}
	return ch
}

// waitFor polls cond until it holds or the deadline passes; it asserts on
// state, not on how long something took.
// makeVideoInto renders n test frames to out (a file or an image2 pattern).
func makeVideoInto(t testing.TB, out string, n, w, h int, fps float64, extra ...string) {
	t.Helper()
	requireFFmpeg(t)
	args := []string{"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%g", w, h, fps), "-frames:v", fmt.Sprint(n)}
	args = append(append(args, extra...), out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}
