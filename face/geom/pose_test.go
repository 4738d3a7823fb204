package geom

import (
	"math"
	"testing"
)

func TestCanonical68Anthropometry(t *testing.T) {
	m := Canonical68()
	eye := func(first int) Vec3 {
		var c Vec3
		for i := first; i < first+6; i++ {
			c = c.Add(m[i])
		}
		return c.Scale(1.0 / 6)
	}
	re, le := eye(RightEyeFirst), eye(LeftEyeFirst)
	if iod := le.X - re.X; math.Abs(iod-63) > 0.01 {
		t.Errorf("inter-ocular distance = %.2f mm, want 63", iod)
	}
	if re.X >= 0 || m[0].X >= 0 || m[36].X >= m[39].X {
		t.Errorf("person's right (image-left) features must have X < 0: eye %v jaw0 %v", re, m[0])
	}
	if got := m[NoseTip].Z; got != RotationCentreBehindNoseTip {
		t.Errorf("nose tip Z = %v, want %v", got, RotationCentreBehindNoseTip)
	}
	if prot := m[NoseTip].Z - m[39].Z; prot < 20 || prot > 25 {
		t.Errorf("nose protrusion over inner eye corner = %v mm", prot)
	}
	if m[51].Z <= m[36].Z || m[51].Z >= m[NoseTip].Z {
		t.Errorf("upper lip should lie between the eyes and the nose tip in depth")
	}
	if m[8].Y >= m[57].Y || m[19].Y <= m[37].Y {
		t.Errorf("chin below the mouth and brows above the eyes")
	}
	// Exact left/right symmetry: every point has a mirror partner.
	for i, p := range m {
		found := false
		for _, q := range m {
			if q.X == -p.X && q.Y == p.Y && q.Z == p.Z {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("point %d %v has no mirror image", i, p)
		}
	}
}

func TestRotationRoundTrip(t *testing.T) {
	for _, p := range []Pose{
		{}, {30, 0, 0}, {0, 30, 0}, {0, 0, 30}, {-45, 20, -10}, {170, -80, 120},
		{12.5, -33, 179}, {-179, 89, -179},
	} {
		R := RotationFromPose(p)
		// Orthonormal with det +1.
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				want := 0.0
				if i == j {
					want = 1
				}
				if got := dot3(R[i], R[j]); math.Abs(got-want) > 1e-12 {
					t.Fatalf("%v: R not orthonormal", p)
				}
			}
		}
		if det := dot3(R[0], cross3(R[1], R[2])); math.Abs(det-1) > 1e-12 {
			t.Fatalf("%v: det = %v", p, det)
		}
		q := PoseFromRotation(R)
		if math.Abs(q.Yaw-p.Yaw) > 1e-9 || math.Abs(q.Pitch-p.Pitch) > 1e-9 || math.Abs(q.Roll-p.Roll) > 1e-9 {
			t.Errorf("round trip %v -> %v", p, q)
		}
	}
	// Gimbal lock: the rotation must still be reproduced.
	p := Pose{Yaw: 20, Pitch: 90, Roll: 15}
	R := RotationFromPose(p)
	R2 := RotationFromPose(PoseFromRotation(R))
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			if math.Abs(R[i][j]-R2[i][j]) > 1e-9 {
				t.Fatalf("gimbal lock: %v != %v", R, R2)
			}
		}
	}
}

