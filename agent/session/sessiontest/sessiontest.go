// Package sessiontest provides the test doubles capture sessions are tested
// and demonstrated with: a synthetic person who follows the session's
// prompts (a photo-textured 3-D head from face/synth) or a static photo
// that never does (a photo attack), a fake BWS service that judges the
// uploaded samples by head pose as the real service's challenge check
// does, and a fake clock.
package sessiontest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/capture"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/synth"
)

// Person renders frames of someone in front of the camera. It turns its
// head as prompted (Publish receives the session's events) unless Frozen;
// with a Head the frames show it, with only a Photo (a printed photo) or
// nothing (fast state-machine tests with PoseTracker) they do not. Frames are rendered as a
// raw camera sees them; set Mirrored when the consumer mirrors (capture
// sessions do), so that the move in the mirrored sample equals the prompt.
type Person struct {
	Head     *synth.Head
	Photo    image.Image // used when Head is nil; neither: a blank 32×32 frame
	Mirrored bool
	// Frozen ignores prompts: a photo attack, or someone who never moves.
	Frozen bool
	// Step is the turn per frame in degrees (default 2) and Amplitude the
	// size of each prompted move (default 12).
	Step, Amplitude float64

	mu     sync.Mutex
	pose   geom.Pose // in the consumer's (mirrored) image
	target geom.Pose
	cache  map[[2]int]gocv.Mat
	static gocv.Mat
}

// Publish implements session.Publisher: prompts set the next target pose.
func (p *Person) Publish(v any) error {
	m, ok := v.(map[string]any)
	if !ok || m["type"] != "prompt" {
		return nil
	}
	d, _ := m["direction"].(string)
	amp := p.Amplitude
	if amp == 0 {
		amp = 12
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.pose
	switch d {
	case "left":
		t.Yaw -= amp
	case "right":
		t.Yaw += amp
	case "up":
		t.Pitch += amp
	case "down":
		t.Pitch -= amp
	case "any":
		// Second "any" of a session without challenge: some move; the
		// first: hold still (the target is where we are).
		if m["step"] != nil && m["step"].(float64) > 1 { //nolint:forcetypeassert // from our own JSON
			t.Yaw += amp
		}
	}
	// Stay within a natural range.
	t.Yaw = math.Max(-25, math.Min(25, t.Yaw))
	t.Pitch = math.Max(-20, math.Min(20, t.Pitch))
	p.target = t
	return nil
}

// PoseTracker is a session.Tracker that reports the Person's pose
// without looking at the image: state-machine tests at full speed.
type PoseTracker struct{ P *Person }

func (t PoseTracker) Track(_ context.Context, _ gocv.Mat) (face.Face, bool, error) {
	return face.Face{Pose: t.P.Pose(), Warnings: []string{}}, true, nil
}

// Pose is the current pose in the consumer's image.
func (p *Person) Pose() geom.Pose {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pose
}

// Frame advances the head one step toward its target and renders it; the
// caller closes the Mat.
func (p *Person) Frame() (gocv.Mat, geom.Pose, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.Frozen {
		step := p.Step
		if step == 0 {
			step = 2
		}
		p.pose.Yaw = approach(p.pose.Yaw, p.target.Yaw, step)
		p.pose.Pitch = approach(p.pose.Pitch, p.target.Pitch, step)
	}
	if p.Head == nil {
		if p.static.Ptr() == nil {
			if p.Photo == nil {
				p.static = gocv.NewMatWithSize(32, 32, gocv.MatTypeCV8UC3)
			} else {
				m, err := gocv.ImageToMatRGB(p.Photo)
				if err != nil {
					return gocv.Mat{}, geom.Pose{}, fmt.Errorf("sessiontest: photo: %w", err)
				}
				p.static = m
			}
		}
		return p.static.Clone(), p.pose, nil
	}
	// Renders are cached per half degree: a held pose costs nothing.
	key := [2]int{int(math.Round(p.pose.Yaw * 2)), int(math.Round(p.pose.Pitch * 2))}
	if p.cache == nil {
		p.cache = map[[2]int]gocv.Mat{}
	}
	m, ok := p.cache[key]
	if !ok {
		raw := geom.Pose{Yaw: float64(key[0]) / 2, Pitch: float64(key[1]) / 2}
		if p.Mirrored {
			raw.Yaw = -raw.Yaw // the consumer flips the image back
		}
		var err error
		if m, err = gocv.ImageToMatRGB(p.Head.Render(raw, synth.RenderOptions{})); err != nil {
			return gocv.Mat{}, geom.Pose{}, fmt.Errorf("sessiontest: render: %w", err)
		}
		p.cache[key] = m
	}
	return m.Clone(), p.pose, nil
}

func approach(v, target, step float64) float64 {
	switch {
	case v < target:
		return math.Min(target, v+step)
	case v > target:
		return math.Max(target, v-step)
	}
	return v
}

// Close releases cached renders.
func (p *Person) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, m := range p.cache {
		_ = m.Close()
		delete(p.cache, k)
	}
	_ = p.static.Close()
	p.static = gocv.Mat{}
	return nil
}

