package capture

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"time"

	"gocv.io/x/gocv"
)

// patternSource generates a moving test pattern so that the agent, its
// preview and its metrics work on a machine with no camera and no media.
// Frames are a function of their index, not of wall time, so tests see the
// same images every run.
type patternSource struct {
	w, h int
	fps  float64
	opts Options

	bg   gocv.Mat // static gradient, drawn once per Open
	n    int
	pace *pacer
}

func newPatternSource(opts Options) *patternSource {
	w, h := opts.Width, opts.Height
	if w == 0 || h == 0 {
		w, h = 640, 480
	}
	return &patternSource{w: w, h: h, fps: opts.fpsOr(defaultFPS), opts: opts}
}

func (s *patternSource) String() string {
	return fmt.Sprintf("demo(pattern %dx%d@%g)", s.w, s.h, s.fps)
}

func (s *patternSource) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = s.Close()
	s.bg = gocv.NewMatWithSize(s.h, s.w, gocv.MatTypeCV8UC3)
	buf, err := s.bg.DataPtrUint8()
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("open %s: %w", s, err)
	}
	for y := range s.h {
		for x := range s.w {
			i := (y*s.w + x) * 3
			buf[i] = uint8(96 + 96*x/s.w)   // B
			buf[i+1] = uint8(64 + 64*y/s.h) // G
			buf[i+2] = 48                   // R
		}
	}
	s.n = 0
	s.pace = nil
	if !s.opts.NoPace {
		s.pace = newPacer(s.fps)
	}
	return nil
}

func (s *patternSource) Read(ctx context.Context) (Frame, error) {
	if s.bg.Ptr() == nil {
		return Frame{}, fmt.Errorf("read %s: not open", s)
	}
	if s.pace != nil {
		if err := s.pace.pace(ctx); err != nil {
			return Frame{}, err
		}
	} else if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	m := s.bg.Clone()
	s.draw(&m, s.n)
	s.n++
	return newFrame(m, time.Now()), nil
}

// draw paints a head-sized disc that circles the centre (about one turn
// every 4 s), a sweeping bar and the frame number, so motion, mirroring
// and dropped frames are all visible in a preview.
func (s *patternSource) draw(m *gocv.Mat, n int) {
	t := float64(n) / s.fps
	cx, cy := float64(s.w)/2, float64(s.h)/2
	r := math.Min(cx, cy)
	a := 2 * math.Pi * t / 4
	c := image.Pt(int(cx+0.35*r*math.Cos(a)), int(cy+0.25*r*math.Sin(a)))
	head := image.Pt(int(0.22*r), int(0.3*r))
	gocv.Ellipse(m, c, head, 0, 0, 360, color.RGBA{R: 200, G: 170, B: 150}, -1)
	eye := int(0.04*r) + 1
	gocv.Circle(m, c.Add(image.Pt(-head.X/2, -head.Y/4)), eye, color.RGBA{A: 255}, -1)
	gocv.Circle(m, c.Add(image.Pt(head.X/2, -head.Y/4)), eye, color.RGBA{A: 255}, -1)
	x := int(float64(s.w) * math.Mod(t/2, 1))
	gocv.Rectangle(m, image.Rect(x, s.h-12, x+s.w/10, s.h-4), color.RGBA{R: 255, G: 255, B: 255}, -1)
	// A marker in the top-left corner makes horizontal mirroring obvious.
	gocv.Rectangle(m, image.Rect(4, 4, 4+s.w/16, 4+s.h/16), color.RGBA{R: 255}, -1)
	gocv.PutText(m, fmt.Sprintf("bwsagent demo #%d", n), image.Pt(8+s.w/16, 4+s.h/20),
		gocv.FontHersheySimplex, math.Max(0.4, float64(s.h)/960), color.RGBA{R: 255, G: 255, B: 255}, 1)
}

func (s *patternSource) Close() error {
	if s.bg.Ptr() == nil {
		return nil
	}
	err := s.bg.Close()
	s.bg = gocv.Mat{}
	return err
}

// demoFileSource loops the caller's face video under the "demo" name.
type demoFileSource struct{ *cvSource }

func (s demoFileSource) String() string { return "demo(" + s.cvSource.String() + ")" }
