package capture

import (
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// Frame is one captured image. The receiver owns Mat and must call Close
// exactly once; Frame is a value that is handed over, so do not keep copies
// of it after passing it on.
type Frame struct {
	// Mat holds the image as 8-bit BGR (CV_8UC3).
	Mat gocv.Mat
	// Seq numbers frames of one Loop from 1 upwards, across reconnects, so
	// a consumer can tell how many it missed. Sources leave it 0.
	Seq uint64
	// Time is when the frame was captured (or released by the pacer for
	// files), taken right after the source produced it.
	Time time.Time
	// Width and Height are the image size in pixels.
	Width, Height int
}

// Close releases the frame's Mat. It is safe to call on a zero Frame and
// more than once on the same *Frame.
func (f *Frame) Close() error {
	if f.Mat.Ptr() == nil {
		return nil
	}
	err := f.Mat.Close()
	f.Mat = gocv.Mat{}
	return err
}

// newFrame wraps m (which it takes ownership of) with its size and t.
func newFrame(m gocv.Mat, t time.Time) Frame {
	return Frame{Mat: m, Time: t, Width: m.Cols(), Height: m.Rows()}
}

// sharedFrame is a frame fanned out to several subscriptions. The Mat is
// closed when the last reference is released; a subscriber that holds the
// only remaining reference takes the Mat without copying it.
type sharedFrame struct {
	f    Frame
	refs atomic.Int32
}

func newSharedFrame(f Frame) *sharedFrame {
	s := &sharedFrame{f: f}
	s.refs.Store(1)
	return s
}

func (s *sharedFrame) retain() { s.refs.Add(1) }

func (s *sharedFrame) release() {
	if s.refs.Add(-1) == 0 {
		_ = s.f.Close()
	}
}

// take turns one reference into a Frame the caller owns. If the caller is
// the last holder the Mat is moved (no copy); otherwise it is cloned so
// that every receiver may draw on or close its own Mat.
func (s *sharedFrame) take() Frame {
	if s.refs.CompareAndSwap(1, 0) {
		f := s.f
		s.f = Frame{}
		return f
	}
	f := s.f
	f.Mat = s.f.Mat.Clone()
	s.release()
	return f
}
