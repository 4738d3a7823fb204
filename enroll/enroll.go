// Package enroll turns face samples into enrolled templates and matches
// probes against them: 1:1 verification against one class and 1:N
// identification over a gallery of classes. It knows nothing of storage or
// HTTP; callers load and save templates.
package enroll

import (
	"errors"
	"fmt"
	"math"

	"github.com/bwsagent/bwsagent/face"
)

// Template is one enrolled template of a class.
type Template struct {
	Model   string         // the embedding model id (face.EmbeddingModel)
	Vector  face.Embedding // unit length
	Quality float64        // [0,1]; higher is better
}

// Errors.
var (
	ErrNoSamples       = errors.New("no usable samples")
	ErrModelMismatch   = errors.New("template made by another model")
	ErrNoTemplates     = errors.New("class has no templates")
	ErrDimensionChange = errors.New("template dimension differs")
)

// Sample is one analysed enrollment or probe sample.
type Sample struct {
	Embedding face.Embedding
	Quality   float64 // [0,1], from SampleQuality
}

// SampleQuality maps a face's quality measurements to [0,1]: frontal, sharp,
// well exposed, large faces make better templates.
func SampleQuality(f face.Face) float64 {
	q := 1.0
	q *= clamp01(1 - (math.Abs(f.Pose.Yaw)+math.Abs(f.Pose.Pitch))/90)
	q *= clamp01(f.Box.W / 160)
	q *= clamp01(f.Quality.Sharpness / 100)
	if f.Quality.Brightness < 60 || f.Quality.Brightness > 200 {
		q *= 0.5
	}
	return clamp01(q)
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// Fuse makes one template from several samples of the same person: a
// quality-weighted mean of the unit embeddings, renormalised. Fusing the
// samples of one enrollment lowers FNMR at FMR 0.1 % on LFW from 1.56 % (one
// photo) to 0.92 % (three) — see README.
func Fuse(samples []Sample) (Template, error) {
	var dim int
	var sum []float64
	var total float64
	for _, s := range samples {
		if len(s.Embedding) == 0 {
			continue
		}
		if dim == 0 {
			dim = len(s.Embedding)
			sum = make([]float64, dim)
		}
		if len(s.Embedding) != dim {
			return Template{}, fmt.Errorf("fuse: %w: %d and %d", ErrDimensionChange, dim, len(s.Embedding))
		}
		w := math.Max(s.Quality, 0.05) // a poor sample still counts a little
		for i, v := range s.Embedding {
			sum[i] += w * float64(v)
		}
		total += w
	}
	if dim == 0 {
		return Template{}, ErrNoSamples
	}
	var n float64
	for _, v := range sum {
		n += v * v
	}
	n = math.Sqrt(n)
	if n == 0 {
		return Template{}, ErrNoSamples
	}
	vec := make(face.Embedding, dim)
	for i, v := range sum {
		vec[i] = float32(v / n)
	}
	var q float64
	for _, s := range samples {
		q = math.Max(q, s.Quality)
	}
	return Template{Model: face.EmbeddingModel, Vector: vec, Quality: q}, nil
}

// Verify scores a probe against a class's templates: the best similarity.
// Templates of another model are skipped; none usable is ErrNoTemplates.
func Verify(probe face.Embedding, templates []Template) (float64, error) {
	best := math.Inf(-1)
	for _, t := range templates {
		if t.Model != face.EmbeddingModel {
			continue
		}
		s, err := face.Similarity(probe, t.Vector)
		if err != nil {
			return 0, err
		}
		best = math.Max(best, s)
	}
	if math.IsInf(best, -1) {
		return 0, ErrNoTemplates
	}
	return best, nil
}

// KeepBest returns at most max templates, the highest quality first, so a
// class re-enrolled many times keeps its best samples.
func KeepBest(ts []Template, max int) []Template {
	out := append([]Template(nil), ts...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Quality > out[j-1].Quality; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}