// Source adapts a Person to capture.Source for a capture.Loop, at fps in
// real time (demo and browser tests).
type Source struct {
	P   *Person
	FPS float64
	t   *time.Ticker
}

func (s *Source) Open(context.Context) error {
	if s.t == nil {
		s.t = time.NewTicker(time.Duration(float64(time.Second) / max(1, s.FPS)))
	}
	return nil
}
func (s *Source) Close() error   { return nil }
func (s *Source) String() string { return "synthetic person" }
func (s *Source) Read(ctx context.Context) (capture.Frame, error) {
	select {
	case <-ctx.Done():
		return capture.Frame{}, ctx.Err()
	case <-s.t.C:
	}
	m, _, err := s.P.Frame()
	if err != nil {
		return capture.Frame{}, err
	}
	return capture.Frame{Mat: m, Time: time.Now(), Width: m.Cols(), Height: m.Rows()}, nil
}

// Clock is a fake capture.Clock: time moves only with Advance.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock starts at a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves time on and fires due timers.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// ScriptedFrames is a session.FrameSource over a Person on a fake Clock:
// every Latest advances the clock by Interval and returns the next frame,
// so a session runs as fast as the CPU allows with correct timing.
type ScriptedFrames struct {
	P        *Person
	Clock    *Clock
	Interval time.Duration
	seq      uint64
}

func (s *ScriptedFrames) Latest(ctx context.Context) (capture.Frame, error) {
	if err := ctx.Err(); err != nil {
		return capture.Frame{}, err
	}
	s.Clock.Advance(s.Interval)
	m, _, err := s.P.Frame()
	if err != nil {
		return capture.Frame{}, err
	}
	s.seq++
	return capture.Frame{Mat: m, Seq: s.seq, Time: s.Clock.Now(), Width: m.Cols(), Height: m.Rows()}, nil
}

func (s *ScriptedFrames) Close() error { return nil }

// Token makes a BWS-shaped JWT with the task and challenge claims (signed
// with a throw-away key: sessions do not verify, the service does).
func Token(op bws.Operation, maxTries int, ch bws.Challenge, bcid string) (string, error) {
	flags := bws.TaskLiveDetection
	if ch != nil {
		flags |= bws.TaskChallengeResponse
	}
	task, err := bws.NewTask(op, maxTries, flags)
	if err != nil {
		return "", err
	}
	claims := map[string]any{"task": int(task), "bcid": bcid, "iss": "BWS", "tokenid": fmt.Sprint(time.Now().UnixNano())}
	if ch != nil {
		s, err := ch.Encode()
		if err != nil {
			return "", err
		}
		claims["challenge"] = s
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(b) + "." + enc.EncodeToString([]byte("test-signature")), nil
}
