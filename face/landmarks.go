package face

import (
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/geom"
)

// Landmarks are the 68 iBUG points of a face in image pixels: 0–16 jaw
// (from image-left in a frontal view), 17–26 brows, 27–35 nose, 36–47 eyes,
// 48–67 mouth.
type Landmarks [68]geom.Point

// The 68-point model (fr_landmark.onnx) takes the square face box as a 64×64
// grey image scaled by 1/256 and returns the points normalised to the box.
const landmarkSize = 64

// cropAffine returns the 2×3 affine mapping box to a size×size image.
func cropAffine(box Rect, size int) gocv.Mat {
	s := float64(size) / box.W
	sy := float64(size) / box.H
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	m.SetDoubleAt(0, 0, s)
	m.SetDoubleAt(0, 2, -box.X*s)
	m.SetDoubleAt(1, 1, sy)
	m.SetDoubleAt(1, 2, -box.Y*sy)
	return m
}

// cropResize cuts box out of img at size×size; parts outside the image are
// black, so faces at the frame's edge keep their geometry.
func cropResize(img gocv.Mat, box Rect, size int) gocv.Mat {
	m := cropAffine(box, size)
	defer m.Close()
	out := gocv.NewMat()
	gocv.WarpAffineWithParams(img, &out, m, image.Pt(size, size), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	return out
}

// landmarks68 runs the landmark model on a square box.
func (w *worker) landmarks68(img gocv.Mat, box Rect) (Landmarks, error) {
	defer w.timed(ModelLandmarks)()
	crop := cropResize(img, box, landmarkSize)
	defer crop.Close()
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(crop, &grey, gocv.ColorBGRToGray)
	blob := gocv.BlobFromImage(grey, 1.0/256, image.Pt(landmarkSize, landmarkSize), gocv.NewScalar(0, 0, 0, 0), false, false)
	defer blob.Close()
	w.landmark.SetInput(blob, "input")
	out := w.landmark.Forward("output")
	defer out.Close()
	v, err := out.DataPtrFloat32()
	if err != nil {
		return Landmarks{}, fmt.Errorf("landmark output: %w", err)
	}
	if len(v) != 136 {
		return Landmarks{}, fmt.Errorf("landmark output has %d values, want 136", len(v))
	}
	var lm Landmarks
	for i := range lm {
		lm[i] = geom.Point{X: box.X + float64(v[2*i])*box.W, Y: box.Y + float64(v[2*i+1])*box.H}
	}
	return lm, nil
}

// Keypoints are the five points of the ArcFace alignment: the eye centres
// (image-left eye first), the nose tip and the mouth corners (image-left first).
func (lm *Landmarks) Keypoints() [5]geom.Point {
	return [5]geom.Point{mean(lm[36:42]), mean(lm[42:48]), lm[30], lm[48], lm[54]}
}

// Bounds is the landmarks' bounding rectangle.
func (lm *Landmarks) Bounds() Rect {
	minX, minY, maxX, maxY := lm[0].X, lm[0].Y, lm[0].X, lm[0].Y
	for _, p := range lm[1:] {
		minX, maxX = min(minX, p.X), max(maxX, p.X)
		minY, maxY = min(minY, p.Y), max(maxY, p.Y)
	}
	return Rect{minX, minY, maxX - minX, maxY - minY}
}

func mean(ps []geom.Point) geom.Point {
	var m geom.Point
	for _, p := range ps {
		m.X += p.X
		m.Y += p.Y
	}
	n := float64(len(ps))
	return geom.Point{X: m.X / n, Y: m.Y / n}
}
