package liveness

import (
	"fmt"
	"math"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
)

// Decision is the verdict on one job.
type Decision struct {
	Live bool
	// Code is the BWS error code, "" when Live.
	Code string
	// Reasons explain a rejection in words for logs; never biometric data.
	Reasons []string
	// Scores are the measurements behind the decision, for logs and the
	// evaluation (keys: see Decide).
	Scores map[string]float64
	// ChallengePassed is true when the job carried a challenge and every
	// tagged sample moved in its direction from its predecessor.
	ChallengePassed bool
}

// Decide judges the analysed samples of one job in upload order.
// challenge says the token carried a challenge (the tags are directions);
// without one only liveness is checked. Decide never fails: bad input is a
// rejection with a reason.
//
// The job is live when every usable sample shows the same person, no step
// between consecutive samples is physically implausible, at least one
// step shows 3-D head rotation (parallax that no flat or bent surface
// produces), and the passive cues pass (mean PAD, moiré, frame). With a
// challenge, every tagged sample must also have turned in its direction.
// The codes:
// fewer than two usable samples → NotEnoughSamples; liveness failed →
// LiveDetectionFailed; live but the challenge not followed →
// ChallengeResponseFailed.
//
// Scores keys: "samples" (usable samples), "similarity_min", "pad_mean",
// "pad_min", "moire" (median moiré score), "framed" (share of samples
// with a frame around the face), "motion" (3-D evidence, ≥ 1 passes),
// "pad" (passive evidence from PAD, moiré and frame, ≥ 1 passes), "score"
// (min of the two; 0 on a hard failure — the number the DET plot ranks),
// and per step k (1-based) "stepk.pose_deg",
// "stepk.pose_angle", "stepk.parallax_deg", "stepk.parallax_angle",
// "stepk.parallax_z", "stepk.flow_points", "stepk.flow_parallax_deg",
// "stepk.flow_parallax_angle", "stepk.flow_parallax_z",
// "stepk.flow_median", "stepk.scale", "stepk.shift", "stepk.evidence",
// "stepk.turn_angle", "stepk.turn_deg" (the turn the challenge and the
// step limit are checked against, see turnOf).
func (c *Checker) Decide(samples []Sample, challenge bool) Decision {
	return decide(&c.cfg, samples, challenge)
}