// TestPoseSigns pins the project-wide convention in 3-D and in the image.
func TestPoseSigns(t *testing.T) {
	cam := DefaultCamera(640, 480)
	model := Canonical68()
	tr := Vec3{0, 0, -600}
	front := Project(model[:], Pose{}, tr, cam)
	eyeMid := func(p []Point) Point {
		return Point{(p[39].X + p[42].X) / 2, (p[39].Y + p[42].Y) / 2}
	}
	tests := []struct {
		pose  Pose
		check func(nose Vec3, img []Point) bool
		what  string
	}{
		{Pose{Yaw: 20}, func(n Vec3, img []Point) bool {
			return n.X > 0 && img[NoseTip].X > eyeMid(img).X+5
		}, "yaw>0: nose toward image right"},
		{Pose{Yaw: -20}, func(n Vec3, img []Point) bool {
			return n.X < 0 && img[NoseTip].X < eyeMid(img).X-5
		}, "yaw<0: nose toward image left"},
		{Pose{Pitch: 20}, func(n Vec3, img []Point) bool {
			return n.Y > 0 && img[NoseTip].Y < front[NoseTip].Y-5
		}, "pitch>0: nose toward image top"},
		{Pose{Roll: 20}, func(n Vec3, img []Point) bool {
			// Counter-clockwise on screen: the image-right eye rises.
			return img[45].Y < img[36].Y-5
		}, "roll>0: counter-clockwise"},
	}
	for _, tc := range tests {
		nose := Rotate(RotationFromPose(tc.pose), Vec3{0, 0, 1})
		img := Project(model[:], tc.pose, tr, cam)
		if !tc.check(nose, img) {
			t.Errorf("%s: nose dir %v, nose px %v", tc.what, nose, img[NoseTip])
		}
	}
}

func TestMotionDirection(t *testing.T) {
	tests := []struct {
		from, to  Pose
		angle, mg float64
		quadrant  string
	}{
		{Pose{}, Pose{Yaw: 10}, 0, 10, "right"},
		{Pose{}, Pose{Pitch: 10}, 90, 10, "up"},
		{Pose{}, Pose{Yaw: -10}, 180, 10, "left"},
		{Pose{}, Pose{Pitch: -10}, 270, 10, "down"},
		{Pose{Yaw: 5, Pitch: 5}, Pose{Yaw: 8, Pitch: 8, Roll: 40}, 45, 3 * math.Sqrt2, "up"},
		{Pose{}, Pose{Yaw: 10, Pitch: -1}, 360 - math.Atan(0.1)*rad2deg, math.Hypot(10, 1), "right"},
		{Pose{}, Pose{Yaw: -3, Pitch: -4}, 180 + math.Atan2(4, 3)*rad2deg, 5, "down"},
	}
	for _, tc := range tests {
		a, m := MotionDirection(tc.from, tc.to)
		if math.Abs(a-tc.angle) > 1e-9 || math.Abs(m-tc.mg) > 1e-9 {
			t.Errorf("MotionDirection(%v, %v) = %v, %v; want %v, %v", tc.from, tc.to, a, m, tc.angle, tc.mg)
		}
		if q := Quadrant(a); q != tc.quadrant {
			t.Errorf("Quadrant(%v) = %q, want %q", a, q, tc.quadrant)
		}
	}
}

func TestQuadrant(t *testing.T) {
	tests := []struct {
		a    float64
		want string
	}{
		{0, "right"}, {44.9, "right"}, {-45, "right"}, {315, "right"}, {359.9, "right"}, {720, "right"},
		{45, "up"}, {90, "up"}, {134.9, "up"}, {-270, "up"},
		{135, "left"}, {180, "left"}, {-180, "left"}, {224.9, "left"},
		{225, "down"}, {270, "down"}, {-90, "down"}, {314.9, "down"},
		{math.NaN(), ""}, {math.Inf(1), ""},
	}
	for _, tc := range tests {
		if got := Quadrant(tc.a); got != tc.want {
			t.Errorf("Quadrant(%v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

func TestProjectBehindCamera(t *testing.T) {
	cam := DefaultCamera(640, 480)
	got := Project([]Vec3{{0, 0, 10}, {0, 0, -100}}, Pose{}, Vec3{}, cam)
	if !math.IsNaN(got[0].X) || got[1] != (Point{320, 240}) {
		t.Errorf("Project = %v", got)
	}
}
