// Package liveness decides whether the samples of one BWS job show a live
// person: the challenge-response head motion, a 3-D motion check that no
// flat print or screen can pass by being moved, and the passive PAD score
// of every sample, combined into one decision with BWS's error codes.
//
// The work is split the way BWS jobs arrive: Analyze runs when a sample is
// uploaded and keeps only what the decision needs (landmarks, pose,
// template, PAD score — never the image); Decide is pure computation on the
// analysed samples of a job, in upload order.
//
// Directions follow ../shared/bws-contract.md: a tag names the direction in
// which the face moves in the image as uploaded (left = the nose moves
// toward the image's left edge), in ±45° quadrants around right 0°, up 90°,
// left 180°, down 270° (geom.MotionDirection, geom.Quadrant).
package liveness

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
)

// BWS error codes a Decision carries.
const (
	CodeLiveDetectionFailed     = "LiveDetectionFailed"
	CodeChallengeResponseFailed = "ChallengeResponseFailed"
	CodeNotEnoughSamples        = "NotEnoughSamples"
)

// Sample tags.
const (
	TagAny   = "any"
	TagUp    = "up"
	TagDown  = "down"
	TagLeft  = "left"
	TagRight = "right"
)

// ValidTag reports whether t is a tag BWS clients send.
func ValidTag(t string) bool {
	switch t {
	case TagAny, TagUp, TagDown, TagLeft, TagRight:
		return true
	}
	return false
}

// Reasons a sample cannot take part in a decision (Sample.Problem). The
// first two are BWS upload error codes.
const (
	ProblemNoFace        = "NoFaceFound"
	ProblemMultipleFaces = "MultipleFacesFound"
	ProblemFaceTooSmall  = "FaceTooSmall"
	ProblemNoTemplate    = "NoTemplate"
)

// Sample is what Analyze keeps of one uploaded image: enough for Decide and
// nothing that reproduces the image.
type Sample struct {
	Tag string
	// Width and Height are the image's size in pixels.
	Width, Height int
	// Faces is the number of faces that count: the primary face and every
	// other face at least Config.SecondFaceRatio of its size and scored at
	// least Config.SecondFaceScore by the detector (small faces far in the
	// background and unsure detections do not make a sample ambiguous).
	Faces int
	// Face is the primary face (nearest the image centre); zero when
	// Faces == 0.
	Face face.Face
	// Embedding is the primary face's template; PAD its passive
	// presentation-attack score (probability of a live face, [0,1]).
	Embedding face.Embedding
	PAD       float64
	// Moire is the strongest narrow-band periodic pattern shared by the
	// face and its surroundings (log10 of a spectral peak over its ring's
	// median; see moireScore): a screen's pixel grid filmed again. 0 when
	// the face is too close to the image border to measure.
	Moire float64
	// Frame is the set of sides of the face at which a straight edge spans
	// it (see frameSides): a screen's bezel or a print's border.
	Frame uint8
	// Patch is a small contrast-normalised grey patch of the face region,
	// for tracking points between consecutive samples (see PatchSize).
	Patch Patch
	// Problem is why the sample is unusable, "" when it is usable.
	Problem string
}

// Usable reports whether the sample shows exactly one usable face.
func (s *Sample) Usable() bool { return s.Problem == "" }

// Checker analyses samples and decides on jobs. It is safe for concurrent
// use; the engine does the locking.
type Checker struct {
	e   *face.Engine
	cfg Config
}

// New returns a Checker on engine e. The configuration is validated.
func New(e *face.Engine, cfg Config) (*Checker, error) {
	if e == nil {
		return nil, errors.New("liveness: nil face engine")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Checker{e: e, cfg: cfg}, nil
}

// Config returns the checker's configuration.
func (c *Checker) Config() Config { return c.cfg }

// Analyze runs the face engine on one raw sample (8-bit BGR; the caller
// keeps ownership of img) and keeps what Decide needs. A sample without a
// usable face is not an error: it comes back with Problem set. Errors are
// for images that cannot be analysed at all and for a cancelled context.
func (c *Checker) Analyze(ctx context.Context, img gocv.Mat, tag string) (Sample, error) {
	s := Sample{Tag: tag}
	fs, err := c.e.Analyze(ctx, img, face.Options{Embed: true, PAD: true})
	if err != nil {
		return s, fmt.Errorf("analyze sample: %w", err)
	}
	s.Width, s.Height = fs.Width, fs.Height
	s.Embedding, s.PAD = fs.Embedding, fs.PAD
	primary, ok := fs.PrimaryFace()
	if !ok {
		s.Problem = ProblemNoFace
		return s, nil
	}
	s.Face = primary
	s.Faces = countFaces(fs.Faces, fs.Primary, c.cfg.SecondFaceRatio, c.cfg.SecondFaceScore)
	s.Problem = c.problem(&s)
	if s.Problem == "" {
		if s.Patch, err = extractPatch(img, &s.Face.Landmarks); err != nil {
			s.Problem = ProblemNoFace
		}
		s.Moire = moireOf(img, &s.Face)
		s.Frame = frameSides(img, &s.Face)
	}
	return s, nil
}

// countFaces counts the primary face and the faces at least ratio of its
// size that the detector scores at least minScore.
func countFaces(fs []face.Face, primary int, ratio, minScore float64) int {
	n := 0
	for i, f := range fs {
		if i == primary || f.Box.W >= ratio*fs[primary].Box.W && f.Score >= float32(minScore) {
			n++
		}
	}
	return n
}

// problem is why a sample with a primary face is unusable, "" if it is not.
func (c *Checker) problem(s *Sample) string {
	switch {
	case s.Faces == 0:
		return ProblemNoFace
	case s.Faces > 1:
		return ProblemMultipleFaces
	case s.Face.Box.W < c.cfg.MinFaceSize:
		return ProblemFaceTooSmall
	case len(s.Embedding) == 0:
		return ProblemNoTemplate
	case !finite(s.PAD) || !finite(s.Face.Pose.Yaw) || !finite(s.Face.Pose.Pitch):
		return ProblemNoFace
	}
	return ""
}

// logit maps a probability to log-odds, clamped so 0 and 1 stay finite.
func logit(p float64) float64 {
	p = math.Min(math.Max(p, 1e-6), 1-1e-6)
	return math.Log(p / (1 - p))
}
