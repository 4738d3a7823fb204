package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// jpegFrames encodes n solid frames whose red channel is 40*i.
func jpegFrames(t testing.TB, n, w, h int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		m := solidMat(w, h, color.RGBA{R: uint8(40 * i), G: 100, B: 200})
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
		_ = m.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf.GetBytes()...))
		buf.Close()
	}
	return out
}

// mjpegStyle is how a server frames its parts.
type mjpegStyle struct {
	header    string // Content-Type boundary parameter as sent
	delim     string // the delimiter line as sent
	length    bool   // send Content-Length
	closeTail bool   // end with the closing delimiter
}

// writeParts streams frames in style s, flushing each part.
func writeParts(w http.ResponseWriter, frames [][]byte, s mjpegStyle) {
	fl, _ := w.(http.Flusher)
	for _, f := range frames {
		fmt.Fprintf(w, "%s\r\nContent-Type: image/jpeg\r\n", s.delim)
		if s.length {
			fmt.Fprintf(w, "Content-Length: %d\r\n", len(f))
		}
		fmt.Fprint(w, "\r\n")
		_, _ = w.Write(f)
		fmt.Fprint(w, "\r\n")
		if fl != nil {
			fl.Flush()
		}
	}
	if s.closeTail {
		fmt.Fprintf(w, "%s--\r\n", s.delim)
	}
}

func TestMJPEGOverHTTP(t *testing.T) {
	frames := jpegFrames(t, 4, 64, 48)
	tests := []struct {
		name  string
		style mjpegStyle
	}{
		{"standard with length", mjpegStyle{header: "frame", delim: "--frame", length: true, closeTail: true}},
		{"no content-length", mjpegStyle{header: "frame", delim: "--frame", closeTail: true}},
		{"boundary declared with dashes", mjpegStyle{header: "--myboundary", delim: "--myboundary", length: true}},
		{"no boundary parameter", mjpegStyle{delim: "--xyz", closeTail: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ct := "multipart/x-mixed-replace"
				if tt.style.header != "" {
					ct += "; boundary=" + tt.style.header
				}
				w.Header().Set("Content-Type", ct)
				writeParts(w, frames, tt.style)
			}))
			defer srv.Close()
			src, err := ParseURI(srv.URL+"/stream", Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := src.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			for i := range frames {
				f, err := src.Read(ctx)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				px := bgrAt(f.Mat, 5, 5)
				_ = f.Close()
				if want := 40 * i; abs(int(px[2])-want) > 6 || f.Width != 64 || f.Height != 48 {
					t.Fatalf("frame %d: %dx%d red %d, want 64x48 red ~%d", i, f.Width, f.Height, px[2], want)
				}
			}
			// The server ends the response: for a live stream that is a
			// disconnect to recover from, not io.EOF.
			_, err = src.Read(ctx)
			if !errors.Is(err, ErrNoFrame) || isEnd(err) {
				t.Fatalf("after the last part Read = %v, want ErrNoFrame (not io.EOF)", err)
			}
		})
	}
}

func TestMJPEGSilentServerTimesOut(t *testing.T) {
	frames := jpegFrames(t, 1, 32, 24)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=b")
		writeParts(w, frames, mjpegStyle{delim: "--b", length: true})
		select { // then hang, as a wedged camera does
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	src, err := ParseURI(srv.URL, Options{ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := src.Read(ctx); !errors.Is(err, ErrNoFrame) || !strings.Contains(err.Error(), "no frame within") {
		t.Fatalf("silent server: Read = %v, want a timeout wrapping ErrNoFrame", err)
	}
}

func TestMJPEGReadHonoursContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=b")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	src, _ := ParseURI(srv.URL, Options{})
	if err := src.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := src.Read(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read = %v, want context.Canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Read ignored ctx cancellation")
	}
}

func TestHTTPNonMultipartFallsBackToOpenCV(t *testing.T) {
	path := makeVideo(t, "h.mp4", 6, 80, 60, 25, "-c:v", "mpeg4", "-movflags", "+faststart")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "h.mp4", st.ModTime(), f)
	}))
	defer srv.Close()
	src, err := ParseURI(srv.URL+"/h.mp4", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := src.Read(ctx)
	if err != nil {
		t.Fatalf("FFmpeg fallback: %v", err)
	}
	defer f.Close()
	if f.Width != 80 || f.Height != 60 || hits.Load() < 2 {
		t.Errorf("got %dx%d after %d requests; want 80x60 via a second (FFmpeg) request", f.Width, f.Height, hits.Load())
	}
}

// The multipart parser faces whatever a camera or attacker sends: it must
// never panic or buffer beyond MaxFrameBytes.
func FuzzMJPEGParts(f *testing.F) {
	f.Add("frame", []byte("--frame\r\nContent-Length: 3\r\n\r\nabc\r\n--frame--\r\n"))
	f.Add("", []byte("--x\r\n\r\nabc\r\n--x\r\n\r\ndef\r\n"))
	f.Add("b", []byte("junk\n--b\r\nContent-Length: 99999999\r\n\r\n"))
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		s := newHTTPSource("http://fuzz", "http://fuzz", Options{MaxFrameBytes: 1 << 10}.withDefaults())
		s.br = bufio.NewReaderSize(bytes.NewReader(body), 64)
		s.boundary = []byte(boundary)
		for range 8 {
			part, err := s.nextPart()
			if err != nil {
				return
			}
			if len(part) > 1<<10 {
				t.Fatalf("part of %d bytes exceeds the limit", len(part))
			}
		}
	})
}
