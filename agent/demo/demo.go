// Package demo is the agent's camera for machines without one: a synthetic
// 3-D head (face/synth) textured from a photo, turning left, right, up and
// down in a loop, so that the preview, the kiosk page and a capture session
// with challenge-response all work on a fresh machine. It is a
// capture.Source; package capture itself knows nothing about faces.
//
// The head is built from gocv's images/face.jpg (Apache-2.0, © The Hybrid
// Group), embedded so that an installed binary needs no Go module cache.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"image"
	"math"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/capture"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/synth"
)

// degPerSec is how fast the head turns: briskly, since a session captures
// at the first frame 6° past its reference and larger steps between
// samples are measured more surely by the liveness checker.
const degPerSec = 90.0

//go:embed face.jpg
var facePhoto []byte

// Analyzer finds the landmarks the head is fitted to: a *face.Engine.
type Analyzer interface {
	Analyze(ctx context.Context, img gocv.Mat, opt face.Options) (face.Sample, error)
}

// Photo returns the embedded frontal face photo scaled and centre-cropped to
// w×h (0×0: its own 640×480). The caller closes the Mat.
func Photo(w, h int) (gocv.Mat, error) {
	m, err := gocv.IMDecode(facePhoto, gocv.IMReadColor)
	if err != nil || m.Empty() {
		_ = m.Close()
		return gocv.Mat{}, fmt.Errorf("demo: decode the embedded photo: %v", err)
	}
	if w == 0 || h == 0 || (w == m.Cols() && h == m.Rows()) {
		return m, nil
	}
	defer m.Close()
	// Cover w×h, then crop the centre: the face keeps its proportions.
	s := math.Max(float64(w)/float64(m.Cols()), float64(h)/float64(m.Rows()))
	sw, sh := max(w, int(math.Ceil(float64(m.Cols())*s))), max(h, int(math.Ceil(float64(m.Rows())*s)))
	scaled := gocv.NewMat()
	defer scaled.Close()
	gocv.Resize(m, &scaled, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
	roi := scaled.Region(image.Rect((sw-w)/2, (sh-h)/2, (sw-w)/2+w, (sh-h)/2+h))
	defer roi.Close()
	return roi.Clone(), nil
}

// NewHead fits a synthetic head to the embedded photo at w×h.
func NewHead(ctx context.Context, a Analyzer, w, h int) (*synth.Head, error) {
	m, err := Photo(w, h)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	s, err := a.Analyze(ctx, m, face.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo: analyze the photo: %w", err)
	}
	f, ok := s.PrimaryFace()
	if !ok {
		return nil, errors.New("demo: no face in the demo photo")
	}
	img, err := m.ToImage()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	head, err := synth.NewHead(img, [68]geom.Point(f.Landmarks))
	if err != nil {
		return nil, fmt.Errorf("demo: head: %w", err)
	}
	return head, nil
}

// Path returns one cycle of head poses at fps: centre, then out to each of
// left, right, up and down and back, a short hold at every end. Each
// excursion returns to the centre so that, wherever a session took its
// last sample, every direction is reached again by more than a capture's
// 6° within one cycle (about 5 s).
func Path(fps float64) []geom.Pose {
	const yawAmp, pitchAmp = 18.0, 15.0
	step := degPerSec / fps
	hold := int(math.Round(0.5 * fps))
	var path []geom.Pose
	add := func(p geom.Pose, n int) {
		for range n {
			path = append(path, p)
		}
	}
	excursion := func(dir geom.Pose, amp float64) {
		n := int(math.Ceil(amp / step))
		for i := 1; i <= n; i++ {
			a := amp * float64(i) / float64(n)
			path = append(path, geom.Pose{Yaw: dir.Yaw * a, Pitch: dir.Pitch * a})
		}
		add(geom.Pose{Yaw: dir.Yaw * amp, Pitch: dir.Pitch * amp}, hold)
		for i := n - 1; i >= 0; i-- {
			a := amp * float64(i) / float64(n)
			path = append(path, geom.Pose{Yaw: dir.Yaw * a, Pitch: dir.Pitch * a})
		}
		add(geom.Pose{}, hold)
	}
	add(geom.Pose{}, hold)
	excursion(geom.Pose{Yaw: -1}, yawAmp)
	excursion(geom.Pose{Yaw: 1}, yawAmp)
	excursion(geom.Pose{Pitch: 1}, pitchAmp)
	excursion(geom.Pose{Pitch: -1}, pitchAmp)
	return path
}

// Source plays the head along Path in a loop at FPS and, while a capture
// session runs, follows its prompts as a cooperative person would (see
// Publish). Frames are rendered once per pose and cached while the source
// is open (a few dozen poses, about 1 MB each at 640×480), so a running
// demo costs a copy per frame.
type Source struct {
	head *synth.Head
	fps  float64
	path []geom.Pose

	cache map[geom.Pose]gocv.Mat
	i     int
	next  time.Time
	open  bool

	mu sync.Mutex
	// pose is the head's current pose in the camera's (unmirrored) view;
	// following is set by a session's prompts, target is where they asked
	// the head to go, returning brings it back to the centre of the loop.
	pose       geom.Pose
	following  bool
	returning  bool
	target     geom.Pose
	lastPrompt time.Time
}

const (
	// promptTurn is how far each prompted turn goes; a session captures at
	// 6°, the liveness checker wants 4° in the prompted direction.
	promptTurn = 12.0
	// maxFollowYaw and maxFollowPitch keep followed turns natural.
	maxFollowYaw, maxFollowPitch = 24.0, 18.0
	// followIdle returns the head to its loop when prompts stop (a session
	// that ended without a result event reaching us).
	followIdle = 40 * time.Second
	// maxCache bounds the rendered frames kept.
	maxCache = 128
)

// Publish receives a capture session's events (wire it next to the preview
// hub): a prompt to turn left, right, up or down turns the head 12° that
// way from where it is (within a natural range), the first "any" of a try
// faces the camera and a later one turns the head, and the result sends it
// back to its loop. Directions
// are the sample's, which is mirrored once (selfie view) between the camera
// and the sample, so the camera view turns the other way in yaw.
func (s *Source) Publish(v any) error {
	ev, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev["type"] {
	case "result":
		s.following, s.returning = false, true
	case "prompt":
		if !s.following {
			s.following, s.returning, s.target = true, false, s.pose
		}
		s.lastPrompt = time.Now()
		t := s.target
		switch ev["direction"] {
		case "left":
			t.Yaw += promptTurn
		case "right":
			t.Yaw -= promptTurn
		case "up":
			t.Pitch += promptTurn
		case "down":
			t.Pitch -= promptTurn
		default:
			// "any": the first prompt of a try asks to look into the
			// camera; a later one (tokens without challenge) for some move.
			if step, _ := ev["step"].(float64); step > 1 {
				t.Yaw += math.Copysign(promptTurn, -t.Yaw-0.5)
			} else {
				t = geom.Pose{}
			}
		}
		t.Yaw = math.Max(-maxFollowYaw, math.Min(maxFollowYaw, t.Yaw))
		t.Pitch = math.Max(-maxFollowPitch, math.Min(maxFollowPitch, t.Pitch))
		s.target = t
	}
	return nil
}

// nextPose advances the head by one frame.
func (s *Source) nextPose() geom.Pose {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.following && time.Since(s.lastPrompt) > followIdle {
		s.following, s.returning = false, true
	}
	switch {
	case s.following:
		s.pose = approach(s.pose, s.target, s.step())
	case s.returning:
		if s.pose = approach(s.pose, geom.Pose{}, s.step()); s.pose == (geom.Pose{}) {
			s.returning, s.i = false, 0
		}
	default:
		s.pose = s.path[s.i%len(s.path)]
		s.i++
	}
	return s.pose
}

func (s *Source) step() float64 { return degPerSec / s.fps }

// approach moves p toward target by at most step degrees per axis.
func approach(p, target geom.Pose, step float64) geom.Pose {
	mv := func(v, t float64) float64 {
		switch {
		case v < t:
			return math.Min(t, v+step)
		case v > t:
			return math.Max(t, v-step)
		}
		return v
	}
	return geom.Pose{Yaw: mv(p.Yaw, target.Yaw), Pitch: mv(p.Pitch, target.Pitch)}
}

// NewSource returns a source playing head at fps (default 25).
func NewSource(head *synth.Head, fps float64) *Source {
	if fps <= 0 {
		fps = 25
	}
	return &Source{head: head, fps: fps, path: Path(fps)}
}

// String describes the source for logs.
func (s *Source) String() string { return fmt.Sprintf("demo(synthetic head @%g fps)", s.fps) }

// Open starts the cycle from its beginning.
func (s *Source) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.head == nil {
		return &capture.PermanentError{Err: errors.New("demo: no head")}
	}
	s.cache = map[geom.Pose]gocv.Mat{}
	s.next, s.open = time.Time{}, true
	return nil
}

