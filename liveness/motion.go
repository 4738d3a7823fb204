package liveness

import (
	"math"
	"slices"

	"github.com/bwsagent/bwsagent/face/geom"
)

// The 3-D test between two samples is a model comparison, run on the 68
// landmarks here and on points tracked inside the face in flow.go. A flat
// print or screen, however it is moved, tilted or turned,
// maps its points from one sample to the next by one homography. A head
// turning in 3-D adds plane-plus-parallax: under a (nearly) affine camera
// a rotation ω moves every point by an extra γ·(ω_y, ω_x)·scale, where γ is
// its depth toward the camera — the nose tip (γ ≈ +24 mm against the eye
// corners) runs ahead of the face plane, the jaw near the ears (−60 mm)
// lags behind. No homography can produce that field from a flat object,
// because γ is not a function a projective map can imitate (the nose is a
// sharp bump, not a smooth curvature).
//
// So each step is fitted twice, robustly: b = H(a) and b = H(a) + γ·d, with
// γ the canonical face's depth (geom.Canonical68) rotated to the step's
// mean pose, in units of the face's in-plane radius. With both sides
// normalised by the face radius, |d| is the rotation explained by parallax
// in radians, independently of the PnP pose (which a foreshortened print
// can fool), and its direction is the direction of the head's turn in the
// image (right = nose to image-right, up = nose to the image's top).

// Landmark weights in the fits. The jaw contour (0–16) is a silhouette: it
// slides over the head as it turns instead of moving as a fixed point, so
// it counts less.
const (
	jawWeight   = 0.3
	innerWeight = 1.0
)

// landmarkWeights are the fits' weights of the 68 landmarks.
func landmarkWeights() []float64 {
	w := make([]float64, 68)
	for i := range w {
		w[i] = innerWeight
		if i <= geom.JawLast {
			w[i] = jawWeight
		}
	}
	return w
}

// stepGeometry is the motion between two consecutive samples.
type stepGeometry struct {
	// PoseAngle, PoseMag: the head's turn from geom.MotionDirection on the
	// PnP poses (degrees).
	PoseAngle, PoseMag float64
	// ParallaxDeg is the rotation explained by depth parallax (degrees),
	// ParallaxAngle its direction in the MotionDirection convention, and
	// ParallaxZ the parallax over its standard error (robust noise scale).
	ParallaxDeg, ParallaxAngle, ParallaxZ float64
	// Scale is the ratio of the face radius (later/earlier); Shift the
	// move of the landmark centroid in face radii.
	Scale, Shift float64
	// OK is false when the fit could not be computed (degenerate input).
	OK bool
}

// measureStep compares two landmark sets of the same face.
func measureStep(a, b *[68]geom.Point, pa, pb geom.Pose) stepGeometry {
	var g stepGeometry
	g.PoseAngle, g.PoseMag = geom.MotionDirection(pa, pb)

	w := landmarkWeights()
	na, okA := landmarkNorm(a[:], w)
	nb, okB := landmarkNorm(b[:], w)
	if !okA || !okB {
		return g
	}
	g.Scale = nb.r / na.r
	g.Shift = math.Hypot(nb.c.X-na.c.X, nb.c.Y-na.c.Y) / na.r
	ga, okG := landmarkDepths(pa, pb)
	if !okG {
		return g
	}
	planar, full := fitPlaneParallax(na.all(a[:]), nb.all(b[:]), w, ga[:])
	if !planar.ok || !full.ok {
		return g
	}
	g.ParallaxDeg, g.ParallaxAngle, g.ParallaxZ = full.parallax()
	g.OK = true
	return g
}

// norm centres and scales points of one sample: p' = (p − c) / r.
type norm struct {
	c geom.Point
	r float64
}

func (n norm) apply(p geom.Point) geom.Point {
	return geom.Point{X: (p.X - n.c.X) / n.r, Y: (p.Y - n.c.Y) / n.r}
}

func (n norm) all(ps []geom.Point) []geom.Point {
	out := make([]geom.Point, len(ps))
	for i, p := range ps {
		out[i] = n.apply(p)
	}
	return out
}

// landmarkNorm is the weighted centroid and RMS radius of the landmarks:
// the face's own unit, so residuals read as fractions of the face size.
func landmarkNorm(pts []geom.Point, w []float64) (norm, bool) {
	var n norm
	var sw float64
	for i, p := range pts {
		if !finite(p.X) || !finite(p.Y) {
			return n, false
		}
		n.c.X += w[i] * p.X
		n.c.Y += w[i] * p.Y
		sw += w[i]
	}
	n.c.X /= sw
	n.c.Y /= sw
	var ss float64
	for i, p := range pts {
		ss += w[i] * ((p.X-n.c.X)*(p.X-n.c.X) + (p.Y-n.c.Y)*(p.Y-n.c.Y))
	}
	n.r = math.Sqrt(ss / sw)
	return n, n.r > 1e-6 && finite(n.r)
}

