package liveness

import (
	"math"
	"slices"
	"testing"

	"github.com/bwsagent/bwsagent/face/geom"
)

var (
	challengeTags = []string{TagAny, TagLeft, TagRight, TagDown}
	anyTags       = []string{TagAny, TagAny, TagAny, TagAny}
	// A head following [left, right, down] in the image: nose to image-left
	// (yaw −), back, then down (pitch −).
	followPoses = []geom.Pose{{}, {Yaw: -12}, {Yaw: -1}, {Yaw: -1, Pitch: -11}}
)

func TestDecide(t *testing.T) {
	cfg := DefaultConfig()
	swap := func(s []Sample) []Sample {
		s[2].Embedding = person(2)
		return s
	}
	lowPAD := func(s []Sample) []Sample {
		for i := range s {
			s[i].PAD = 0.05
		}
		return s
	}
	framedIn := func(n int) func([]Sample) []Sample {
		return func(s []Sample) []Sample {
			for i := range n {
				s[i].Frame = sideBottom | sideLeft | sideRight
			}
			return s
		}
	}
	unusable := func(i int, problem string) func([]Sample) []Sample {
		return func(s []Sample) []Sample {
			s[i].Problem = problem
			if problem == ProblemMultipleFaces {
				s[i].Faces = 2
			}
			return s
		}
	}
	tests := []struct {
		name      string
		samples   func(t *testing.T) []Sample
		challenge bool
		live      bool
		code      string
		passed    bool
	}{
		{"3-D turn follows the challenge", func(t *testing.T) []Sample {
			return live(t, challengeTags, followPoses...)
		}, true, true, "", true},
		{"3-D turn, liveness only", func(t *testing.T) []Sample {
			return live(t, anyTags, followPoses...)
		}, false, true, "", false},
		{"3-D turn the wrong way", func(t *testing.T) []Sample {
			return live(t, challengeTags, geom.Pose{}, geom.Pose{Yaw: 12}, geom.Pose{Yaw: 1}, geom.Pose{Yaw: 1, Pitch: -11})
		}, true, false, CodeChallengeResponseFailed, false},
		{"too small a turn for the challenge", func(t *testing.T) []Sample {
			return live(t, challengeTags, geom.Pose{}, geom.Pose{Yaw: -12}, geom.Pose{Yaw: -1}, geom.Pose{Yaw: -1, Pitch: -1})
		}, true, false, CodeChallengeResponseFailed, false},
		{"no motion", func(t *testing.T) []Sample {
			return live(t, challengeTags, geom.Pose{}, geom.Pose{}, geom.Pose{}, geom.Pose{})
		}, true, false, CodeLiveDetectionFailed, false},
		{"tilted print follows the challenge", func(t *testing.T) []Sample {
			return printed(t, challengeTags, tilt(0, 0, geom.Point{}), tilt(-25, 0, geom.Point{X: -10}),
				tilt(0, 0, geom.Point{}), tilt(0, -25, geom.Point{Y: 8}))
		}, true, false, CodeLiveDetectionFailed, false},
		{"tilted print, liveness only", func(t *testing.T) []Sample {
			return printed(t, anyTags, tilt(0, 0, geom.Point{}), tilt(20, 10, geom.Point{}), tilt(-15, 0, geom.Point{}), tilt(5, -20, geom.Point{}))
		}, false, false, CodeLiveDetectionFailed, false},
		{"print moved, scaled and rotated", func(t *testing.T) []Sample {
			return printed(t, challengeTags, tilt(0, 0, geom.Point{}),
				moved(0.95, 8, geom.Point{X: -40}), moved(1.05, -5, geom.Point{X: 20}), moved(1, 0, geom.Point{Y: 35}))
		}, true, false, CodeLiveDetectionFailed, false},
		{"person swap", func(t *testing.T) []Sample {
			return swap(live(t, challengeTags, followPoses...))
		}, true, false, CodeLiveDetectionFailed, true},
		{"low passive PAD", func(t *testing.T) []Sample {
			return lowPAD(live(t, challengeTags, followPoses...))
		}, true, false, CodeLiveDetectionFailed, true},
		{"a screen bezel around the face in 2 of 4 samples", func(t *testing.T) []Sample {
			return framedIn(2)(live(t, challengeTags, followPoses...))
		}, true, false, CodeLiveDetectionFailed, true},
		{"a frame in 1 of 4 samples is tolerated", func(t *testing.T) []Sample {
			return framedIn(1)(live(t, challengeTags, followPoses...))
		}, true, true, "", true},
		{"a second face", func(t *testing.T) []Sample {
			return unusable(1, ProblemMultipleFaces)(live(t, challengeTags, followPoses...))
		}, true, false, CodeLiveDetectionFailed, false},
		{"a tagged sample without a face", func(t *testing.T) []Sample {
			return unusable(3, ProblemNoFace)(live(t, challengeTags, followPoses...))
		}, true, false, CodeChallengeResponseFailed, false},
		{"one usable sample", func(t *testing.T) []Sample {
			return unusable(1, ProblemNoFace)(live(t, anyTags[:2], geom.Pose{}, geom.Pose{Yaw: 10}))
		}, false, false, CodeNotEnoughSamples, false},
		{"one sample", func(t *testing.T) []Sample {
			return live(t, anyTags[:1], geom.Pose{})
		}, false, false, CodeNotEnoughSamples, false},
		{"no samples", func(t *testing.T) []Sample { return nil }, true, false, CodeNotEnoughSamples, false},
		{"a small face's PnP pose overshoots a real 12° turn to 48°", func(t *testing.T) []Sample {
			s := live(t, anyTags, followPoses...)
			s[1].Face.Pose.Yaw = s[0].Face.Pose.Yaw - 48 // the tracked parallax still says ~12°
			return s
		}, false, true, "", false},
		{"PnP pose and parallax together turn too far", func(t *testing.T) []Sample {
			s := live(t, anyTags, followPoses...)
			s[0].Face.Pose.Yaw, s[1].Face.Pose.Yaw = 40, -45 // (85° + ~12°) / 2 > MaxStepDeg; |yaw| < MaxYaw
			return s
		}, false, false, CodeLiveDetectionFailed, false},
		{"face jumps across the image", func(t *testing.T) []Sample {
			s := live(t, anyTags, followPoses...)
			for i := range s[2].Face.Landmarks {
				s[2].Face.Landmarks[i].X += 250
			}
			return s
		}, false, false, CodeLiveDetectionFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(&cfg, tt.samples(t), tt.challenge)
			if d.Live != tt.live || d.Code != tt.code || d.ChallengePassed != tt.passed {
				t.Errorf("live=%v code=%q challenge passed=%v, want %v %q %v; reasons %v; motion %.2f",
					d.Live, d.Code, d.ChallengePassed, tt.live, tt.code, tt.passed, d.Reasons, d.Scores["motion"])
			}
			if d.Live && (d.Code != "" || len(d.Reasons) != 0) {
				t.Errorf("live with code %q and reasons %v", d.Code, d.Reasons)
			}
			if !d.Live && len(d.Reasons) == 0 {
				t.Error("rejected without a reason")
			}
			if s, ok := d.Scores["score"]; !ok || math.IsNaN(s) {
				t.Errorf("score = %v, %v", s, ok)
			}
		})
	}
}

