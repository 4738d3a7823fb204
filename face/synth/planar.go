package synth

import (
	"image"
	"math"

	"github.com/bwsagent/bwsagent/face/geom"
)

// WarpHomography maps img through the homography H (source pixel →
// destination pixel, homogeneous, like OpenCV's warpPerspective) with
// bilinear sampling. The output has img's size; pixels that come from
// outside the source are left transparent so the caller can composite the
// "print" over a scene with draw.Over. H carries the sign of a physical
// projection: a source point whose homogeneous w = (H·(u, v, 1))₃ is not
// positive is behind the camera and is not drawn (affine matrices with
// H[2][2] = 1 and PlaneRotation's output are always fine; -H is not). A
// singular or non-finite H gives a fully transparent image.
func WarpHomography(img image.Image, H [3][3]float64) *image.RGBA {
	tex := newTexture(img)
	out := image.NewRGBA(image.Rect(0, 0, tex.w, tex.h))
	Hi, ok := inverse3(H)
	if !ok {
		return out
	}
	for y := 0; y < tex.h; y++ {
		row := out.Pix[y*out.Stride:]
		fy := float64(y)
		for x := 0; x < tex.w; x++ {
			fx := float64(x)
			// wz = 1/w of the source point, so its sign tells which side of
			// the camera the source point is on.
			wz := Hi[2][0]*fx + Hi[2][1]*fy + Hi[2][2]
			if !(wz > 0) {
				continue
			}
			u := (Hi[0][0]*fx + Hi[0][1]*fy + Hi[0][2]) / wz
			v := (Hi[1][0]*fx + Hi[1][1]*fy + Hi[1][2]) / wz
			if !(u > -0.5 && v > -0.5 && u < float64(tex.w)-0.5 && v < float64(tex.h)-0.5) {
				continue
			}
			tex.sampleTo(row[4*x:4*x+4], u, v)
		}
	}
	return out
}

// PlaneRotation returns the homography (source pixel → destination pixel)
// of a flat w×h photo held in front of the camera, turned about its own
// vertical axis by yawDeg and horizontal axis by pitchDeg, rolled by
// rollDeg (all in the geom.Pose convention, so a positive yaw turns the
// print the way a head turns toward image-right), scaled by scale about
// its centre (scale 1 and no rotation map the photo onto itself) and
// shifted by shift pixels. The photo sits at the distance where one of its
// pixels spans one image pixel for geom.DefaultCamera(w, h), so the
// perspective is that of a print filling the frame: its near edge grows
// and its far edge shrinks as it turns — the planar attack that imitates a
// head turn best.
func PlaneRotation(w, h int, yawDeg, pitchDeg, rollDeg, scale float64, shift geom.Point) [3][3]float64 {
	cam := geom.DefaultCamera(w, h)
	f := cam.Focal
	R := geom.RotationFromPose(geom.Pose{Yaw: yawDeg, Pitch: pitchDeg, Roll: rollDeg})
	// Plane point q = (u-cx, cy-v, 0) sits at c + s·R·q with c = (0,0,-f);
	// its homogeneous projection (f·X, f·Y, -Z) is G·(qx, qy, 1).
	G := [3][3]float64{
		{f * scale * R[0][0], f * scale * R[0][1], 0},
		{f * scale * R[1][0], f * scale * R[1][1], 0},
		{-scale * R[2][0], -scale * R[2][1], f},
	}
	A := [3][3]float64{{1, 0, -cam.Cx}, {0, -1, cam.Cy}, {0, 0, 1}}
	B := [3][3]float64{{1, 0, cam.Cx + shift.X}, {0, -1, cam.Cy + shift.Y}, {0, 0, 1}}
	H := mul3(B, mul3(G, A))
	// Divide by f (> 0): the identity pose gives the identity matrix, and
	// points in front of the camera keep a positive w.
	for i := range H {
		for j := range H[i] {
			H[i][j] /= f
		}
	}
	return H
}