// Read waits for the next frame time and returns the next pose's frame.
func (s *Source) Read(ctx context.Context) (capture.Frame, error) {
	if !s.open {
		return capture.Frame{}, errors.New("demo: read before open")
	}
	if err := s.pace(ctx); err != nil {
		return capture.Frame{}, err
	}
	p := s.nextPose()
	m, ok := s.cache[p]
	if !ok {
		if len(s.cache) >= maxCache {
			for k, old := range s.cache {
				_ = old.Close()
				delete(s.cache, k)
			}
		}
		var err error
		if m, err = gocv.ImageToMatRGB(s.head.Render(p, synth.RenderOptions{})); err != nil {
			return capture.Frame{}, fmt.Errorf("demo: render: %w", err)
		}
		s.cache[p] = m
	}
	c := m.Clone()
	return capture.Frame{Mat: c, Time: time.Now(), Width: c.Cols(), Height: c.Rows()}, nil
}

// pace releases frames on a fixed schedule; after a stall it restarts the
// schedule instead of bursting to catch up.
func (s *Source) pace(ctx context.Context) error {
	interval := time.Duration(float64(time.Second) / s.fps)
	now := time.Now()
	if s.next.IsZero() || now.Sub(s.next) > 4*interval {
		s.next = now
	}
	if d := s.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.next = s.next.Add(interval)
	return nil
}

// Close releases the cached frames; Open may be called again.
func (s *Source) Close() error {
	for _, m := range s.cache {
		_ = m.Close()
	}
	s.cache, s.open = nil, false
	return nil
}
