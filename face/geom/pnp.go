package geom

import (
	"errors"
	"fmt"
	"math"
)

// ErrDegenerate reports input on which a geometric fit is not defined
// (non-finite values, coincident or collinear points, an invalid camera).
var ErrDegenerate = errors.New("geom: degenerate input")

// PoseFit is the result of SolvePose.
type PoseFit struct {
	Pose Pose
	// Translation is the model origin (the head's rotation centre) in the
	// camera frame, mm; Z < 0, the distance to the camera is -Z.
	Translation Vec3
	// RMSE is the root-mean-square reprojection error over all 68
	// landmarks, in pixels.
	RMSE float64
}

// Fit tuning. The jaw contour (0–16) is a silhouette, not a fixed point on
// the skin: it slides around the face under yaw, so it gets a quarter of
// the weight of the inner landmarks. Residuals above huberFrac of the
// landmark spread (~4 px on a 200 px face) are treated as outliers
// (Huber loss) so one badly placed landmark cannot drag the pose.
const (
	jawWeight   = 0.25
	huberFrac   = 0.05
	minHuberPx  = 1.0
	lmMaxIter   = 60
	lmMaxLambda = 1e12
)

// SolvePose fits Canonical68 to 68 image landmarks (a PnP problem): a
// weak-perspective (scaled orthographic) closed-form fit initialises the
// rotation and translation, which Levenberg–Marquardt then refines by
// minimising the robust reprojection error over a rotation update
// (axis-angle, applied on the left) and the translation.
//
// It returns ErrDegenerate (wrapped) for non-finite input, coincident or
// collinear landmarks, an invalid camera or a fit that ends behind the
// camera. It never panics.
func SolvePose(pts [68]Point, cam Camera) (PoseFit, error) {
	if !(cam.Focal > 0) || math.IsInf(cam.Focal, 0) || !finite(cam.Cx) || !finite(cam.Cy) {
		return PoseFit{}, fmt.Errorf("solve pose: camera %+v: %w", cam, ErrDegenerate)
	}
	model := Canonical68()
	var w [68]float64
	for i := range w {
		w[i] = 1
		if i <= JawLast {
			w[i] = jawWeight
		}
	}

	// Normalised image coordinates, Y up: a camera-frame point (X, Y, Z)
	// projects to (X/-Z, Y/-Z).
	var obs [68][2]float64
	var mx, my float64
	for i, p := range pts {
		if !finite(p.X) || !finite(p.Y) {
			return PoseFit{}, fmt.Errorf("solve pose: landmark %d is %v: %w", i, p, ErrDegenerate)
		}
		obs[i] = [2]float64{(p.X - cam.Cx) / cam.Focal, (cam.Cy - p.Y) / cam.Focal}
		mx += obs[i][0]
		my += obs[i][1]
	}
	mx /= 68
	my /= 68
	var spread float64
	for _, o := range obs {
		spread += (o[0]-mx)*(o[0]-mx) + (o[1]-my)*(o[1]-my)
	}
	spread = math.Sqrt(spread / 68) // normalised units
	if !(spread > 1e-4) || !finite(spread) {
		return PoseFit{}, fmt.Errorf("solve pose: landmarks spread %.3g px: %w", spread*cam.Focal, ErrDegenerate)
	}

	R, t, err := weakPerspective(&model, &obs, &w)
	if err != nil {
		return PoseFit{}, fmt.Errorf("solve pose: %w", err)
	}
	huber := math.Max(minHuberPx/cam.Focal, huberFrac*spread)
	R, t = refinePose(&model, &obs, &w, R, t, huber)

	var sse float64
	for i := range model {
		q := Rotate(R, model[i]).Add(t)
		if !(q.Z < 0) {
			return PoseFit{}, fmt.Errorf("solve pose: landmark %d behind the camera: %w", i, ErrDegenerate)
		}
		ex := q.X/-q.Z - obs[i][0]
		ey := q.Y/-q.Z - obs[i][1]
		sse += ex*ex + ey*ey
	}
	fit := PoseFit{
		Pose:        PoseFromRotation(R),
		Translation: t,
		RMSE:        math.Sqrt(sse/68) * cam.Focal,
	}
	if !finite(fit.RMSE) || !finite(fit.Pose.Yaw) || !finite(fit.Pose.Pitch) ||
		!finite(fit.Pose.Roll) || !finite(t.X) || !finite(t.Y) || !(t.Z < 0) {
		return PoseFit{}, fmt.Errorf("solve pose: fit did not converge: %w", ErrDegenerate)
	}
	return fit, nil
}

