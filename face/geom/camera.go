package geom

import "math"

// Camera is a pinhole camera without distortion: focal length and
// principal point in pixels.
type Camera struct{ Focal, Cx, Cy float64 }

// DefaultCamera is the usual assumption for an uncalibrated webcam: focal
// length equal to the image width (a horizontal field of view of
// 2·atan(0.5) ≈ 53°, close to typical webcams' 50–65°) and the principal
// point at the image centre. Head-pose angles are insensitive to a focal
// error of this size; only the recovered distance scales with it.
func DefaultCamera(width, height int) Camera {
	return Camera{Focal: float64(width), Cx: float64(width) / 2, Cy: float64(height) / 2}
}

// ProjectPoint maps a camera-frame point (X right, Y up, Z toward the
// viewer, so visible points have Z < 0) to pixels. Points on or behind the
// camera plane give NaN coordinates.
func (c Camera) ProjectPoint(q Vec3) Point {
	if !(q.Z < 0) {
		return Point{math.NaN(), math.NaN()}
	}
	d := -q.Z
	return Point{c.Cx + c.Focal*q.X/d, c.Cy - c.Focal*q.Y/d}
}

// Rotate returns R·v.
func Rotate(R [3][3]float64, v Vec3) Vec3 {
	return Vec3{
		R[0][0]*v.X + R[0][1]*v.Y + R[0][2]*v.Z,
		R[1][0]*v.X + R[1][1]*v.Y + R[1][2]*v.Z,
		R[2][0]*v.X + R[2][1]*v.Y + R[2][2]*v.Z,
	}
}

// Project rotates model points by pose p about the model origin, moves them
// by t (the origin's position in the camera frame, t.Z < 0 in front of the
// camera) and projects them with cam. Points behind the camera come back as
// NaN.
func Project(model []Vec3, p Pose, t Vec3, cam Camera) []Point {
	R := RotationFromPose(p)
	out := make([]Point, len(model))
	for i, m := range model {
		out[i] = cam.ProjectPoint(Rotate(R, m).Add(t))
	}
	return out
}