// landmarkDepths are the canonical landmarks' depths toward the camera at
// the mean pose of a step, centred, in units of the model's in-plane
// radius — the same unit as the normalised image points, so a parallax d
// reads as a rotation in radians.
func landmarkDepths(pa, pb geom.Pose) (gamma [68]float64, ok bool) {
	mid := geom.Pose{Yaw: (pa.Yaw + pb.Yaw) / 2, Pitch: (pa.Pitch + pb.Pitch) / 2, Roll: (pa.Roll + pb.Roll) / 2}
	R := geom.RotationFromPose(mid)
	model := geom.Canonical68()
	w := landmarkWeights()
	var q [68]geom.Vec3
	var mx, my, mz, sw float64
	for i, m := range model {
		q[i] = geom.Rotate(R, m)
		mx += w[i] * q[i].X
		my += w[i] * q[i].Y
		mz += w[i] * q[i].Z
		sw += w[i]
	}
	mx, my, mz = mx/sw, my/sw, mz/sw
	var rr float64
	for i := range q {
		rr += w[i] * ((q[i].X-mx)*(q[i].X-mx) + (q[i].Y-my)*(q[i].Y-my))
	}
	rMM := math.Sqrt(rr / sw)
	if !(rMM > 0) {
		return gamma, false
	}
	for i := range q {
		gamma[i] = (q[i].Z - mz) / rMM
	}
	return gamma, true
}

// fitPlaneParallax fits b = H(a) and b = H(a) + γ·d robustly; a and b are
// normalised points, w their weights, gamma their depths.
func fitPlaneParallax(a, b []geom.Point, w, gamma []float64) (planar, full fitResult) {
	h, ok := fitHomography(a, b, w)
	if !ok {
		return planar, full
	}
	planar = refine(a, b, w, nil, h)
	if !planar.ok {
		return planar, full
	}
	full = refine(a, b, w, gamma, planar.h)
	return planar, full
}

// homography holds h11..h32 with h33 = 1: u = (h0x+h1y+h2)/(h6x+h7y+1),
// v = (h3x+h4y+h5)/(h6x+h7y+1). Faces are near the normalised origin, so
// h33 = 1 is never a restriction here.
type homography [8]float64

func (h *homography) apply(p geom.Point) (u, v, den float64) {
	den = h[6]*p.X + h[7]*p.Y + 1
	u = (h[0]*p.X + h[1]*p.Y + h[2]) / den
	v = (h[3]*p.X + h[4]*p.Y + h[5]) / den
	return u, v, den
}

// fitHomography is the weighted linear (DLT, h33 = 1) estimate.
func fitHomography(a, b []geom.Point, w []float64) (homography, bool) {
	A := make([][]float64, 8)
	for r := range A {
		A[r] = make([]float64, 8)
	}
	rhs := make([]float64, 8)
	for i := range a {
		x, y, u, v := a[i].X, a[i].Y, b[i].X, b[i].Y
		rows := [2][8]float64{
			{x, y, 1, 0, 0, 0, -u * x, -u * y},
			{0, 0, 0, x, y, 1, -v * x, -v * y},
		}
		t := [2]float64{u, v}
		for k := 0; k < 2; k++ {
			for r := 0; r < 8; r++ {
				rhs[r] += w[i] * rows[k][r] * t[k]
				for c := 0; c < 8; c++ {
					A[r][c] += w[i] * rows[k][r] * rows[k][c]
				}
			}
		}
	}
	sol, ok := solve(A, rhs)
	if !ok {
		return homography{}, false
	}
	var h homography
	copy(h[:], sol)
	return h, true
}

// fitResult is one robust refinement.
type fitResult struct {
	h      homography
	d      [2]float64 // parallax (only with depths)
	rms    float64    // robust RMS residual (normalised units)
	median float64    // median residual distance of the full-weight points
	se     float64    // standard error of |d|
	ok     bool
}

// parallax converts d to a rotation in degrees, its direction in the
// geom.MotionDirection convention and its significance. Image y grows
// downward: d means ΔYaw ≈ d_x, ΔPitch ≈ −d_y (radians).
func (f fitResult) parallax() (deg, angle, z float64) {
	dy, dp := f.d[0], -f.d[1]
	deg = math.Hypot(dy, dp) * 180 / math.Pi
	angle, _ = geom.MotionDirection(geom.Pose{}, geom.Pose{Yaw: dy, Pitch: dp})
	if f.se > 0 {
		z = math.Hypot(dy, dp) / f.se
	}
	return deg, angle, z
}

// Robust fitting: Huber weights on each point's residual distance, with
// the scale from the median residual; the scale never drops below
// minNoise (0.2 % of the face radius) so near-perfect synthetic input
// does not turn the fit into a hard inlier selection.
const (
	huberK     = 1.5
	minNoise   = 0.002
	refineIter = 12
)