// WarpCylinder renders img as a print bent around a vertical cylinder
// (convex toward the camera for curvature > 0, concave for < 0) and turned
// by yawDeg about its centre line. curvature is the angle in radians the
// photo's width wraps around (0 = flat, 1 ≈ 57°, π = half a cylinder).
// The print is placed as in PlaneRotation (flat and unturned it maps onto
// itself). Every column keeps its height profile, so the centre column of
// an unturned print stays in place while the columns toward the edges
// are foreshortened. Uncovered pixels are transparent.
func WarpCylinder(img image.Image, curvature float64, yawDeg float64) *image.RGBA {
	tex := newTexture(img)
	out := image.NewRGBA(image.Rect(0, 0, tex.w, tex.h))
	if math.IsNaN(curvature) || math.IsInf(curvature, 0) || math.IsNaN(yawDeg) || math.IsInf(yawDeg, 0) {
		return out
	}
	cam := geom.DefaultCamera(tex.w, tex.h)
	f := cam.Focal
	sy, cy := math.Sincos(yawDeg * math.Pi / 180)

	// Source column u → (output x, depth) on a fine grid of u.
	const sub = 4
	n := sub*(tex.w-1) + 1
	xs := make([]float64, n)
	ds := make([]float64, n)
	for k := 0; k < n; k++ {
		u := float64(k) / sub
		a := u - cam.Cx // arc length from the centre line
		var X, Z float64
		if math.Abs(curvature) < 1e-9 {
			X, Z = a, 0
		} else {
			rho := float64(tex.w) / curvature // signed radius
			th := a / rho
			X = rho * math.Sin(th)
			Z = -rho * (1 - math.Cos(th)) // convex: edges recede
		}
		// Turn about the centre line, then move to distance f.
		Xr := cy*X + sy*Z
		Zr := -sy*X + cy*Z - f
		d := -Zr
		ds[k] = d
		if d <= 1e-6 {
			xs[k] = math.NaN()
			continue
		}
		xs[k] = cam.Cx + f*Xr/d
	}

	// Inverse per output column: the nearest surface crossing that column.
	colU := make([]float64, tex.w)
	colD := make([]float64, tex.w)
	for i := range colU {
		colU[i] = math.NaN()
		colD[i] = math.Inf(1)
	}
	for k := 0; k+1 < n; k++ {
		x0, x1 := xs[k], xs[k+1]
		if math.IsNaN(x0) || math.IsNaN(x1) {
			continue
		}
		lo, hi := math.Min(x0, x1), math.Max(x0, x1)
		c0 := int(math.Ceil(math.Max(lo, 0)))
		c1 := int(math.Floor(math.Min(hi, float64(tex.w-1))))
		for c := c0; c <= c1; c++ {
			t := 0.0
			if hi > lo {
				t = (float64(c) - x0) / (x1 - x0)
			}
			d := ds[k] + t*(ds[k+1]-ds[k])
			if d < colD[c] {
				colD[c] = d
				colU[c] = (float64(k) + t) / sub
			}
		}
	}
	for c := 0; c < tex.w; c++ {
		u := colU[c]
		if math.IsNaN(u) {
			continue
		}
		scale := colD[c] / f // source rows per output row
		for y := 0; y < tex.h; y++ {
			v := cam.Cy - (cam.Cy-float64(y))*scale
			if !(v > -0.5 && v < float64(tex.h)-0.5) {
				continue
			}
			tex.sampleTo(out.Pix[y*out.Stride+4*c:], u, v)
		}
	}
	return out
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

// inverse3 inverts a 3×3 matrix; ok is false when it is singular or not
// finite.
func inverse3(m [3][3]float64) ([3][3]float64, bool) {
	var inv [3][3]float64
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
	if !(math.Abs(det) > 1e-15*norm*norm*norm) || math.IsInf(det, 0) {
		return inv, false
	}
	id := 1 / det
	inv[0] = [3]float64{c00 * id, (m[0][2]*m[2][1] - m[0][1]*m[2][2]) * id, (m[0][1]*m[1][2] - m[0][2]*m[1][1]) * id}
	inv[1] = [3]float64{c01 * id, (m[0][0]*m[2][2] - m[0][2]*m[2][0]) * id, (m[0][2]*m[1][0] - m[0][0]*m[1][2]) * id}
	inv[2] = [3]float64{c02 * id, (m[0][1]*m[2][0] - m[0][0]*m[2][1]) * id, (m[0][0]*m[1][1] - m[0][1]*m[1][0]) * id}
	return inv, true
}
