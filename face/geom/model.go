// Package geom holds the head geometry shared by the face pipeline: the
// canonical 3-D face, the project-wide head-pose convention, a pinhole
// camera, a PnP pose solver, the similarity transform used for 5-point
// face alignment and a Delaunay triangulator.
//
// # Coordinate frames
//
// Image points (Point) are pixels with the usual image convention: X grows
// to the right, Y grows downward, pixel (i, j) is centred on (i, j).
//
// 3-D points (Vec3) — the canonical model and the camera frame — use one
// right-handed frame: X toward the image's right, Y toward the image's TOP,
// Z toward the camera (out of the screen). A face in front of the camera
// therefore has negative camera Z; its distance is -Z.
//
// The pose convention is documented on Pose.
//
// Everything here is pure Go without cgo so that it builds everywhere,
// including CGO_ENABLED=0 evaluation tools.
package geom

// Point is a 2-D image point in pixels (Y grows downward).
type Point struct{ X, Y float64 }

// Vec3 is a 3-D point or vector in millimetres (X right, Y up, Z toward the
// camera).
type Vec3 struct{ X, Y, Z float64 }

// Add returns v+w.
func (v Vec3) Add(w Vec3) Vec3 { return Vec3{v.X + w.X, v.Y + w.Y, v.Z + w.Z} }

// Sub returns v-w.
func (v Vec3) Sub(w Vec3) Vec3 { return Vec3{v.X - w.X, v.Y - w.Y, v.Z - w.Z} }

// Scale returns s·v.
func (v Vec3) Scale(s float64) Vec3 { return Vec3{s * v.X, s * v.Y, s * v.Z} }

// Landmark index ranges of the iBUG/dlib 68-point scheme, for callers that
// need to select groups (e.g. the jaw contour slides under yaw).
const (
	JawFirst, JawLast         = 0, 16
	RightBrowFirst            = 17 // person's right = image-left
	LeftBrowFirst             = 22
	NoseBridgeFirst, NoseTip  = 27, 30
	NostrilFirst, NostrilLast = 31, 35
	RightEyeFirst             = 36 // 36..41, person's right = image-left
	LeftEyeFirst              = 42 // 42..47
	MouthFirst, MouthLast     = 48, 67
)

// RotationCentreBehindNoseTip is how far (mm, along -Z) the origin of
// Canonical68 — the head's rotation centre — lies behind the nose tip.
const RotationCentreBehindNoseTip = 95.0

// Canonical68 returns a canonical mean adult face in the iBUG/dlib 68-point
// order, in millimetres, with the origin at the head's rotation centre.
//
// The table was written from anthropometric averages rather than fitted to
// any data set, in a "face frame" whose origin is the midpoint between the
// inner eye corners and whose Y=0 is the eye line:
//
//   - eyes: inner corners at ±17, outer corners at ±46 (palpebral fissure
//     ~29 mm), so the eye centres are 63 mm apart; the outer corners sit
//     9 mm behind the inner ones and 1 mm higher (canthal tilt), the lids
//     ±4.5 mm around the eye line over the bulge of the eyeball;
//   - brows 16–23 mm above the eye line, arched, receding laterally;
//   - nose: bridge from the nasion (+7 mm in front of the inner corners)
//     to the tip 35 mm below the eye line and 24 mm in front of the inner
//     corners; alar base ±14 mm, subnasale 43 mm below the eye line;
//   - mouth 50 mm wide, stomion 64 mm below the eye line, lips 9–12 mm in
//     front of the inner eye corners (behind the nose tip, ahead of the
//     eyes), the corners receding to -2 mm;
//   - jaw contour (points 0–16) as seen on a frontal silhouette: 144 mm wide
//     at eye level where it lies far back toward the ears (-62 mm), curving
//     forward and inward to the chin (menton) 110 mm below the eye line.
//
// The face frame is then shifted so the origin is the rotation centre,
// which for simplicity is placed between the ears: 20 mm below the eye
// line and RotationCentreBehindNoseTip (95 mm) behind the nose tip. Only
// the renderer's motion depends on that choice; pose estimation does not.
//
// The model is exactly left/right symmetric: image-left points are listed
// and mirrored.
func Canonical68() [68]Vec3 {
	var p [68]Vec3
	set := func(i int, x, y, z float64) { p[i] = Vec3{x, y, z} }

	// Jaw, image-left half (person's right) and the chin.
	set(0, -72, -4, -62)
	set(1, -71, -20, -57)
	set(2, -69, -36, -51)
	set(3, -66, -52, -44)
	set(4, -60, -67, -35)
	set(5, -51, -82, -25)
	set(6, -40, -95, -15)
	set(7, -22, -105, -6)
	set(8, 0, -110, -2)

	// Right brow (image-left), outer to inner.
	set(17, -50, 16, -14)
	set(18, -41, 21, -6)
	set(19, -31, 23, -1)
	set(20, -21, 22, 3)
	set(21, -12, 19, 5)

	// Nose bridge and tip.
	set(27, 0, 1, 7)
	set(28, 0, -11, 12)
	set(29, 0, -23, 18)
	set(30, 0, -35, 24)

	// Nostrils, image-left to centre.
	set(31, -14, -40, 5)
	set(32, -7, -42, 10)
	set(33, 0, -43, 12)

	// Right eye (image-left): outer corner, upper lid, inner corner, lower lid.
	set(36, -46, 1, -9)
	set(37, -36.5, 4.5, -2)
	set(38, -26.5, 4.5, 1)
	set(39, -17, 0, 0)
	set(40, -26.5, -4.5, 0)
	set(41, -36.5, -4.5, -3)

	// Mouth: outer contour then inner contour.
	set(48, -25, -64, -2)
	set(49, -15, -58.5, 7)
	set(50, -6, -56, 11)
	set(51, 0, -57, 12)
	set(57, 0, -74.5, 10)
	set(58, -8, -73.5, 9)
	set(59, -16, -70, 5)
	set(60, -21, -64, 0)
	set(61, -8, -63, 8)
	set(62, 0, -63, 9)
	set(66, 0, -65, 9)
	set(67, -8, -65, 8)

	mirror := func(src, dst int) { p[dst] = Vec3{-p[src].X, p[src].Y, p[src].Z} }
	for i := 0; i < 8; i++ {
		mirror(i, 16-i)
	}
	for i := 0; i < 5; i++ {
		mirror(17+i, 26-i)
	}
	mirror(31, 35)
	mirror(32, 34)
	for _, m := range [][2]int{
		{36, 45}, {37, 44}, {38, 43}, {39, 42}, {40, 47}, {41, 46},
		{48, 54}, {49, 53}, {50, 52}, {59, 55}, {58, 56},
		{60, 64}, {61, 63}, {67, 65},
	} {
		mirror(m[0], m[1])
	}

	// Face frame → rotation-centre frame.
	off := Vec3{0, 20, RotationCentreBehindNoseTip - 24}
	for i := range p {
		p[i] = p[i].Add(off)
	}
	return p
}
