package liveness

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
)

// The landmark model is a CNN on a 64×64 crop: on a foreshortened print it
// shifts the nose and the jaw as if the head had turned, a few degrees of
// fake parallax that follows the print's tilt. Points tracked by optical
// flow have no such prior — on a flat object they obey one homography to a
// fraction of a pixel — so the 3-D test also runs on a grid of points
// tracked between the two samples' face patches.

// Patch is a small grey image of the face region kept for tracking between
// samples: PatchSize² bytes, contrast-normalised. Image coordinates are
// patch coordinates / Scale + (X0, Y0).
type Patch struct {
	Pix           []byte
	X0, Y0, Scale float64
}

// PatchSize is the side of a face patch in pixels. 144 px over 1.3× the
// landmarks' extent keeps skin texture trackable without keeping a
// recognisable image of the person (under 21 KB).
const PatchSize = 144

// patchMargin: the patch spans this many times the landmarks' larger
// extent, so the face outline and a little context are inside.
const patchMargin = 1.3

// extractPatch cuts the face patch out of a BGR image.
func extractPatch(img gocv.Mat, lm *face.Landmarks) (Patch, error) {
	b := lm.Bounds()
	side := patchMargin * math.Max(b.W, b.H)
	if !(side > 4) || !finite(side) {
		return Patch{}, errors.New("face patch: degenerate landmarks")
	}
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	p := Patch{X0: cx - side/2, Y0: cy - side/2, Scale: PatchSize / side}
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	m.SetDoubleAt(0, 0, p.Scale)
	m.SetDoubleAt(0, 2, -p.X0*p.Scale)
	m.SetDoubleAt(1, 1, p.Scale)
	m.SetDoubleAt(1, 2, -p.Y0*p.Scale)
	crop := gocv.NewMat()
	defer crop.Close()
	gocv.WarpAffineWithParams(img, &crop, m, image.Pt(PatchSize, PatchSize), gocv.InterpolationArea, gocv.BorderReplicate, color.RGBA{})
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(crop, &grey, gocv.ColorBGRToGray)
	pix, err := grey.DataPtrUint8()
	if err != nil {
		return Patch{}, fmt.Errorf("face patch: %w", err)
	}
	p.Pix = normaliseContrast(pix)
	return p, nil
}

// normaliseContrast maps the patch to mean 128, σ 45, so a change of light
// between samples does not look like motion to the tracker.
func normaliseContrast(pix []byte) []byte {
	var s, ss float64
	for _, v := range pix {
		s += float64(v)
		ss += float64(v) * float64(v)
	}
	n := float64(len(pix))
	mean := s / n
	sd := math.Sqrt(math.Max(ss/n-mean*mean, 1))
	out := make([]byte, len(pix))
	for i, v := range pix {
		x := 128 + 45*(float64(v)-mean)/sd
		out[i] = uint8(math.Max(0, math.Min(255, math.Round(x))))
	}
	return out
}

// flowGeometry is the tracked-point evidence of one step.
type flowGeometry struct {
	Points int // points tracked reliably
	// ParallaxDeg, ParallaxAngle, ParallaxZ: as stepGeometry's, from the
	// tracked points with depths interpolated from the landmarks.
	ParallaxDeg, ParallaxAngle, ParallaxZ float64
	// MedianRes is the median residual of the best homography, in face
	// radii: near zero for anything flat.
	MedianRes float64
	OK        bool
}

// Tracking parameters: a grid every gridStep patch pixels inside the face
// outline; LK with a 13-px window over 2 pyramid levels (the patches are
// pre-aligned, so the remaining motion is a few pixels; more levels and a
// denser grid cost 4× the time for the same parallax); a point counts when
// its forward-backward error is under maxFB patch pixels.
const (
	gridStep     = 6
	lkWindow     = 13
	lkLevels     = 2
	maxFB        = 0.5
	minFlowPoint = 40
)

