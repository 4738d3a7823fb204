package config

import (
	"fmt"
)

// Liveness mirrors the liveness checker's decision thresholds
// (liveness.Config; its doc comments and liveness/README.md say where each
// default comes from). The package liveness needs OpenCV, so it is not
// imported here: the fields are the same, in the same order and with the
// same types, and the agent converts with a plain type conversion
// (agent.LivenessConfig), which stops compiling when liveness.Config gains
// or changes a field. A test in cmd/bwsagent checks that the defaults and
// the validation rules agree with liveness.DefaultConfig and
// liveness.Config.Validate.
type Liveness struct {
	// MinFaceSize is the smallest face box side (pixels) of a sample.
	MinFaceSize float64 `yaml:"minFaceSize"`
	// SecondFaceRatio: another face at least this fraction of the primary
	// face's size makes the sample ambiguous (MultipleFacesFound).
	SecondFaceRatio float64 `yaml:"secondFaceRatio"`
	// MinSimilarity is the lowest template similarity between any two
	// samples of a job (below it the person changed mid-sequence).
	MinSimilarity float64 `yaml:"minSimilarity"`
	// MinParallaxDeg is the head rotation (degrees) the depth parallax of
	// the tracked points must explain for a step to count as 3-D motion;
	// MinParallaxZ its significance (parallax over its standard error).
	MinParallaxDeg float64 `yaml:"minParallaxDeg"`
	MinParallaxZ   float64 `yaml:"minParallaxZ"`
	// MinLandmarkParallaxDeg replaces MinParallaxDeg when too few points
	// could be tracked: the parallax of the 68 landmarks alone.
	MinLandmarkParallaxDeg float64 `yaml:"minLandmarkParallaxDeg"`
	// MaxDirectionError is the largest angle (degrees) between the parallax
	// direction and the head-pose change of a 3-D step.
	MaxDirectionError float64 `yaml:"maxDirectionError"`
	// MinChallengeDeg is the least head rotation (degrees) a challenge step
	// needs in its tagged direction.
	MinChallengeDeg float64 `yaml:"minChallengeDeg"`
	// MaxStepDeg is the largest head rotation between consecutive samples,
	// MaxYaw and MaxPitch the largest absolute pose (degrees).
	MaxStepDeg float64 `yaml:"maxStepDeg"`
	MaxYaw     float64 `yaml:"maxYaw"`
	MaxPitch   float64 `yaml:"maxPitch"`
	// MaxScaleChange is the largest ratio of face sizes between consecutive
	// samples; MaxShift the largest move of the face between them, in face
	// radii.
	MaxScaleChange float64 `yaml:"maxScaleChange"`
	MaxShift       float64 `yaml:"maxShift"`
	// MinPAD is the lowest mean passive PAD score (probability of a live
	// face) over the job's samples.
	MinPAD float64 `yaml:"minPad"`
	// MaxMoire is the highest median moiré score over the job's samples;
	// 0 disables the check.
	MaxMoire float64 `yaml:"maxMoire"`
	// MaxFramed is the largest share of the job's samples that may show a
	// frame around the face (a screen's bezel, a print's border); 1
	// disables the check.
	MaxFramed float64 `yaml:"maxFramed"`
}

// defaultLiveness is part of Default: liveness.DefaultConfig's values.
func defaultLiveness() Liveness {
	return Liveness{
		MinFaceSize:            64,
		SecondFaceRatio:        0.5,
		MinSimilarity:          0.27,
		MinParallaxDeg:         3.5,
		MinParallaxZ:           4,
		MinLandmarkParallaxDeg: 14,
		MaxDirectionError:      60,
		MinChallengeDeg:        4,
		MaxStepDeg:             45,
		MaxYaw:                 50,
		MaxPitch:               40,
		MaxScaleChange:         1.6,
		MaxShift:               3,
		MinPAD:                 0.5,
		MaxMoire:               0.95,
		MaxFramed:              0.34,
	}
}

// validateLiveness checks the liveness section with liveness.Config.Validate's
// rules, naming the keys.
func (c Config) validateLiveness() []error {
	var errs []error
	l := c.Liveness
	for _, r := range []struct {
		key    string
		v      float64
		lo, hi float64
	}{
		{"minFaceSize", l.MinFaceSize, 0, 10000},
		{"secondFaceRatio", l.SecondFaceRatio, 0, 1},
		{"minSimilarity", l.MinSimilarity, -1, 1},
		{"minParallaxDeg", l.MinParallaxDeg, 0, 90},
		{"minParallaxZ", l.MinParallaxZ, 0, 1000},
		{"minLandmarkParallaxDeg", l.MinLandmarkParallaxDeg, 0, 90},
		{"maxDirectionError", l.MaxDirectionError, 0, 180},
		{"minChallengeDeg", l.MinChallengeDeg, 0, 90},
		{"maxStepDeg", l.MaxStepDeg, 1, 180},
		{"maxYaw", l.MaxYaw, 1, 90},
		{"maxPitch", l.MaxPitch, 1, 90},
		{"maxScaleChange", l.MaxScaleChange, 1, 100},
		{"maxShift", l.MaxShift, 0, 1000},
		{"minPad", l.MinPAD, 0, 1},
		{"maxMoire", l.MaxMoire, 0, 100},
		{"maxFramed", l.MaxFramed, 0, 1},
	} {
		// Written so that NaN fails too.
		if !(r.v >= r.lo && r.v <= r.hi) {
			errs = append(errs, fmt.Errorf("'liveness.%s' must be in [%g, %g], got %g", r.key, r.lo, r.hi, r.v))
		}
	}
	if l.MinChallengeDeg > l.MaxStepDeg {
		errs = append(errs, fmt.Errorf("'liveness.minChallengeDeg' must not exceed 'liveness.maxStepDeg' (%g), got %g", l.MaxStepDeg, l.MinChallengeDeg))
	}
	return errs
}