// refine runs iteratively reweighted Gauss–Newton on b = H(a) [+ γ·d].
// gamma == nil fits the homography alone.
func refine(a, b []geom.Point, w []float64, gamma []float64, h0 homography) fitResult {
	np := 8
	if gamma != nil {
		np = 10
	}
	p := make([]float64, np)
	copy(p, h0[:])
	res := make([]float64, len(a))
	rw := make([]float64, len(a)) // robust weights
	for i := range rw {
		rw[i] = 1
	}
	residuals := func(p []float64) {
		var h homography
		copy(h[:], p[:8])
		for i := range a {
			u, v, _ := h.apply(a[i])
			if gamma != nil {
				u += gamma[i] * p[8]
				v += gamma[i] * p[9]
			}
			res[i] = math.Hypot(u-b[i].X, v-b[i].Y)
		}
	}
	var JtJ [10][10]float64
	for it := 0; it < refineIter; it++ {
		residuals(p)
		sigma := robustScale(res, w)
		for i := range rw {
			rw[i] = 1
			if r := res[i]; r > huberK*sigma {
				rw[i] = huberK * sigma / r
			}
		}
		var h homography
		copy(h[:], p[:8])
		var g [10]float64
		JtJ = [10][10]float64{}
		for i := range a {
			x, y := a[i].X, a[i].Y
			u, v, den := h.apply(a[i])
			if !(math.Abs(den) > 1e-6) {
				return fitResult{}
			}
			ru, rv := u-b[i].X, v-b[i].Y
			if gamma != nil {
				ru += gamma[i] * p[8]
				rv += gamma[i] * p[9]
			}
			var ju, jv [10]float64
			ju[0], ju[1], ju[2] = x/den, y/den, 1/den
			ju[6], ju[7] = -u*x/den, -u*y/den
			jv[3], jv[4], jv[5] = x/den, y/den, 1/den
			jv[6], jv[7] = -v*x/den, -v*y/den
			if gamma != nil {
				ju[8] = gamma[i]
				jv[9] = gamma[i]
			}
			wi := w[i] * rw[i]
			for r := 0; r < np; r++ {
				g[r] += wi * (ju[r]*ru + jv[r]*rv)
				for c := 0; c < np; c++ {
					JtJ[r][c] += wi * (ju[r]*ju[c] + jv[r]*jv[c])
				}
			}
		}
		rows := make([][]float64, np)
		for r := range rows {
			rows[r] = append([]float64(nil), JtJ[r][:np]...)
		}
		step, ok := solve(rows, g[:np])
		if !ok {
			return fitResult{}
		}
		var maxStep float64
		for r := 0; r < np; r++ {
			p[r] -= step[r]
			maxStep = math.Max(maxStep, math.Abs(step[r]))
		}
		if maxStep < 1e-9 {
			break
		}
	}
	residuals(p)
	out := fitResult{ok: true}
	copy(out.h[:], p[:8])
	var ss, sw float64
	var full []float64
	for i := range res {
		ss += w[i] * rw[i] * res[i] * res[i]
		sw += w[i] * rw[i]
		if w[i] >= innerWeight {
			full = append(full, res[i])
		}
	}
	out.rms = math.Sqrt(ss / sw)
	out.median = median(full)
	if gamma != nil {
		out.d = [2]float64{p[8], p[9]}
		// Covariance of the parameters ≈ σ²·(JᵀWJ)⁻¹ with σ the per-axis
		// noise (the residual distance spreads over two axes).
		sigma := math.Max(out.rms/math.Sqrt2, minNoise)
		rows := make([][]float64, np)
		for r := range rows {
			rows[r] = append([]float64(nil), JtJ[r][:np]...)
		}
		if inv, ok := invert(rows); ok {
			// The variance of |d| along d's direction (the mean variance at d = 0).
			n := math.Hypot(p[8], p[9])
			var v float64
			if n > 0 {
				ux, uy := p[8]/n, p[9]/n
				v = ux*ux*inv[8][8] + 2*ux*uy*inv[8][9] + uy*uy*inv[9][9]
			} else {
				v = (inv[8][8] + inv[9][9]) / 2
			}
			if v > 0 {
				out.se = sigma * math.Sqrt(v)
			}
		}
	}
	return out
}

// robustScale is the median residual distance over full-weight points
// converted to a per-axis σ, floored at minNoise.
func robustScale(res []float64, w []float64) float64 {
	var xs []float64
	for i, r := range res {
		if w[i] >= innerWeight {
			xs = append(xs, r)
		}
	}
	// For 2-D Gaussian noise of σ per axis the distance's median is 1.177σ.
	return math.Max(median(xs)/1.177, minNoise)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
