package face

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"

	"gocv.io/x/gocv"
)

// Detection is a face found by a detector, in image pixels.
type Detection struct {
	// Box is the detector's box; Square is the square box (side = box height,
	// same centre) that the landmark and PAD models were trained on.
	Box, Square Rect
	Score       float32
}

// Rect is a float rectangle (x, y, width, height) in image pixels.
type Rect struct{ X, Y, W, H float64 }

// Center returns the rectangle's centre.
func (r Rect) Center() (float64, float64) { return r.X + r.W/2, r.Y + r.H/2 }

// Int rounds to an image.Rectangle.
func (r Rect) Int() image.Rectangle {
	return image.Rect(int(math.Round(r.X)), int(math.Round(r.Y)), int(math.Round(r.X+r.W)), int(math.Round(r.Y+r.H)))
}

func (r Rect) iou(o Rect) float64 {
	x0, y0 := math.Max(r.X, o.X), math.Max(r.Y, o.Y)
	x1, y1 := math.Min(r.X+r.W, o.X+o.W), math.Min(r.Y+r.H, o.Y+o.H)
	if x1 <= x0 || y1 <= y0 {
		return 0
	}
	inter := (x1 - x0) * (y1 - y0)
	return inter / (r.W*r.H + o.W*o.H - inter)
}

func squareOf(b Rect) Rect {
	cx, cy := b.Center()
	s := b.H
	return Rect{cx - s/2, cy - s/2, s, s}
}

// nms keeps the highest-scoring of overlapping detections, best first.
func nms(dets []Detection, iouThreshold float64) []Detection {
	sort.Slice(dets, func(i, j int) bool { return dets[i].Score > dets[j].Score })
	var keep []Detection
	for _, d := range dets {
		ok := true
		for _, k := range keep {
			if d.Box.iou(k.Box) > iouThreshold {
				ok = false
				break
			}
		}
		if ok {
			keep = append(keep, d)
		}
	}
	return keep
}

// The RFB-320 detector (fr_detect.onnx): a 320×240 input, (x−127)/128, RGB;
// boxes come out already decoded as corners in [0,1].
const (
	rfbW, rfbH   = 320, 240
	rfbNMS       = 0.4
	rfbMaxPrecan = 750
)

// letterbox pads img on the right and bottom to the aspect ratio w:h so the
// detector sees undistorted faces; it returns the padded size.
func letterbox(img gocv.Mat, w, h int) (gocv.Mat, int, int) {
	cols, rows := img.Cols(), img.Rows()
	pw, ph := cols, rows
	if cols*h > rows*w {
		ph = (cols*h + w - 1) / w
	} else {
		pw = (rows*w + h - 1) / h
	}
	out := gocv.NewMat()
	gocv.CopyMakeBorder(img, &out, 0, ph-rows, 0, pw-cols, gocv.BorderConstant, color.RGBA{})
	return out, pw, ph
}

// detectRFB finds every face in a BGR image.
func (w *worker) detectRFB(img gocv.Mat, threshold float32) ([]Detection, error) {
	defer w.timed(ModelDetect)()
	padded, pw, ph := letterbox(img, rfbW, rfbH)
	defer padded.Close()
	blob := gocv.BlobFromImage(padded, 1.0/128, image.Pt(rfbW, rfbH), gocv.NewScalar(127, 127, 127, 0), true, false)
	defer blob.Close()
	w.detect.SetInput(blob, "input")
	outs := w.detect.ForwardLayers([]string{"boxes", "scores"})
	defer closeAll(outs)
	boxes, err := outs[0].DataPtrFloat32()
	if err != nil {
		return nil, fmt.Errorf("detector boxes: %w", err)
	}
	scores, err := outs[1].DataPtrFloat32()
	if err != nil {
		return nil, fmt.Errorf("detector scores: %w", err)
	}
	n := len(scores) / 2
	if len(boxes) != 4*n {
		return nil, fmt.Errorf("detector output shapes disagree: %d boxes, %d scores", len(boxes)/4, n)
	}
	var cands []Detection
	for i := 0; i < n; i++ {
		s := scores[2*i+1]
		if s < threshold {
			continue
		}
		x0, y0 := float64(boxes[4*i])*float64(pw), float64(boxes[4*i+1])*float64(ph)
		x1, y1 := float64(boxes[4*i+2])*float64(pw), float64(boxes[4*i+3])*float64(ph)
		if x1 <= x0 || y1 <= y0 {
			continue
		}
		b := Rect{x0, y0, x1 - x0, y1 - y0}
		cands = append(cands, Detection{Box: b, Square: squareOf(b), Score: s})
	}
	if len(cands) > rfbMaxPrecan {
		sort.Slice(cands, func(i, j int) bool { return cands[i].Score > cands[j].Score })
		cands = cands[:rfbMaxPrecan]
	}
	return nms(cands, rfbNMS), nil
}

func closeAll(ms []gocv.Mat) {
	for i := range ms {
		ms[i].Close()
	}
}
