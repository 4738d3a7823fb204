package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

func TestFileSourceFrameCountAndSize(t *testing.T) {
	type tc struct {
		name   string
		path   func(t *testing.T) string
		frames int
		size   image.Point
	}
	tests := []tc{
		{"mpeg4 mp4", func(t *testing.T) string {
			return makeVideo(t, "a.mp4", 12, 160, 120, 25, "-c:v", "mpeg4")
		}, 12, image.Pt(160, 120)},
		{"h264 mkv", func(t *testing.T) string {
			return makeVideo(t, "b.mkv", 9, 320, 240, 30, "-c:v", "libx264", "-pix_fmt", "yuv420p")
		}, 9, image.Pt(320, 240)},
		{"mjpeg avi", func(t *testing.T) string {
			return makeVideo(t, "c.avi", 7, 176, 144, 15, "-c:v", "mjpeg")
		}, 7, image.Pt(176, 144)},
		{"gocv small.mp4", func(t *testing.T) string {
			return filepath.Join(gocvDir(t), "images", "small.mp4")
		}, 166, image.Pt(560, 320)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := ParseURI("file:"+tt.path(t), Options{NoPace: true})
			if err != nil {
				t.Fatal(err)
			}
			sizes, err := readAll(t, src, 1000)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read ended with %v, want io.EOF", err)
			}
			if len(sizes) != tt.frames {
				t.Errorf("got %d frames, want %d", len(sizes), tt.frames)
			}
			for i, s := range sizes {
				if s != tt.size {
					t.Fatalf("frame %d is %v, want %v", i, s, tt.size)
				}
			}
		})
	}
}

func TestFileSourcePacesToItsFrameRate(t *testing.T) {
	const n, fps = 10, 50.0
	path := makeVideo(t, "p.mp4", n, 64, 48, fps, "-c:v", "mpeg4")
	src, err := ParseURI("file:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sizes, err := readAll(t, src, 1000)
	if !errors.Is(err, io.EOF) || len(sizes) != n {
		t.Fatalf("read %d frames, err %v", len(sizes), err)
	}
	// A lower bound only: pacing guarantees "not faster than real time".
	if min := time.Duration(float64(n-1) / fps * float64(time.Second)); time.Since(start) < min {
		t.Errorf("%d frames at %g fps took %s, want at least %s", n, fps, time.Since(start), min)
	}
}

func TestPacer(t *testing.T) {
	now := time.Unix(0, 0)
	var waits []time.Duration
	p := newPacer(25)
	p.now = func() time.Time { return now }
	p.wait = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		now = now.Add(d)
		return nil
	}
	ctx := context.Background()
	for range 3 {
		_ = p.pace(ctx) // decode is instant: every frame after the first waits
	}
	now = now.Add(time.Second) // a stall: the schedule restarts, no burst
	_ = p.pace(ctx)
	_ = p.pace(ctx)
	want := []time.Duration{40 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	p.wait = sleepCtx
	if err := p.pace(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("pace with cancelled ctx = %v", err)
	}
}

func TestFileSourceLoop(t *testing.T) {
	path := makeVideo(t, "l.mp4", 5, 64, 48, 25, "-c:v", "mpeg4")
	src, err := ParseURI("file:"+path, Options{Loop: true, NoPace: true})
	if err != nil {
		t.Fatal(err)
	}
	sizes, err := readAll(t, src, 13)
	if err != nil || len(sizes) != 13 {
		t.Fatalf("looping read got %d frames, err %v; want 13 and no end", len(sizes), err)
	}
}

func TestImageSequence(t *testing.T) {
	t.Run("ffmpeg jpg sequence", func(t *testing.T) {
		seq := makeSeq(t, 6, 96, 64)
		src, err := ParseURI("images:"+filepath.Join(seq, "%04d.jpg"), Options{NoPace: true})
		if err != nil {
			t.Fatal(err)
		}
		sizes, err := readAll(t, src, 100)
		if !errors.Is(err, io.EOF) || len(sizes) != 6 {
			t.Fatalf("got %d frames (err %v), want 6 then io.EOF", len(sizes), err)
		}
	})
	t.Run("gocv images of different sizes", func(t *testing.T) {
		dir := t.TempDir()
		var want []image.Point
		for i, name := range []string{"face.jpg", "gocvlogo.jpg", "space_shuttle.jpg"} {
			img := gocv.IMRead(filepath.Join(gocvDir(t), "images", name), gocv.IMReadColor)
			if img.Empty() {
				t.Skipf("gocv test image %s missing", name)
			}
			want = append(want, image.Pt(img.Cols(), img.Rows()))
			gocv.IMWrite(filepath.Join(dir, fmt.Sprintf("img%02d.jpg", i)), img)
			_ = img.Close()
		}
		src, err := ParseURI("images:"+filepath.Join(dir, "img%02d.jpg"), Options{NoPace: true})
		if err != nil {
			t.Fatal(err)
		}
		sizes, err := readAll(t, src, 100)
		if !errors.Is(err, io.EOF) || fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Fatalf("got %v (err %v), want %v then io.EOF", sizes, err, want)
		}
	})
}