func decide(cfg *Config, samples []Sample, challenge bool) Decision {
	d := Decision{Scores: map[string]float64{}}
	fail := func(code, reason string, args ...any) Decision {
		d.Live = false
		if d.Code == "" {
			d.Code = code
		}
		d.Reasons = append(d.Reasons, fmt.Sprintf(reason, args...))
		return d
	}

	// Keep the usable samples; remember what the others lost.
	var use []*Sample
	lostTagged, multiple := 0, 0
	for i := range samples {
		s := &samples[i]
		if s.Usable() {
			use = append(use, s)
			continue
		}
		if s.Problem == ProblemMultipleFaces {
			multiple++
		}
		if isDirection(s.Tag) {
			lostTagged++
		}
	}
	d.Scores["samples"] = float64(len(use))
	d.Scores["score"] = 0
	if len(use) < 2 {
		return fail(CodeNotEnoughSamples, "%d of %d samples show one usable face; liveness needs two", len(use), len(samples))
	}

	// Same person throughout: every pair must match.
	simMin := math.Inf(1)
	for i := 1; i < len(use); i++ {
		for j := 0; j < i; j++ {
			s, err := face.Similarity(use[i].Embedding, use[j].Embedding)
			if err != nil {
				s = -1
			}
			simMin = math.Min(simMin, s)
		}
	}
	d.Scores["similarity_min"] = simMin

	// Passive PAD: the mean score over the samples.
	padSum, padMin := 0.0, 1.0
	for _, s := range use {
		padSum += s.PAD
		padMin = math.Min(padMin, s.PAD)
	}
	padMean := padSum / float64(len(use))
	padEv := padEvidence(padMean, cfg.MinPAD)
	d.Scores["pad_mean"] = padMean
	d.Scores["pad_min"] = padMin
	d.Scores["pad"] = padEv

	// Screen recapture: the median moiré score over the samples.
	moires := make([]float64, len(use))
	for i, s := range use {
		moires[i] = s.Moire
	}
	moire := median(moires)
	d.Scores["moire"] = moire
	if cfg.MaxMoire > 0 {
		// On the same scale as the PAD evidence: 1 at the threshold.
		padEv = math.Min(padEv, 1+(cfg.MaxMoire-moire)*2)
		d.Scores["pad"] = padEv
	}

	// A frame around the face: a screen's bezel, a print's border.
	nFramed := 0
	for _, s := range use {
		if framed(s.Frame) {
			nFramed++
		}
	}
	framedShare := float64(nFramed) / float64(len(use))
	d.Scores["framed"] = framedShare
	if cfg.MaxFramed < 1 {
		padEv = math.Min(padEv, 1+(cfg.MaxFramed-framedShare)*2)
		d.Scores["pad"] = padEv
	}

	// Motion, step by step.
	turns := make([][2]float64, 0, len(use)-1) // angle, magnitude
	motionEv := 0.0
	impossible := ""
	for k := 1; k < len(use); k++ {
		a, b := use[k-1], use[k]
		g := measureStep((*[68]geom.Point)(&a.Face.Landmarks), (*[68]geom.Point)(&b.Face.Landmarks), a.Face.Pose, b.Face.Pose)
		f := measureFlow(a, b)
		ang, mag := turnOf(&g, &f)
		turns = append(turns, [2]float64{ang, mag})
		ev := stepEvidence(cfg, &g, &f)
		motionEv = math.Max(motionEv, ev)
		p := fmt.Sprintf("step%d.", k)
		for key, v := range map[string]float64{
			"pose_deg": g.PoseMag, "pose_angle": g.PoseAngle,
			"parallax_deg": g.ParallaxDeg, "parallax_angle": g.ParallaxAngle, "parallax_z": g.ParallaxZ,
			"flow_points": float64(f.Points), "flow_parallax_deg": f.ParallaxDeg,
			"flow_parallax_angle": f.ParallaxAngle, "flow_parallax_z": f.ParallaxZ, "flow_median": f.MedianRes,
			"scale": g.Scale, "shift": g.Shift, "evidence": ev, "turn_angle": ang, "turn_deg": mag,
		} {
			d.Scores[p+key] = v
		}
		if impossible == "" {
			impossible = implausibleStep(cfg, k, &g, mag)
		}
	}
	for i, s := range use {
		if impossible == "" && (math.Abs(s.Face.Pose.Yaw) > cfg.MaxYaw || math.Abs(s.Face.Pose.Pitch) > cfg.MaxPitch) {
			impossible = fmt.Sprintf("sample %d: head turned too far (yaw %.0f°, pitch %.0f°)", i+1, s.Face.Pose.Yaw, s.Face.Pose.Pitch)
		}
	}
	d.Scores["motion"] = motionEv

	// Challenge: each tagged usable sample against its usable predecessor.
	if challenge {
		d.ChallengePassed = lostTagged == 0 && !isDirection(use[0].Tag)
		for k := 1; k < len(use); k++ {
			if tag := use[k].Tag; isDirection(tag) {
				if t := turns[k-1]; geom.Quadrant(t[0]) != tag || t[1] < cfg.MinChallengeDeg {
					d.ChallengePassed = false
				}
			}
		}
	}

	switch {
	case multiple > 0:
		return fail(CodeLiveDetectionFailed, "%d samples show more than one face", multiple)
	case simMin < cfg.MinSimilarity:
		return fail(CodeLiveDetectionFailed, "the samples show different persons (similarity %.2f < %.2f)", simMin, cfg.MinSimilarity)
	case impossible != "":
		return fail(CodeLiveDetectionFailed, "implausible motion: %s", impossible)
	}
	d.Scores["score"] = math.Min(motionEv, padEv)
	switch {
	case motionEv < 1:
		return fail(CodeLiveDetectionFailed, "no 3-D head motion (evidence %.2f)", motionEv)
	case padEv < 1 && padMean < cfg.MinPAD:
		return fail(CodeLiveDetectionFailed, "passive PAD: mean live score %.2f < %.2f", padMean, cfg.MinPAD)
	case padEv < 1 && cfg.MaxFramed < 1 && framedShare > cfg.MaxFramed:
		return fail(CodeLiveDetectionFailed, "a frame (screen bezel or print border) around the face in %d of %d samples", nFramed, len(use))
	case padEv < 1:
		return fail(CodeLiveDetectionFailed, "screen recapture: moiré score %.2f > %.2f", moire, cfg.MaxMoire)
	case challenge && !d.ChallengePassed:
		return fail(CodeChallengeResponseFailed, "head motion does not follow the challenge")
	}
	d.Live = true
	return d
}