// measureFlow tracks points from sample a's patch to b's and tests them for
// planarity and parallax.
func measureFlow(a, b *Sample) flowGeometry {
	var g flowGeometry
	if len(a.Patch.Pix) != PatchSize*PatchSize || len(b.Patch.Pix) != PatchSize*PatchSize {
		return g
	}
	// Landmarks in each patch.
	var la, lb [68]geom.Point
	for i := range la {
		la[i] = toPatch(&a.Patch, a.Face.Landmarks[i])
		lb[i] = toPatch(&b.Patch, b.Face.Landmarks[i])
	}
	// Pre-align a onto b with the landmarks' similarity so the tracker only
	// has to find the small remainder.
	S, err := geom.SimilarityTransform(la[17:], lb[17:])
	if err != nil {
		return g
	}
	pa, err := gocv.NewMatFromBytes(PatchSize, PatchSize, gocv.MatTypeCV8UC1, a.Patch.Pix)
	if err != nil {
		return g
	}
	defer pa.Close()
	pb, err := gocv.NewMatFromBytes(PatchSize, PatchSize, gocv.MatTypeCV8UC1, b.Patch.Pix)
	if err != nil {
		return g
	}
	defer pb.Close()
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	for r := 0; r < 2; r++ {
		for c := 0; c < 3; c++ {
			m.SetDoubleAt(r, c, S[r][c])
		}
	}
	aw := gocv.NewMat()
	defer aw.Close()
	gocv.WarpAffineWithParams(pa, &aw, m, image.Pt(PatchSize, PatchSize), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})

	// Grid points inside b's face outline (jaw and brows), away from the
	// patch border.
	hull := faceOutline(&lb)
	var pts []gocv.Point2f
	for y := lkWindow / 2; y < PatchSize-lkWindow/2; y += gridStep {
		for x := lkWindow / 2; x < PatchSize-lkWindow/2; x += gridStep {
			if inPolygon(hull, geom.Point{X: float64(x), Y: float64(y)}) {
				pts = append(pts, gocv.Point2f{X: float32(x), Y: float32(y)})
			}
		}
	}
	if len(pts) < minFlowPoint {
		return g
	}
	fwd, okF := track(aw, pb, pts)
	if fwd == nil {
		return g
	}
	back, okB := track(pb, aw, fwd)
	if back == nil {
		return g
	}
	var src, dst []geom.Point
	for i := range pts {
		if !okF[i] || !okB[i] {
			continue
		}
		if math.Hypot(float64(back[i].X-pts[i].X), float64(back[i].Y-pts[i].Y)) > maxFB {
			continue
		}
		src = append(src, geom.Point{X: float64(pts[i].X), Y: float64(pts[i].Y)})
		dst = append(dst, geom.Point{X: float64(fwd[i].X), Y: float64(fwd[i].Y)})
	}
	g.Points = len(src)
	if g.Points < minFlowPoint {
		return g
	}
	// Depth of each tracked point, interpolated from the landmarks' depths
	// at the step's mean pose; both point sets normalised by the face's
	// landmark radius in b's patch.
	gamma, ok := landmarkDepths(a.Face.Pose, b.Face.Pose)
	if !ok {
		return g
	}
	nb, ok := landmarkNorm(lb[:], landmarkWeights())
	if !ok {
		return g
	}
	depth := interpolateDepth(&lb, &gamma, dst)
	w := make([]float64, len(src))
	for i := range w {
		w[i] = innerWeight
	}
	planar, full := fitPlaneParallax(nb.all(src), nb.all(dst), w, depth)
	if !planar.ok || !full.ok {
		return g
	}
	g.MedianRes = planar.median
	g.ParallaxDeg, g.ParallaxAngle, g.ParallaxZ = full.parallax()
	g.OK = true
	return g
}

func toPatch(p *Patch, q geom.Point) geom.Point {
	return geom.Point{X: (q.X - p.X0) * p.Scale, Y: (q.Y - p.Y0) * p.Scale}
}

// track runs pyramidal LK from prev to next; ok[i] is the status.
func track(prev, next gocv.Mat, pts []gocv.Point2f) ([]gocv.Point2f, []bool) {
	in := gocv.NewMatWithSize(len(pts), 1, gocv.MatTypeCV32FC2)
	defer in.Close()
	for i, p := range pts {
		in.SetFloatAt(i, 0, p.X)
		in.SetFloatAt(i, 1, p.Y)
	}
	out := gocv.NewMat()
	defer out.Close()
	status := gocv.NewMat()
	defer status.Close()
	errs := gocv.NewMat()
	defer errs.Close()
	crit := gocv.NewTermCriteria(gocv.Count|gocv.EPS, 20, 0.03)
	gocv.CalcOpticalFlowPyrLKWithParams(prev, next, in, out, &status, &errs, image.Pt(lkWindow, lkWindow), lkLevels, crit, 0, 1e-4)
	if out.Rows() != len(pts) || status.Rows() != len(pts) {
		return nil, nil
	}
	res := make([]gocv.Point2f, len(pts))
	ok := make([]bool, len(pts))
	for i := range pts {
		v := out.GetVecfAt(i, 0)
		res[i] = gocv.Point2f{X: v[0], Y: v[1]}
		ok[i] = status.GetUCharAt(i, 0) == 1 && finite(float64(v[0])) && finite(float64(v[1]))
	}
	return res, ok
}

// faceOutline is the polygon of the jaw (0–16) closed over the brows
// (26…17), lifted a little to include the forehead's lower part.
func faceOutline(lm *[68]geom.Point) []geom.Point {
	var poly []geom.Point
	for i := 0; i <= 16; i++ {
		poly = append(poly, lm[i])
	}
	// Brows from the person's left (image right) back to the right, raised
	// by a tenth of the eye–chin distance.
	lift := 0.1 * math.Hypot(lm[8].X-lm[27].X, lm[8].Y-lm[27].Y)
	for i := 26; i >= 17; i-- {
		poly = append(poly, geom.Point{X: lm[i].X, Y: lm[i].Y - lift})
	}
	return poly
}

// inPolygon is the even-odd rule.
func inPolygon(poly []geom.Point, p geom.Point) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Y > p.Y) != (b.Y > p.Y) && p.X < (b.X-a.X)*(p.Y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	return in
}

// interpolateDepth gives each point the inverse-distance-weighted depth of
// its nearest landmarks (squared weights over the six nearest).
func interpolateDepth(lm *[68]geom.Point, gamma *[68]float64, pts []geom.Point) []float64 {
	out := make([]float64, len(pts))
	type nd struct {
		d float64
		i int
	}
	for k, p := range pts {
		var best [6]nd
		for j := range best {
			best[j] = nd{math.Inf(1), -1}
		}
		for i, l := range lm {
			d := (l.X-p.X)*(l.X-p.X) + (l.Y-p.Y)*(l.Y-p.Y)
			for j := range best {
				if d < best[j].d {
					copy(best[j+1:], best[j:len(best)-1])
					best[j] = nd{d, i}
					break
				}
			}
		}
		var sw, s float64
		for _, b := range best {
			if b.i < 0 {
				continue
			}
			w := 1 / (b.d + 1)
			sw += w
			s += w * gamma[b.i]
		}
		out[k] = s / sw
	}
	return out
}