// makeSeq writes n numbered JPEGs (0001.jpg…) with ffmpeg and returns the dir.
func makeSeq(t *testing.T, n, w, h int) string {
	t.Helper()
	dir := t.TempDir()
	makeVideoInto(t, filepath.Join(dir, "%04d.jpg"), n, w, h, 25)
	return dir
}

func TestMissingFileIsPermanent(t *testing.T) {
	dir := t.TempDir()
	for _, uri := range []string{"file:" + filepath.Join(dir, "nope.mp4"), "file:" + dir,
		"images:" + filepath.Join(dir, "nodir", "%04d.jpg")} {
		src, err := ParseURI(uri, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = src.Open(context.Background())
		if err == nil || !IsPermanent(err) {
			t.Errorf("%s: Open = %v, want a permanent error", uri, err)
		}
		_ = src.Close()
	}
}

func TestDemoSource(t *testing.T) {
	t.Run("pattern moves", func(t *testing.T) {
		src, err := ParseURI("demo", Options{Width: 160, Height: 120, NoPace: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := src.Open(ctx); err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		a, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		for range 5 {
			f, _ := src.Read(ctx)
			_ = f.Close()
		}
		b, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if a.Width != 160 || a.Height != 120 {
			t.Errorf("size %dx%d, want 160x120", a.Width, a.Height)
		}
		diff := gocv.NewMat()
		defer diff.Close()
		gocv.AbsDiff(a.Mat, b.Mat, &diff)
		gray := gocv.NewMat()
		defer gray.Close()
		gocv.CvtColor(diff, &gray, gocv.ColorBGRToGray)
		if n := gocv.CountNonZero(gray); n < 100 {
			t.Errorf("frames 0 and 6 differ in %d pixels; the pattern should move", n)
		}
	})
	t.Run("face video loops", func(t *testing.T) {
		path := makeVideo(t, "face.mp4", 4, 64, 48, 25, "-c:v", "mpeg4")
		src, err := ParseURI("demo", Options{DemoVideo: path, NoPace: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := src.String(); got != "demo(file:"+path+")" {
			t.Errorf("String() = %q", got)
		}
		sizes, err := readAll(t, src, 10)
		if err != nil || len(sizes) != 10 {
			t.Fatalf("demo video gave %d frames, err %v; want it to loop", len(sizes), err)
		}
	})
}

func TestAbsentCameraIsRetryable(t *testing.T) {
	if _, err := os.Stat("/dev/video0"); err == nil {
		t.Skip("this machine has /dev/video0")
	}
	for _, uri := range []string{"camera:0", "v4l2:/dev/video0"} {
		src, err := ParseURI(uri, Options{Width: 640, Height: 480, FOURCC: "MJPG"})
		if err != nil {
			t.Fatal(err)
		}
		err = src.Open(context.Background())
		_ = src.Close()
		// A camera may be plugged in later: the Loop must keep retrying.
		if err == nil || IsPermanent(err) {
			t.Errorf("%s: Open = %v, want a retryable error", uri, err)
		}
	}
}