// weakPerspective fits obs ≈ s·(R·m)_{xy} + c by weighted linear least
// squares for the 2×3 affine camera A = s·R_{12}, then projects A onto the
// nearest scaled rotation (via the SVD of A). The canonical face is not
// planar, so A — and hence the rotation — is unique (no Necker flip).
func weakPerspective(model *[68]Vec3, obs *[68][2]float64, w *[68]float64) ([3][3]float64, Vec3, error) {
	var sw float64
	var mc Vec3
	var oc [2]float64
	for i := range model {
		sw += w[i]
		mc = mc.Add(model[i].Scale(w[i]))
		oc[0] += w[i] * obs[i][0]
		oc[1] += w[i] * obs[i][1]
	}
	mc = mc.Scale(1 / sw)
	oc[0] /= sw
	oc[1] /= sw

	// A = (Σ w o mᵀ)(Σ w m mᵀ)⁻¹ on centred data.
	var S [3][3]float64 // Σ w m mᵀ
	var B [2][3]float64 // Σ w o mᵀ
	for i := range model {
		m := model[i].Sub(mc)
		mv := [3]float64{m.X, m.Y, m.Z}
		o := [2]float64{obs[i][0] - oc[0], obs[i][1] - oc[1]}
		for r := 0; r < 3; r++ {
			for c := 0; c < 3; c++ {
				S[r][c] += w[i] * mv[r] * mv[c]
			}
			B[0][r] += w[i] * o[0] * mv[r]
			B[1][r] += w[i] * o[1] * mv[r]
		}
	}
	Si, ok := inv3(S)
	if !ok {
		return [3][3]float64{}, Vec3{}, fmt.Errorf("model covariance singular: %w", ErrDegenerate)
	}
	var A [2][3]float64
	for r := 0; r < 2; r++ {
		for c := 0; c < 3; c++ {
			A[r][c] = B[r][0]*Si[0][c] + B[r][1]*Si[1][c] + B[r][2]*Si[2][c]
		}
	}

	// SVD of A via the eigen-decomposition of the 2×2 matrix A·Aᵀ.
	a := dot3(A[0], A[0])
	b := dot3(A[0], A[1])
	d := dot3(A[1], A[1])
	tr, disc := (a+d)/2, math.Hypot((a-d)/2, b)
	l1, l2 := tr+disc, tr-disc
	if !(l1 > 0) || !finite(l1) {
		return [3][3]float64{}, Vec3{}, fmt.Errorf("affine camera is zero: %w", ErrDegenerate)
	}
	if l2 < 1e-10*l1 {
		return [3][3]float64{}, Vec3{}, fmt.Errorf("landmarks are collinear: %w", ErrDegenerate)
	}
	// Eigenvector u1 of [[a b][b d]] for l1; u2 ⟂ u1.
	var u1 [2]float64
	if math.Abs(b) > 1e-300 {
		u1 = [2]float64{b, l1 - a}
	} else if a >= d {
		u1 = [2]float64{1, 0}
	} else {
		u1 = [2]float64{0, 1}
	}
	n := math.Hypot(u1[0], u1[1])
	u1 = [2]float64{u1[0] / n, u1[1] / n}
	u2 := [2]float64{-u1[1], u1[0]}
	s1, s2 := math.Sqrt(l1), math.Sqrt(l2)
	var v1, v2 [3]float64
	for c := 0; c < 3; c++ {
		v1[c] = (u1[0]*A[0][c] + u1[1]*A[1][c]) / s1
		v2[c] = (u2[0]*A[0][c] + u2[1]*A[1][c]) / s2
	}
	var R [3][3]float64
	for c := 0; c < 3; c++ {
		R[0][c] = u1[0]*v1[c] + u2[0]*v2[c]
		R[1][c] = u1[1]*v1[c] + u2[1]*v2[c]
	}
	R[2] = cross3(R[0], R[1])
	R = orthonormalize(R)

	s := (s1 + s2) / 2 // normalised units per mm = 1/depth
	depth := 1 / s
	centre := Vec3{oc[0] * depth, oc[1] * depth, -depth}
	t := centre.Sub(Rotate(R, mc))
	return R, t, nil
}