func isDirection(tag string) bool {
	return tag == TagUp || tag == TagDown || tag == TagLeft || tag == TagRight
}

// turnOf estimates a step's head turn (direction in the MotionDirection
// convention, magnitude in degrees) as the mean of two independent
// measurements when both exist: the change of the PnP pose and the
// rotation the tracked points' parallax shows. The PnP pose alone misreads
// a turn by 45° or more now and then (a strong pitch bias after an up or
// down move, an expression pulling the landmarks); the parallax alone is
// zero for a print. Their mean keeps the direction of a real turn and
// halves a print's.
func turnOf(g *stepGeometry, f *flowGeometry) (angle, mag float64) {
	if !f.OK {
		return g.PoseAngle, g.PoseMag
	}
	ps, pc := math.Sincos(g.PoseAngle * math.Pi / 180)
	fs, fc := math.Sincos(f.ParallaxAngle * math.Pi / 180)
	y := (g.PoseMag*pc + f.ParallaxDeg*fc) / 2
	p := (g.PoseMag*ps + f.ParallaxDeg*fs) / 2
	return geom.MotionDirection(geom.Pose{}, geom.Pose{Yaw: y, Pitch: p})
}

// stepEvidence is one step's 3-D evidence, ≥ 1 for 3-D motion: the
// tracked points' parallax against MinParallaxDeg (the landmarks' against
// MinLandmarkParallaxDeg when tracking failed), capped by its
// significance, and halved when it turns another way than the head pose.
func stepEvidence(cfg *Config, g *stepGeometry, f *flowGeometry) float64 {
	if !g.OK {
		return 0
	}
	par, ang, z, t := g.ParallaxDeg, g.ParallaxAngle, g.ParallaxZ, cfg.MinLandmarkParallaxDeg
	if f.OK {
		par, ang, z, t = f.ParallaxDeg, f.ParallaxAngle, f.ParallaxZ, cfg.MinParallaxDeg
	}
	ev := par / math.Max(t, 1e-9)
	if cfg.MinParallaxZ > 0 {
		ev = math.Min(ev, z/cfg.MinParallaxZ)
	}
	if g.PoseMag >= cfg.MinChallengeDeg && angleDiff(ang, g.PoseAngle) > cfg.MaxDirectionError {
		ev = math.Min(ev, 0.5)
	}
	return ev
}

// implausibleStep says why step k cannot be a live head's motion, or "".
// turn is the step's rotation as turnOf measures it: the PnP pose change
// alone swings by 30–60° on a small face (60–80 px: a landmark pixel is
// several degrees), where the tracked parallax it is averaged with stays
// right.
func implausibleStep(cfg *Config, k int, g *stepGeometry, turn float64) string {
	switch {
	case !g.OK:
		return fmt.Sprintf("step %d: landmarks degenerate", k)
	case turn > cfg.MaxStepDeg:
		return fmt.Sprintf("step %d: head turned %.0f° between samples (limit %.0f°)", k, turn, cfg.MaxStepDeg)
	case g.Scale > cfg.MaxScaleChange || g.Scale < 1/cfg.MaxScaleChange:
		return fmt.Sprintf("step %d: face size changed ×%.2f", k, g.Scale)
	case g.Shift > cfg.MaxShift:
		return fmt.Sprintf("step %d: face jumped %.1f face radii", k, g.Shift)
	}
	return ""
}

// padEvidence is ≥ 1 when the mean PAD score passes the threshold, on a
// log-odds scale: 1 at the threshold, +1 per 4 nats above it.
func padEvidence(mean, threshold float64) float64 {
	if threshold <= 0 {
		return math.Inf(1)
	}
	return 1 + (logit(mean)-logit(threshold))/4
}

// angleDiff is the absolute difference of two angles in degrees, in [0, 180].
func angleDiff(a, b float64) float64 {
	d := math.Mod(math.Abs(a-b), 360)
	if d > 180 {
		d = 360 - d
	}
	return d
}
