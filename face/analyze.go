package face

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/geom"
)

// Face is one detected face with everything the per-frame path measures.
type Face struct {
	Box       Rect      // square face box in image pixels
	Score     float32   // detector confidence
	Landmarks Landmarks // 68 points
	Pose      geom.Pose // degrees, image coordinates (see geom.Pose)
	PoseRMSE  float64   // reprojection error of the pose fit, pixels
	Quality   QualitySignals
	Warnings  []string // quality warning codes; never nil
}

// Sample is the full analysis of one image, as an upload needs it.
type Sample struct {
	Width, Height int
	Faces         []Face // largest first
	// Primary is the index of the face the sample is about (the one nearest
	// the image centre), -1 when there is none.
	Primary int
	// Embedding and PAD describe the primary face; empty without one.
	Embedding Embedding
	PAD       float64 // probability that the primary face is live, [0,1]
}

// PrimaryFace returns the primary face.
func (s *Sample) PrimaryFace() (Face, bool) {
	if s.Primary < 0 || s.Primary >= len(s.Faces) {
		return Face{}, false
	}
	return s.Faces[s.Primary], true
}

// ErrNoFace is returned when an operation needs a face and none was found.
var ErrNoFace = errors.New("no face found")

// Options selects the costly parts of an analysis.
type Options struct {
	Embed bool // compute the primary face's template (~8 ms)
	PAD   bool // compute the primary face's passive PAD score (~4 ms)
}

// Detect finds every face in a BGR image with landmarks, pose and quality.
func (e *Engine) Detect(ctx context.Context, img gocv.Mat) ([]Face, error) {
	s, err := e.Analyze(ctx, img, Options{})
	return s.Faces, err
}

// Analyze runs detection, landmarks, pose and quality on every face, and the
// template and PAD score on the primary face, on one worker.
func (e *Engine) Analyze(ctx context.Context, img gocv.Mat, opt Options) (Sample, error) {
	s := Sample{Primary: -1}
	if err := checkImage(img); err != nil {
		return s, err
	}
	s.Width, s.Height = img.Cols(), img.Rows()
	err := e.with(ctx, func(w *worker) error {
		dets, err := w.detectRFB(img, e.cfg.DetectThreshold)
		if err != nil {
			return err
		}
		for _, d := range dets {
			if err := ctx.Err(); err != nil {
				return err
			}
			f, err := w.describe(img, d.Square, d.Score, e.cfg.MinFaceSize)
			if err != nil {
				return err
			}
			s.Faces = append(s.Faces, f)
		}
		sortBySize(s.Faces)
		if len(s.Faces) > 1 {
			for i := range s.Faces {
				s.Faces[i].Warnings = append(s.Faces[i].Warnings, WarnMultipleFaces)
			}
		}
		s.Primary = nearestCentre(s.Faces, s.Width, s.Height)
		if s.Primary < 0 {
			return nil
		}
		p := &s.Faces[s.Primary]
		if opt.Embed {
			if s.Embedding, err = w.embed(img, &p.Landmarks); err != nil {
				return err
			}
		}
		if opt.PAD {
			if s.PAD, err = w.padScore(img, p.Box); err != nil {
				return err
			}
		}
		return nil
	})
	return s, err
}

// Embed computes the template of a face found earlier in the same image.
func (e *Engine) Embed(ctx context.Context, img gocv.Mat, f Face) (Embedding, error) {
	if err := checkImage(img); err != nil {
		return nil, err
	}
	var emb Embedding
	err := e.with(ctx, func(w *worker) error {
		var err error
		emb, err = w.embed(img, &f.Landmarks)
		return err
	})
	return emb, err
}

// PAD scores a face found earlier in the same image: the probability that it
// is a live person rather than a print or a screen.
func (e *Engine) PAD(ctx context.Context, img gocv.Mat, f Face) (float64, error) {
	if err := checkImage(img); err != nil {
		return 0, err
	}
	var p float64
	err := e.with(ctx, func(w *worker) error {
		var err error
		p, err = w.padScore(img, f.Box)
		return err
	})
	return p, err
}

// describe measures one face given its square box.
func (w *worker) describe(img gocv.Mat, box Rect, score float32, minFace int) (Face, error) {
	lm, err := w.landmarks68(img, box)
	if err != nil {
		return Face{}, err
	}
	f := Face{Box: box, Score: score, Landmarks: lm}
	f.Pose, f.PoseRMSE = poseOf(&lm, img.Cols(), img.Rows())
	f.Quality = measureQuality(img, box)
	f.Warnings = qualityWarnings(f.Quality, box, f.Pose, img.Cols(), img.Rows(), minFace)
	return f, nil
}

func checkImage(img gocv.Mat) error {
	if img.Empty() || img.Cols() < 8 || img.Rows() < 8 {
		return fmt.Errorf("image of %d×%d pixels is too small to hold a face", img.Cols(), img.Rows())
	}
	if img.Type() != gocv.MatTypeCV8UC3 {
		return fmt.Errorf("image must be 8-bit BGR, got Mat type %v", img.Type())
	}
	return nil
}

func sortBySize(fs []Face) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Box.W > fs[j-1].Box.W; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func nearestCentre(fs []Face, w, h int) int {
	best, bestD := -1, math.Inf(1)
	for i, f := range fs {
		cx, cy := f.Box.Center()
		if d := math.Hypot(cx-float64(w)/2, cy-float64(h)/2); d < bestD {
			best, bestD = i, d
		}
	}
	return best
}
