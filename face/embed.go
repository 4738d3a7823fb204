package face

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/geom"
)

// Embedding is a face template: a unit-length 512-d vector. Two embeddings
// are compared with Similarity (cosine).
type Embedding []float32

// EmbeddingModel names the template model and its preprocessing. Templates
// with another id were made by another model and cannot be compared.
const EmbeddingModel = "faceplugin/fr_feature@0.0.1+arcface5-flip"

// Decision thresholds on Similarity between a probe and an enrolled
// template (three samples fused), measured on LFW
// (data/identities/lfw_deepfunneled_min10, `bwsagent eval recognition
// --enroll 3` reprints them; all single-image pairs give 0.26 and 0.36).
// ThresholdFMR01 is the default: about 1 impostor in 1,000 scores above it.
const (
	ThresholdFMR1  = 0.27
	ThresholdFMR01 = 0.375
)

// arcface112 is the standard 5-point template of 112×112 ArcFace crops.
var arcface112 = [5]geom.Point{
	{X: 38.2946, Y: 51.6963}, {X: 73.5318, Y: 51.5014}, {X: 56.0252, Y: 71.7366},
	{X: 41.5493, Y: 92.3655}, {X: 70.7299, Y: 92.2041},
}

const embedSize = 112

// ErrIncompatible is returned when two templates come from different models.
var ErrIncompatible = errors.New("templates of different dimension")

// Similarity is the cosine similarity of two unit embeddings, in [-1, 1].
func Similarity(a, b Embedding) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("%w: %d and %d", ErrIncompatible, len(a), len(b))
	}
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot, nil
}

// Mean averages embeddings into one unit template (used to fuse several
// enrollment samples or a face and its mirror image).
func Mean(es ...Embedding) Embedding {
	if len(es) == 0 {
		return nil
	}
	out := make(Embedding, len(es[0]))
	for _, e := range es {
		for i := range out {
			out[i] += e[i]
		}
	}
	return normalize(out)
}

func normalize(e Embedding) Embedding {
	var n float64
	for _, v := range e {
		n += float64(v) * float64(v)
	}
	n = math.Sqrt(n)
	if n == 0 {
		return e
	}
	for i := range e {
		e[i] = float32(float64(e[i]) / n)
	}
	return e
}

// alignArcFace warps the face so its five keypoints land on the ArcFace
// template (least-squares similarity: no shear, which would cost accuracy).
func alignArcFace(img gocv.Mat, kp [5]geom.Point) (gocv.Mat, error) {
	a, err := geom.SimilarityTransform(kp[:], arcface112[:])
	if err != nil {
		return gocv.NewMat(), fmt.Errorf("align face: %w", err)
	}
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	for r := 0; r < 2; r++ {
		for c := 0; c < 3; c++ {
			m.SetDoubleAt(r, c, a[r][c])
		}
	}
	out := gocv.NewMat()
	gocv.WarpAffineWithParams(img, &out, m, image.Pt(embedSize, embedSize), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	return out, nil
}

// embed computes the template of one face: the aligned crop and its mirror
// image go through the network as one batch of two and are averaged, which
// makes the template less sensitive to pose and lighting direction.
func (w *worker) embed(img gocv.Mat, lm *Landmarks) (Embedding, error) {
	defer w.timed(ModelEmbed)()
	aligned, err := alignArcFace(img, lm.Keypoints())
	if err != nil {
		return nil, err
	}
	defer aligned.Close()
	flipped := gocv.NewMat()
	defer flipped.Close()
	gocv.Flip(aligned, &flipped, 1)
	blob := gocv.NewMat()
	defer blob.Close()
	// BGR, (x−127)/128, NCHW: the preprocessing the model was measured with.
	gocv.BlobFromImages([]gocv.Mat{aligned, flipped}, &blob, 1.0/128, image.Pt(embedSize, embedSize), gocv.NewScalar(127, 127, 127, 0), false, false, gocv.MatTypeCV32F)
	w.feature.SetInput(blob, "input")
	out := w.feature.Forward("output")
	defer out.Close()
	v, err := out.DataPtrFloat32()
	if err != nil {
		return nil, fmt.Errorf("embedding output: %w", err)
	}
	if len(v)%2 != 0 || len(v) == 0 {
		return nil, fmt.Errorf("embedding output has %d values", len(v))
	}
	d := len(v) / 2
	a := normalize(append(Embedding(nil), v[:d]...))
	b := normalize(append(Embedding(nil), v[d:]...))
	return Mean(a, b), nil
}
