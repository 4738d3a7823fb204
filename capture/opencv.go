package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"gocv.io/x/gocv"
)

// cvKind is what an OpenCV source opens.
type cvKind int

const (
	cvCamera cvKind = iota // device index
	cvV4L2                 // /dev/videoN path through the V4L2 backend
	cvFile                 // video file
	cvImages               // printf-style image sequence
	cvStream               // rtsp:// or http(s):// through FFmpeg
)

// cvSource reads through OpenCV's VideoCapture. OpenCV calls are not
// interruptible, so a hung network read can only end by FFmpeg's own
// timeout; that is why MJPEG over HTTP has a native reader (mjpeg.go).
type cvSource struct {
	kind  cvKind
	index int    // cvCamera
	name  string // path, pattern or URL
	desc  string // for String(), credentials redacted
	opts  Options

	vc   *gocv.VideoCapture
	pace *pacer // nil for live sources and NoPace
	got  int    // frames read since Open, to detect empty files
}

func (s *cvSource) String() string { return s.desc }

func (s *cvSource) finite() bool { return s.kind == cvFile || s.kind == cvImages }

func (s *cvSource) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = s.Close()
	if err := s.precheck(); err != nil {
		return err
	}
	vc, err := s.openCapture()
	if err != nil {
		if vc != nil {
			_ = vc.Close()
		}
		return fmt.Errorf("open %s: %w", s.desc, err)
	}
	if !vc.IsOpened() {
		_ = vc.Close()
		err := fmt.Errorf("open %s: OpenCV could not open it", s.desc)
		if s.finite() {
			// The file exists (precheck) but no backend can decode it.
			return permanent(err)
		}
		return err
	}
	s.vc = vc
	s.got = 0
	if s.kind == cvCamera || s.kind == cvV4L2 {
		s.configureCamera()
	}
	s.pace = nil
	if s.finite() && !s.opts.NoPace {
		fps := vc.Get(gocv.VideoCaptureFPS)
		if s.kind == cvImages || fps <= 0 || fps > 1000 || math.IsNaN(fps) {
			fps = s.opts.fpsOr(defaultFPS)
		}
		s.pace = newPacer(fps)
	}
	return nil
}

// precheck turns the usual file mistakes into clear, permanent errors;
// OpenCV itself only says "could not open".
func (s *cvSource) precheck() error {
	var path string
	switch s.kind {
	case cvFile:
		path = s.name
	case cvImages:
		path = filepath.Dir(s.name)
	default:
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return permanent(fmt.Errorf("open %s: %w", s.desc, err))
	case err != nil:
		return fmt.Errorf("open %s: %w", s.desc, err)
	case s.kind == cvFile && st.IsDir():
		return permanent(fmt.Errorf("open %s: is a directory (use images:DIR/%%04d.jpg for an image sequence)", s.desc))
	case s.kind == cvImages && !st.IsDir():
		return permanent(fmt.Errorf("open %s: %s is not a directory", s.desc, path))
	}
	return nil
}

func (s *cvSource) openCapture() (*gocv.VideoCapture, error) {
	switch s.kind {
	case cvCamera:
		return gocv.VideoCaptureDevice(s.index)
	case cvV4L2:
		return gocv.VideoCaptureFileWithAPI(s.name, gocv.VideoCaptureV4L2)
	case cvImages:
		return gocv.VideoCaptureFileWithAPI(s.name, gocv.VideoCaptureImages)
	case cvStream:
		return gocv.VideoCaptureFileWithAPI(s.name, gocv.VideoCaptureFFmpeg)
	default:
		return gocv.VideoCaptureFile(s.name)
	}
}

// configureCamera applies the requested format. FOURCC goes first because
// V4L2 drivers pick the sizes they offer per pixel format.
func (s *cvSource) configureCamera() {
	o := s.opts
	if o.FOURCC != "" {
		s.vc.Set(gocv.VideoCaptureFOURCC, s.vc.ToCodec(o.FOURCC))
	}
	if o.Width > 0 {
		s.vc.Set(gocv.VideoCaptureFrameWidth, float64(o.Width))
	}
	if o.Height > 0 {
		s.vc.Set(gocv.VideoCaptureFrameHeight, float64(o.Height))
	}
	if o.FPS > 0 {
		s.vc.Set(gocv.VideoCaptureFPS, o.FPS)
	}
	// A short driver queue keeps latency at one frame instead of four.
	s.vc.Set(gocv.VideoCaptureBufferSize, 1)
	w := int(s.vc.Get(gocv.VideoCaptureFrameWidth))
	h := int(s.vc.Get(gocv.VideoCaptureFrameHeight))
	fps := s.vc.Get(gocv.VideoCaptureFPS)
	codec := s.vc.CodecString()
	if (o.Width > 0 && w != o.Width) || (o.Height > 0 && h != o.Height) ||
		(o.FOURCC != "" && codec != o.FOURCC) {
		o.Logger.Warn("camera ignored requested format",
			"source", s.desc,
			"requested", fmt.Sprintf("%dx%d %s", o.Width, o.Height, o.FOURCC),
			"got", fmt.Sprintf("%dx%d %s", w, h, codec), "fps", fps)
	}
}

func (s *cvSource) Read(ctx context.Context) (Frame, error) {
	if s.vc == nil {
		return Frame{}, fmt.Errorf("read %s: not open", s.desc)
	}
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	m := gocv.NewMat()
	ok := s.vc.Read(&m)
	if !ok || m.Empty() {
		_ = m.Close()
		if !s.finite() {
			return Frame{}, fmt.Errorf("read %s: %w", s.desc, ErrNoFrame)
		}
		if s.got == 0 {
			return Frame{}, permanent(fmt.Errorf("read %s: no frames could be decoded", s.desc))
		}
		if !s.opts.Loop {
			return Frame{}, io.EOF
		}
		// Reopen rather than seek: seeking is unreliable for some
		// containers and for the image-sequence backend.
		// Keep the pacer so the seam between two runs keeps the rhythm.
		p := s.pace
		if err := s.Open(ctx); err != nil {
			return Frame{}, fmt.Errorf("loop %s: %w", s.desc, err)
		}
		if p != nil {
			s.pace = p
		}
		return s.Read(ctx)
	}
	s.got++
	if m.Type() != gocv.MatTypeCV8UC3 {
		if err := toBGR(&m); err != nil {
			_ = m.Close()
			return Frame{}, fmt.Errorf("read %s: %w", s.desc, err)
		}
	}
	if s.pace != nil {
		if err := s.pace.pace(ctx); err != nil {
			_ = m.Close()
			return Frame{}, err
		}
	}
	return newFrame(m, time.Now()), nil
}

// toBGR converts a gray or BGRA Mat in place to BGR.
func toBGR(m *gocv.Mat) error {
	var code gocv.ColorConversionCode
	switch m.Type() {
	case gocv.MatTypeCV8UC1:
		code = gocv.ColorGrayToBGR
	case gocv.MatTypeCV8UC4:
		code = gocv.ColorBGRAToBGR
	default:
		return fmt.Errorf("unsupported pixel type %v", m.Type())
	}
	dst := gocv.NewMat()
	gocv.CvtColor(*m, &dst, code)
	_ = m.Close()
	*m = dst
	return nil
}

func (s *cvSource) Close() error {
	if s.vc == nil {
		return nil
	}
	err := s.vc.Close()
	s.vc = nil
	return err
}
