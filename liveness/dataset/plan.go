package dataset

import (
	"math"
	"math/rand/v2"

	"github.com/bwsagent/bwsagent/face/geom"
)

// Challenge returns n directions as BWS generates them: the first at
// random, the next the opposite (the return move), the next a random
// direction on the perpendicular axis, its opposite, and so on.
func Challenge(rng *rand.Rand, n int) []string {
	all := []string{"left", "right", "up", "down"}
	out := make([]string, 0, n)
	cur := all[rng.IntN(4)]
	for len(out) < n {
		out = append(out, cur)
		if len(out)%2 == 1 {
			cur = opposite(cur)
		} else {
			cur = perpendicular(cur)[rng.IntN(2)]
		}
	}
	return out
}

// Tags returns the tags of a job with the given challenge: "any" for the
// first sample, then one per direction. Without a challenge, n "any" tags.
func Tags(challenge []string, n int) []string {
	if len(challenge) == 0 {
		out := make([]string, n)
		for i := range out {
			out[i] = "any"
		}
		return out
	}
	return append([]string{"any"}, challenge...)
}

func opposite(d string) string {
	switch d {
	case "left":
		return "right"
	case "right":
		return "left"
	case "up":
		return "down"
	}
	return "up"
}

func perpendicular(d string) []string {
	if d == "left" || d == "right" {
		return []string{"up", "down"}
	}
	return []string{"left", "right"}
}

// direction is the unit (yaw, pitch) of a tag; "any" gets a random one.
func direction(tag string, rng *rand.Rand) (dx, dy float64) {
	switch tag {
	case "right":
		return 1, 0
	case "left":
		return -1, 0
	case "up":
		return 0, 1
	case "down":
		return 0, -1
	}
	a := rng.Float64() * 2 * math.Pi
	return math.Cos(a), math.Sin(a)
}

// headPlan is the head pose per sample of a bona fide job.
type headPlan struct {
	Poses  []geom.Pose
	Shifts []geom.Point
}

// Head motion of a live user (degrees, pixels): each prompted move turns
// moveMin…moveMax in its direction with up to perpJitter of it sideways;
// unprompted moves are smaller. Poses stay within what the landmark model
// and the renderer handle.
const (
	moveMin, moveMax       = 7.0, 18.0
	freeMin, freeMax       = 6.0, 14.0
	perpJitter             = 0.3
	planMaxYaw, planMaxPit = 30.0, 22.0
)

// planHead draws a live user's head poses for the tags.
func planHead(rng *rand.Rand, tags []string) headPlan {
	var p headPlan
	cur := geom.Pose{Yaw: uniform(rng, -5, 5), Pitch: uniform(rng, -4, 4), Roll: uniform(rng, -3, 3)}
	shift := geom.Point{X: uniform(rng, -20, 20), Y: uniform(rng, -12, 12)}
	p.Poses = append(p.Poses, cur)
	p.Shifts = append(p.Shifts, shift)
	for _, tag := range tags[1:] {
		lo, hi := moveMin, moveMax
		if tag == "any" {
			lo, hi = freeMin, freeMax
		}
		var next geom.Pose
		for try := 0; ; try++ {
			dx, dy := direction(tag, rng)
			m := uniform(rng, lo, hi)
			j := uniform(rng, -perpJitter, perpJitter) * m
			next = geom.Pose{
				Yaw:   cur.Yaw + dx*m - dy*j,
				Pitch: cur.Pitch + dy*m + dx*j,
				Roll:  cur.Roll + uniform(rng, -2.5, 2.5),
			}
			if math.Abs(next.Yaw) <= planMaxYaw && math.Abs(next.Pitch) <= planMaxPit || try > 20 {
				break
			}
		}
		next.Yaw = math.Max(-planMaxYaw, math.Min(planMaxYaw, next.Yaw))
		next.Pitch = math.Max(-planMaxPit, math.Min(planMaxPit, next.Pitch))
		// People shift their head a little as they turn it.
		shift.X += 0.8*(next.Yaw-cur.Yaw) + uniform(rng, -8, 8)
		shift.Y += -0.6*(next.Pitch-cur.Pitch) + uniform(rng, -6, 6)
		cur = next
		p.Poses = append(p.Poses, cur)
		p.Shifts = append(p.Shifts, shift)
	}
	return p
}

// printPose is how a print (or screen) is held for one sample.
type printPose struct {
	Yaw, Pitch, Roll float64 // degrees, PlaneRotation's convention
	Scale            float64
	Shift            geom.Point
}

// planPrint draws the print's poses for one attack type. The attacker
// imitates the challenge: tilting turns the print in the tagged
// direction, moving shifts it that way.
func planPrint(rng *rand.Rand, kind string, tags []string) []printPose {
	cur := printPose{
		Yaw: uniform(rng, -4, 4), Pitch: uniform(rng, -4, 4), Roll: uniform(rng, -4, 4),
		Scale: 1, Shift: geom.Point{X: uniform(rng, -25, 25), Y: uniform(rng, -15, 15)},
	}
	out := []printPose{cur}
	for _, tag := range tags[1:] {
		dx, dy := direction(tag, rng)
		next := cur
		switch kind {
		case AttackPrint: // hand tremor only
			next.Yaw += uniform(rng, -1, 1)
			next.Pitch += uniform(rng, -1, 1)
			next.Roll += uniform(rng, -0.7, 0.7)
			next.Shift.X += uniform(rng, -3, 3)
			next.Shift.Y += uniform(rng, -3, 3)
		case AttackPrintMoved:
			m := uniform(rng, 20, 70)
			next.Shift.X += dx * m
			next.Shift.Y -= dy * m // image y grows downward
			next.Scale *= uniform(rng, 0.9, 1.1)
			next.Roll += uniform(rng, -8, 8)
		default: // tilted, bent, mask: turn with the challenge
			m := uniform(rng, 10, 30)
			next.Yaw += dx * m
			next.Pitch += dy * m
			next.Roll += uniform(rng, -3, 3)
			next.Shift.X += dx*uniform(rng, 0, 25) + uniform(rng, -6, 6)
			next.Shift.Y += -dy*uniform(rng, 0, 15) + uniform(rng, -6, 6)
		}
		next.Yaw = math.Max(-40, math.Min(40, next.Yaw))
		next.Pitch = math.Max(-40, math.Min(40, next.Pitch))
		cur = next
		out = append(out, cur)
	}
	return out
}