// TestParallaxMeasures checks the two 3-D measurements directly: a turning
// head shows parallax close to its turn in the turn's direction, a tilted
// print none.
func TestParallaxMeasures(t *testing.T) {
	for _, tt := range []struct {
		name    string
		samples func(t *testing.T) []Sample
		minDeg  float64
		maxDeg  float64
		quad    string
	}{
		{"head turns right 10°", func(t *testing.T) []Sample {
			return live(t, anyTags[:2], geom.Pose{}, geom.Pose{Yaw: 10})
		}, 6, 15, TagRight},
		{"head turns up 8°", func(t *testing.T) []Sample {
			return live(t, anyTags[:2], geom.Pose{Yaw: 5}, geom.Pose{Yaw: 5, Pitch: 8})
		}, 4, 13, TagUp},
		{"print turned 25°", func(t *testing.T) []Sample {
			return printed(t, anyTags[:2], tilt(0, 0, geom.Point{}), tilt(25, 0, geom.Point{}))
		}, 0, 1.5, ""},
		{"print tilted back 25°", func(t *testing.T) []Sample {
			return printed(t, anyTags[:2], tilt(0, 0, geom.Point{}), tilt(0, 25, geom.Point{X: 15}))
		}, 0, 1.5, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.samples(t)
			f := measureFlow(&s[0], &s[1])
			if !f.OK {
				t.Fatalf("tracking failed (%d points)", f.Points)
			}
			if f.ParallaxDeg < tt.minDeg || f.ParallaxDeg > tt.maxDeg {
				t.Errorf("flow parallax %.2f°, want [%g, %g]", f.ParallaxDeg, tt.minDeg, tt.maxDeg)
			}
			if tt.quad != "" && geom.Quadrant(f.ParallaxAngle) != tt.quad {
				t.Errorf("parallax direction %.0f° is %s, want %s", f.ParallaxAngle, geom.Quadrant(f.ParallaxAngle), tt.quad)
			}
			g := measureStep((*[68]geom.Point)(&s[0].Face.Landmarks), (*[68]geom.Point)(&s[1].Face.Landmarks), s[0].Face.Pose, s[1].Face.Pose)
			if !g.OK {
				t.Fatal("landmark fit failed")
			}
			// Exact landmarks: the landmark parallax agrees with the flow.
			if tt.quad == "" && g.ParallaxDeg > 0.5 || tt.quad != "" && geom.Quadrant(g.ParallaxAngle) != tt.quad {
				t.Errorf("landmark parallax %.2f° at %.0f°", g.ParallaxDeg, g.ParallaxAngle)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*Config)
	}{
		{"MinPAD", func(c *Config) { c.MinPAD = 1.5 }},
		{"MinParallaxDeg", func(c *Config) { c.MinParallaxDeg = math.NaN() }},
		{"MinChallengeDeg", func(c *Config) { c.MinChallengeDeg = 50 }},
		{"MaxScaleChange", func(c *Config) { c.MaxScaleChange = 0.5 }},
	} {
		c := DefaultConfig()
		tt.mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: invalid config accepted", tt.name)
		}
	}
	if _, err := New(nil, DefaultConfig()); err == nil {
		t.Error("New with a nil engine succeeded")
	}
}

func TestAngleDiffAndTags(t *testing.T) {
	for _, c := range [][3]float64{{10, 350, 20}, {0, 180, 180}, {90, 90, 0}, {-45, 45, 90}} {
		if got := angleDiff(c[0], c[1]); math.Abs(got-c[2]) > 1e-9 {
			t.Errorf("angleDiff(%v, %v) = %v, want %v", c[0], c[1], got, c[2])
		}
	}
	for _, tag := range []string{TagAny, TagUp, TagDown, TagLeft, TagRight} {
		if !ValidTag(tag) {
			t.Errorf("ValidTag(%q) = false", tag)
		}
	}
	if ValidTag("forward") || isDirection(TagAny) {
		t.Error("unknown tag accepted")
	}
	if !slices.Equal(challengeTags[1:], []string{"left", "right", "down"}) {
		t.Fatal("test tags changed")
	}
}
