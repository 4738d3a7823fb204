package capture

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"

	// The test-pattern driver is pure Go and tiny; registering it lets
	// "mediadevices:videotest" smoke-test a machine without a camera.
	// Real cameras are registered by mediadevices_camera.go (build tag).
	_ "github.com/pion/mediadevices/pkg/driver/videotest"
)

// videoTestLabel is how pion registers its videotest driver.
const videoTestLabel = "VideoTest"

// mdSource reads a camera through github.com/pion/mediadevices' driver
// layer directly (no WebRTC track machinery) and converts its image.Image
// frames to BGR Mats.
type mdSource struct {
	spec string // "" = first real camera, else ID or label
	desc string
	opts Options

	drv    driver.Driver
	reader video.Reader
	conv   converter
}

func newMediaDevicesSource(spec string, opts Options) *mdSource {
	desc := "mediadevices:" + spec
	return &mdSource{spec: spec, desc: desc, opts: opts}
}

func (s *mdSource) String() string { return s.desc }

// findDriver picks the driver named by spec among pion's registered cameras.
func (s *mdSource) findDriver() (driver.Driver, error) {
	drivers := driver.GetManager().Query(driver.FilterAnd(
		driver.FilterVideoRecorder(), driver.FilterDeviceType(driver.Camera)))
	// Query walks a map: sort so that "first camera" is stable.
	slices.SortFunc(drivers, func(a, b driver.Driver) int {
		if c := cmp.Compare(b.Info().Priority, a.Info().Priority); c != 0 {
			return c
		}
		return strings.Compare(a.Info().Label, b.Info().Label)
	})
	var labels []string
	for _, d := range drivers {
		labels = append(labels, d.Info().Label)
		if s.spec == "" {
			// The test pattern is only used when asked for by name.
			if d.Info().Label != videoTestLabel {
				return d, nil
			}
			continue
		}
		if matchDriver(d, s.spec) {
			return d, nil
		}
	}
	hint := "build with -tags mediadevicescamera for V4L2 cameras, or use mediadevices:videotest"
	if s.spec == "" {
		return nil, fmt.Errorf("open %s: no camera registered with mediadevices (have %q; %s)", s.desc, labels, hint)
	}
	return nil, fmt.Errorf("open %s: no mediadevices camera matches %q (have %q; %s)", s.desc, s.spec, labels, hint)
}

// matchDriver compares spec with the driver ID, its name and each part of
// its label (pion labels V4L2 devices "usb-Vendor_Cam-video-index0;video0",
// so "video0" and "/dev/video0" both match).
func matchDriver(d driver.Driver, spec string) bool {
	if d.ID() == spec {
		return true
	}
	spec = strings.TrimPrefix(spec, "/dev/")
	for _, part := range strings.Split(d.Info().Label, ";") {
		if strings.EqualFold(part, spec) {
			return true
		}
	}
	return strings.EqualFold(d.Info().Name, spec)
}

func (s *mdSource) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = s.Close()
	d, err := s.findDriver()
	if err != nil {
		return err
	}
	rec, ok := d.(driver.VideoRecorder)
	if !ok {
		return fmt.Errorf("open %s: driver %q cannot record video", s.desc, d.Info().Label)
	}
	if err := d.Open(); err != nil {
		return fmt.Errorf("open %s: %w", s.desc, err)
	}
	p, err := chooseProp(d.Properties(), s.opts, d.Info().Label == videoTestLabel)
	if err != nil {
		_ = d.Close()
		return fmt.Errorf("open %s: %w", s.desc, err)
	}
	r, err := rec.VideoRecord(p)
	if err != nil {
		// pion's wrapper has already closed the driver.
		return fmt.Errorf("open %s: record %dx%d %s: %w", s.desc, p.Width, p.Height, p.FrameFormat, err)
	}
	s.opts.Logger.Debug("mediadevices opened", "source", s.desc, "label", d.Info().Label,
		"width", p.Width, "height", p.Height, "fps", p.FrameRate, "format", p.FrameFormat)
	s.drv, s.reader = d, r
	return nil
}

// chooseProp picks the offered format closest to the requested one
// (default 640×480, which is what face biometrics need). The synthetic
// videotest driver renders any size, so the request is used as is.
func chooseProp(props []prop.Media, o Options, synthetic bool) (prop.Media, error) {
	if len(props) == 0 {
		return prop.Media{}, errors.New("driver offers no video formats")
	}
	w, h := o.Width, o.Height
	if w == 0 && h == 0 {
		w, h = 640, 480
	}
	want := frame.Format(o.FOURCC)
	if o.FOURCC == "MJPG" {
		want = frame.FormatMJPEG
	}
	score := func(p prop.Media) float64 {
		sc := 0.0
		if w > 0 {
			sc += float64(abs(p.Width - w))
		}
		if h > 0 {
			sc += float64(abs(p.Height - h))
		}
		if o.FPS > 0 {
			sc += 10 * abs(float64(p.FrameRate)-o.FPS)
		}
		if want != "" && p.FrameFormat != want {
			sc += 1e6
		}
		return sc
	}
	best := slices.MinFunc(props, func(a, b prop.Media) int { return cmp.Compare(score(a), score(b)) })
	if synthetic {
		if o.Width > 0 && o.Height > 0 {
			best.Width, best.Height = o.Width, o.Height
		}
		if o.FPS > 0 {
			best.FrameRate = float32(o.FPS)
		}
	}
	if best.FrameRate <= 0 {
		best.FrameRate = defaultFPS
	}
	return best, nil
}

func abs[T int | float64](v T) T {
	if v < 0 {
		return -v
	}
	return v
}

func (s *mdSource) Read(ctx context.Context) (Frame, error) {
	if s.reader == nil {
		return Frame{}, fmt.Errorf("read %s: not open", s.desc)
	}
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	img, release, err := s.reader.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			// The device went away; for a camera that is a disconnect.
			return Frame{}, fmt.Errorf("read %s: device stopped: %w", s.desc, ErrNoFrame)
		}
		return Frame{}, fmt.Errorf("read %s: %w", s.desc, err)
	}
	m, err := s.conv.toMat(img)
	if release != nil {
		release()
	}
	if err != nil {
		return Frame{}, fmt.Errorf("read %s: convert %T: %w", s.desc, img, err)
	}
	return newFrame(m, time.Now()), nil
}

func (s *mdSource) Close() error {
	var err error
	if s.drv != nil {
		err = s.drv.Close()
		s.drv, s.reader = nil, nil
	}
	return errors.Join(err, s.conv.Close())
}
