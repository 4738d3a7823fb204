package face

import (
	"context"
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/geom"
)

// The per-frame tracking path: BlazeFace short-range (128×128, ~2.5 ms)
// finds the face, the 68-point model and a PnP fit give landmarks and pose.
// It is tuned for one person close to a kiosk camera; Analyze (RFB-320) is
// the thorough detector for uploaded samples.
const (
	blazeSize      = 128
	blazeThreshold = 0.6
	blazeNMS       = 0.3
	// blazeToSquare maps BlazeFace's box (a tight box from brows to chin)
	// to the square box the landmark model was trained on: the square side is
	// this many BlazeFace box heights, its centre moved by blazeShiftY box
	// heights (negative: up). Fitted on LFW faces against the RFB detector's squares
	// (face/calibrate_test.go reprints the figures).
	blazeToSquare = 1.24
	blazeShiftY   = -0.126
)

// blazeAnchors are the SSD anchor centres of BlazeFace front: a 16×16 grid
// with 2 anchors per cell and an 8×8 grid with 6, in that output order.
type blazeAnchors struct{ small, large [][2]float32 }

func newBlazeAnchors() blazeAnchors {
	grid := func(n, per int) [][2]float32 {
		out := make([][2]float32, 0, n*n*per)
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				for k := 0; k < per; k++ {
					out = append(out, [2]float32{(float32(x) + 0.5) / float32(n), (float32(y) + 0.5) / float32(n)})
				}
			}
		}
		return out
	}
	return blazeAnchors{small: grid(16, 2), large: grid(8, 6)}
}

// detectBlaze finds faces with BlazeFace; the image is letterboxed to a square.
func (w *worker) detectBlaze(img gocv.Mat, anchors blazeAnchors) ([]Detection, error) {
	defer w.timed(ModelTrack)()
	padded, side, _ := letterbox(img, 1, 1)
	defer padded.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(padded, &small, image.Pt(blazeSize, blazeSize), 0, 0, gocv.InterpolationLinear)
	rgb := gocv.NewMat()
	defer rgb.Close()
	gocv.CvtColor(small, &rgb, gocv.ColorBGRToRGB)
	f32 := gocv.NewMat()
	defer f32.Close()
	rgb.ConvertToWithParams(&f32, gocv.MatTypeCV32FC3, 1.0/127.5, -1)
	// The ONNX graph takes NHWC and transposes inside: wrap the HWC pixels
	// as a 1×128×128×3 blob without reordering.
	blob, err := gocv.NewMatWithSizesFromBytes([]int{1, blazeSize, blazeSize, 3}, gocv.MatTypeCV32F, f32.ToBytes())
	if err != nil {
		return nil, fmt.Errorf("BlazeFace input: %w", err)
	}
	defer blob.Close()
	w.blaze.SetInput(blob, "")
	outs := w.blaze.ForwardLayers([]string{"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"})
	defer closeAll(outs)
	var dets []Detection
	scale := float64(side)
	for _, g := range []struct {
		scores, boxes gocv.Mat
		anchors       [][2]float32
	}{{outs[0], outs[2], anchors.small}, {outs[1], outs[3], anchors.large}} {
		sc, err := g.scores.DataPtrFloat32()
		if err != nil {
			return nil, err
		}
		bx, err := g.boxes.DataPtrFloat32()
		if err != nil {
			return nil, err
		}
		if len(sc) != len(g.anchors) || len(bx) != 16*len(g.anchors) {
			return nil, fmt.Errorf("BlazeFace output shapes: %d scores, %d box values for %d anchors", len(sc), len(bx), len(g.anchors))
		}
		for i, a := range g.anchors {
			s := 1 / (1 + math.Exp(-float64(sc[i])))
			if s < blazeThreshold {
				continue
			}
			v := bx[16*i : 16*i+16]
			cx := (float64(a[0]) + float64(v[0])/blazeSize) * scale
			cy := (float64(a[1]) + float64(v[1])/blazeSize) * scale
			bw, bh := float64(v[2])/blazeSize*scale, float64(v[3])/blazeSize*scale
			if bw <= 0 || bh <= 0 {
				continue
			}
			b := Rect{cx - bw/2, cy - bh/2, bw, bh}
			side := bh * blazeToSquare
			sq := Rect{cx - side/2, cy + blazeShiftY*bh - side/2, side, side}
			dets = append(dets, Detection{Box: b, Square: sq, Score: float32(s)})
		}
	}
	return nms(dets, blazeNMS), nil
}

// Tracker runs the fast per-frame path. It is cheap to create; use one per
// video stream.
type Tracker struct {
	e       *Engine
	anchors blazeAnchors
}

// NewTracker returns a tracker on this engine's workers.
func (e *Engine) NewTracker() *Tracker {
	return &Tracker{e: e, anchors: newBlazeAnchors()}
}

// Track finds the face nearest the frame's centre with landmarks, pose and
// quality. ok is false when no face is in view.
func (t *Tracker) Track(ctx context.Context, frame gocv.Mat) (f Face, ok bool, err error) {
	if err := checkImage(frame); err != nil {
		return Face{}, false, err
	}
	err = t.e.with(ctx, func(w *worker) error {
		dets, err := w.detectBlaze(frame, t.anchors)
		if err != nil || len(dets) == 0 {
			return err
		}
		best, bestD := 0, math.Inf(1)
		for i, d := range dets {
			cx, cy := d.Box.Center()
			if dd := math.Hypot(cx-float64(frame.Cols())/2, cy-float64(frame.Rows())/2); dd < bestD {
				best, bestD = i, dd
			}
		}
		f, err = w.describe(frame, dets[best].Square, dets[best].Score, t.e.cfg.MinFaceSize)
		if err != nil {
			return err
		}
		if len(dets) > 1 {
			f.Warnings = append(f.Warnings, WarnMultipleFaces)
		}
		ok = true
		return nil
	})
	return f, ok, err
}

// poseOf is the PnP fit used by every path.
func poseOf(lm *Landmarks, w, h int) (geom.Pose, float64) {
	fit, err := geom.SolvePose([68]geom.Point(*lm), geom.DefaultCamera(w, h))
	if err != nil {
		return geom.Pose{}, math.Inf(1)
	}
	return fit.Pose, fit.RMSE
}
