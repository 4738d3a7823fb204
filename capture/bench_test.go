package capture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// Frame conversion cost per 640×480 frame, for each layout pion produces.
func BenchmarkConvert(b *testing.B) {
	const w, h = 640, 480
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i)
	}
	for _, bc := range []struct {
		name string
		img  image.Image
	}{
		{"I420_640x480", solidYCbCr(w, h, image.YCbCrSubsampleRatio420, 120, 100, 150)},
		{"YUYV422_640x480", solidYCbCr(w, h, image.YCbCrSubsampleRatio422, 120, 100, 150)},
		{"RGBA_640x480", rgba},
		{"YCbCr444_fallback_640x480", solidYCbCr(w, h, image.YCbCrSubsampleRatio444, 120, 100, 150)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var c converter
			defer c.Close()
			b.SetBytes(int64(w * h * 3))
			for b.Loop() {
				m, err := c.toMat(bc.img)
				if err != nil {
					b.Fatal(err)
				}
				_ = m.Close()
			}
		})
	}
}

// The loop's per-subscriber hot path: push into a full ring (drop-oldest)
// and pop, without pixel work.
func BenchmarkRingPushDropOldest(b *testing.B) {
	sf := newSharedFrame(tinyFrame(1)) // our own reference keeps the Mat alive
	defer sf.release()
	s := newSubscription("bench", 4, nil)
	defer s.Close()
	for b.Loop() {
		s.push(sf)
	}
}

func BenchmarkRingPushPop(b *testing.B) {
	sf := newSharedFrame(tinyFrame(1))
	defer sf.release()
	s := newSubscription("bench", 4, nil)
	defer s.Close()
	for b.Loop() {
		s.push(sf)
		f, _ := s.pop(false)
		f.release()
	}
}

// Whole per-frame fan-out of a 640×480 frame to N subscribers that each
// take their frame: one subscriber moves the Mat, others get a copy. The
// source's fresh Mat is made by a Clone inside the timed loop (StopTimer per
// iteration would make the benchmark run for minutes); BenchmarkClone640x480
// is that baseline.
func BenchmarkDistribute640x480(b *testing.B) {
	base := solidMat(640, 480, color.RGBA{R: 10, G: 20, B: 30})
	defer base.Close()
	for _, subs := range []int{1, 3} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			l := &Loop{Source: countingSource(0)}
			var ss []*Subscription
			for i := range subs {
				ss = append(ss, l.Subscribe(fmt.Sprint(i), 2))
			}
			defer l.Close()
			now := time.Now()
			for b.Loop() {
				f := newFrame(base.Clone(), now) // stands in for the source's fresh Mat
				l.distribute(f, now)
				for _, s := range ss {
					fr, _, _ := s.TryNext()
					_ = fr.Close()
				}
			}
		})
	}
}

func BenchmarkClone640x480(b *testing.B) {
	base := solidMat(640, 480, color.RGBA{R: 10, G: 20, B: 30})
	defer base.Close()
	for b.Loop() {
		m := base.Clone()
		_ = m.Close()
	}
}

func BenchmarkMirror640x480(b *testing.B) {
	m := solidMat(640, 480, color.RGBA{R: 10})
	defer m.Close()
	for b.Loop() {
		gocv.Flip(m, &m, 1)
	}
}

// MJPEG over HTTP: multipart parsing plus JPEG decode per 640×480 frame.
func BenchmarkMJPEGParseDecode640x480(b *testing.B) {
	frame := jpegFrames(b, 1, 640, 480)[0]
	var part bytes.Buffer
	fmt.Fprintf(&part, "--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(frame))
	part.Write(frame)
	part.WriteString("\r\n")
	s := newHTTPSource("http://bench", "http://bench", Options{}.withDefaults())
	s.br = bufio.NewReaderSize(&repeatReader{data: part.Bytes()}, 64<<10)
	s.boundary = []byte("f")
	s.cancel = func() {}
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		f, err := s.Read(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
}

type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// End to end: decode a 640×480 H.264 file (looping, unpaced) through the
// Loop to a subscriber. ns/op is the capture cost per frame.
func BenchmarkLoopFile640x480(b *testing.B) {
	path := makeVideo(b, "bench.mp4", 50, 640, 480, 25, "-c:v", "libx264", "-pix_fmt", "yuv420p")
	src, err := ParseURI("file:"+path, Options{Loop: true, NoPace: true})
	if err != nil {
		b.Fatal(err)
	}
	l := &Loop{Source: src, Mirror: true}
	sub := l.Subscribe("bench", 4)
	if err := l.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for b.Loop() {
		f, err := sub.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
	b.ReportMetric(float64(sub.Dropped())/float64(b.N), "drops/op")
}