// refinePose runs Levenberg–Marquardt on the weighted Huber reprojection
// cost. It only ever accepts steps that lower the cost, so it returns at
// worst its input.
func refinePose(model *[68]Vec3, obs *[68][2]float64, w *[68]float64, R [3][3]float64, t Vec3, huber float64) ([3][3]float64, Vec3) {
	cost := poseCost(model, obs, w, R, t, huber)
	if math.IsInf(cost, 1) || math.IsNaN(cost) {
		return R, t
	}
	lambda := 1e-3
	for iter := 0; iter < lmMaxIter; iter++ {
		var H [6][6]float64
		var g [6]float64
		for i := range model {
			q := Rotate(R, model[i])
			P := q.Add(t)
			D := -P.Z
			ex := P.X/D - obs[i][0]
			ey := P.Y/D - obs[i][1]
			c := w[i] * huberWeight(ex*ex+ey*ey, huber)
			D2 := D * D
			jx := [6]float64{
				P.X * q.Y / D2,
				q.Z/D - P.X*q.X/D2,
				-q.Y / D,
				1 / D, 0, P.X / D2,
			}
			jy := [6]float64{
				-q.Z/D + P.Y*q.Y/D2,
				-P.Y * q.X / D2,
				q.X / D,
				0, 1 / D, P.Y / D2,
			}
			for r := 0; r < 6; r++ {
				g[r] += c * (jx[r]*ex + jy[r]*ey)
				for k := r; k < 6; k++ {
					H[r][k] += c * (jx[r]*jx[k] + jy[r]*jy[k])
				}
			}
		}
		for r := 0; r < 6; r++ {
			for k := 0; k < r; k++ {
				H[r][k] = H[k][r]
			}
		}

		improved := false
		for lambda < lmMaxLambda {
			A := H
			for r := 0; r < 6; r++ {
				A[r][r] += lambda * math.Max(H[r][r], 1e-12)
			}
			step, ok := cholSolve6(A, g)
			if !ok {
				lambda *= 10
				continue
			}
			// A step this small cannot change the pose measurably: converged
			// (this also ends the λ escalation once at the optimum).
			rot := math.Abs(step[0]) + math.Abs(step[1]) + math.Abs(step[2])
			trans := (math.Abs(step[3]) + math.Abs(step[4]) + math.Abs(step[5])) / math.Max(-t.Z, 1e-9)
			if rot < 1e-10 && trans < 1e-10 {
				return R, t
			}
			Rn := orthonormalize(mul3(expSO3([3]float64{-step[0], -step[1], -step[2]}), R))
			tn := Vec3{t.X - step[3], t.Y - step[4], t.Z - step[5]}
			cn := poseCost(model, obs, w, Rn, tn, huber)
			if cn < cost {
				rel := (cost - cn) / math.Max(cost, 1e-300)
				R, t, cost = Rn, tn, cn
				lambda = math.Max(lambda/10, 1e-12)
				improved = true
				if rel < 1e-10 {
					return R, t
				}
				break
			}
			lambda *= 10
		}
		if !improved || cost == 0 {
			break
		}
	}
	return R, t
}

// poseCost is the weighted Huber cost in normalised units; +Inf when a
// point is on or behind the camera plane.
func poseCost(model *[68]Vec3, obs *[68][2]float64, w *[68]float64, R [3][3]float64, t Vec3, huber float64) float64 {
	var cost float64
	for i := range model {
		P := Rotate(R, model[i]).Add(t)
		if !(P.Z < 0) {
			return math.Inf(1)
		}
		D := -P.Z
		ex, ey := P.X/D-obs[i][0], P.Y/D-obs[i][1]
		e2 := ex*ex + ey*ey
		if e2 <= huber*huber {
			cost += w[i] * e2 / 2
		} else {
			cost += w[i] * huber * (math.Sqrt(e2) - huber/2)
		}
	}
	if math.IsNaN(cost) {
		return math.Inf(1)
	}
	return cost
}

