package geom

import "math"

// Pose is a head orientation in degrees, expressed in the image's own
// coordinates (never mirrored, even if a preview is shown mirrored).
// This is the ONE pose convention of the project:
//
//   - Yaw > 0: the face turns so the nose points toward the image's RIGHT
//     edge.
//   - Pitch > 0: the face turns UP (nose toward the image's top).
//   - Roll > 0: the head tilts COUNTER-CLOCKWISE as seen in the image.
//
// The rotation taking the canonical model (looking at the camera) to the
// pose is R = Ry(Yaw) · Rx(−Pitch) · Rz(Roll) in the right/up/toward-camera
// frame: roll about the nose axis first, then pitch, then yaw about the
// vertical. With that order the nose direction is
// (sin Yaw·cos Pitch, sin Pitch, cos Yaw·cos Pitch): Yaw is the nose's
// longitude and Pitch its latitude, so a change of pose moves the nose in
// the image along (ΔYaw, ΔPitch) — see MotionDirection.
type Pose struct{ Yaw, Pitch, Roll float64 }

const (
	deg2rad = math.Pi / 180
	rad2deg = 180 / math.Pi
)

// RotationFromPose returns the rotation matrix of p (see Pose). Model
// points map to camera-aligned points as R·m.
func RotationFromPose(p Pose) [3][3]float64 {
	sy, cy := math.Sincos(p.Yaw * deg2rad)
	sb, cb := math.Sincos(-p.Pitch * deg2rad)
	sr, cr := math.Sincos(p.Roll * deg2rad)
	// Ry(y)·Rx(b)·Rz(r), expanded.
	return [3][3]float64{
		{cy*cr + sy*sb*sr, -cy*sr + sy*sb*cr, sy * cb},
		{cb * sr, cb * cr, -sb},
		{-sy*cr + cy*sb*sr, sy*sr + cy*sb*cr, cy * cb},
	}
}

// PoseFromRotation inverts RotationFromPose. Angles come back in
// (-180, 180] for Yaw and Roll and [-90, 90] for Pitch. At the gimbal lock
// (|Pitch| = 90°) Roll is set to 0 and the remaining rotation goes to Yaw.
func PoseFromRotation(R [3][3]float64) Pose {
	sb := -R[1][2] // sin(-pitch)
	sb = math.Max(-1, math.Min(1, sb))
	b := math.Asin(sb)
	cb := math.Hypot(R[1][0], R[1][1])
	var yaw, roll float64
	if cb > 1e-9 {
		yaw = math.Atan2(R[0][2], R[2][2])
		roll = math.Atan2(R[1][0], R[1][1])
	} else {
		// R = Ry(y)·Rx(±90°)·Rz(r) depends only on y∓r; put it all in yaw.
		// With r = 0: R[0][0] = cos y, R[2][0] = -sin y.
		yaw = math.Atan2(-R[2][0], R[0][0])
	}
	return Pose{Yaw: yaw * rad2deg, Pitch: -b * rad2deg, Roll: roll * rad2deg}
}

// MotionDirection returns the direction in which the nose moves in the
// image between two poses, as atan2(ΔPitch, ΔYaw) in degrees in [0, 360)
// with right = 0°, up = 90°, left = 180°, down = 270°, and the size of the
// move, hypot(ΔYaw, ΔPitch) in degrees. Roll is ignored.
func MotionDirection(from, to Pose) (angleDeg, magnitudeDeg float64) {
	dy := to.Yaw - from.Yaw
	dp := to.Pitch - from.Pitch
	return normDeg360(math.Atan2(dp, dy) * rad2deg), math.Hypot(dy, dp)
}

// Quadrant names the ±45° sector an angle from MotionDirection falls in:
// "right" for [-45, 45), "up" for [45, 135), "left" for [135, 225) and
// "down" for [225, 315). Any angle is accepted (it is reduced modulo 360);
// NaN or ±Inf gives "".
func Quadrant(angleDeg float64) string {
	if math.IsNaN(angleDeg) || math.IsInf(angleDeg, 0) {
		return ""
	}
	a := normDeg360(angleDeg + 45)
	switch {
	case a < 90:
		return "right"
	case a < 180:
		return "up"
	case a < 270:
		return "left"
	default:
		return "down"
	}
}

// normDeg360 reduces an angle to [0, 360).
func normDeg360(a float64) float64 {
	a = math.Mod(a, 360)
	if a < 0 {
		a += 360
	}
	if a >= 360 { // -tiny + 360 rounds to 360
		a = 0
	}
	return a
}