// huberWeight is the IRLS weight ψ(e)/e of the Huber loss, given e².
func huberWeight(e2, delta float64) float64 {
	if e2 <= delta*delta {
		return 1
	}
	return delta / math.Sqrt(e2)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func dot3(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func cross3(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func mul3(a, b [3][3]float64) [3][3]float64 {
	var c [3][3]float64
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			c[i][j] = a[i][0]*b[0][j] + a[i][1]*b[1][j] + a[i][2]*b[2][j]
		}
	}
	return c
}

// inv3 inverts a 3×3 matrix; ok is false when it is (nearly) singular.
func inv3(m [3][3]float64) (inv [3][3]float64, ok bool) {
	c00 := m[1][1]*m[2][2] - m[1][2]*m[2][1]
	c01 := m[1][2]*m[2][0] - m[1][0]*m[2][2]
	c02 := m[1][0]*m[2][1] - m[1][1]*m[2][0]
	det := m[0][0]*c00 + m[0][1]*c01 + m[0][2]*c02
	var norm float64
	for i := range m {
		for j := range m[i] {
			norm = math.Max(norm, math.Abs(m[i][j]))
		}
	}
	if !(math.Abs(det) > 1e-12*norm*norm*norm) || !finite(det) {
		return inv, false
	}
	id := 1 / det
	inv[0] = [3]float64{c00 * id, (m[0][2]*m[2][1] - m[0][1]*m[2][2]) * id, (m[0][1]*m[1][2] - m[0][2]*m[1][1]) * id}
	inv[1] = [3]float64{c01 * id, (m[0][0]*m[2][2] - m[0][2]*m[2][0]) * id, (m[0][2]*m[1][0] - m[0][0]*m[1][2]) * id}
	inv[2] = [3]float64{c02 * id, (m[0][1]*m[2][0] - m[0][0]*m[2][1]) * id, (m[0][0]*m[1][1] - m[0][1]*m[1][0]) * id}
	return inv, true
}

// expSO3 is the Rodrigues formula: the rotation by |w| radians about w.
func expSO3(w [3]float64) [3][3]float64 {
	th := math.Sqrt(dot3(w, w))
	var a, b float64
	if th < 1e-8 {
		a, b = 1-th*th/6, 0.5-th*th/24
	} else {
		s, c := math.Sincos(th)
		a, b = s/th, (1-c)/(th*th)
	}
	K := [3][3]float64{{0, -w[2], w[1]}, {w[2], 0, -w[0]}, {-w[1], w[0], 0}}
	K2 := mul3(K, K)
	var R [3][3]float64
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			R[i][j] = a*K[i][j] + b*K2[i][j]
		}
		R[i][i]++
	}
	return R
}

// orthonormalize removes accumulated drift from a rotation matrix
// (Gram–Schmidt on the rows, third row rebuilt as a cross product).
func orthonormalize(R [3][3]float64) [3][3]float64 {
	r0 := R[0]
	n := math.Sqrt(dot3(r0, r0))
	r0 = [3]float64{r0[0] / n, r0[1] / n, r0[2] / n}
	r1 := R[1]
	d := dot3(r0, r1)
	r1 = [3]float64{r1[0] - d*r0[0], r1[1] - d*r0[1], r1[2] - d*r0[2]}
	n = math.Sqrt(dot3(r1, r1))
	r1 = [3]float64{r1[0] / n, r1[1] / n, r1[2] / n}
	return [3][3]float64{r0, r1, cross3(r0, r1)}
}

// cholSolve6 solves A·x = b for a symmetric positive definite 6×6 A.
func cholSolve6(A [6][6]float64, b [6]float64) ([6]float64, bool) {
	var L [6][6]float64
	for i := 0; i < 6; i++ {
		for j := 0; j <= i; j++ {
			s := A[i][j]
			for k := 0; k < j; k++ {
				s -= L[i][k] * L[j][k]
			}
			if i == j {
				if !(s > 0) {
					return [6]float64{}, false
				}
				L[i][i] = math.Sqrt(s)
			} else {
				L[i][j] = s / L[j][j]
			}
		}
	}
	var y, x [6]float64
	for i := 0; i < 6; i++ {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= L[i][k] * y[k]
		}
		y[i] = s / L[i][i]
	}
	for i := 5; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < 6; k++ {
			s -= L[k][i] * x[k]
		}
		x[i] = s / L[i][i]
	}
	return x, true
}
