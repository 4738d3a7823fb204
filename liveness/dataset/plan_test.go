package dataset

import (
	"math/rand/v2"
	"testing"

	"github.com/bwsagent/bwsagent/face/geom"
)

// TestChallenge checks the BWS pattern: a random first direction, then the
// return move, then the perpendicular axis, and so on.
func TestChallenge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	first := map[string]bool{}
	for i := 0; i < 200; i++ {
		n := 2 + i%6
		c := Challenge(rng, n)
		if len(c) != n {
			t.Fatalf("len %d, want %d", len(c), n)
		}
		first[c[0]] = true
		for k := 1; k < n; k++ {
			horizontal := func(d string) bool { return d == "left" || d == "right" }
			if k%2 == 1 && c[k] != opposite(c[k-1]) {
				t.Fatalf("%v: step %d is not the return move", c, k)
			}
			if k%2 == 0 && horizontal(c[k]) == horizontal(c[k-1]) {
				t.Fatalf("%v: step %d is not on the perpendicular axis", c, k)
			}
		}
		tags := Tags(c, 0)
		if len(tags) != n+1 || tags[0] != "any" {
			t.Fatalf("tags %v", tags)
		}
	}
	if len(first) != 4 {
		t.Errorf("first directions seen: %v", first)
	}
}

// TestPlanHead checks that a live user's planned turns point the tagged
// way (the ground truth of the generated bona fide jobs).
func TestPlanHead(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100; i++ {
		tags := Tags(Challenge(rng, 4), 0)
		p := planHead(rng, tags)
		for k := 1; k < len(tags); k++ {
			ang, mag := geom.MotionDirection(p.Poses[k-1], p.Poses[k])
			if q := geom.Quadrant(ang); q != tags[k] || mag < moveMin*0.9 {
				t.Fatalf("%v step %d: %.1f° toward %s", tags, k, mag, q)
			}
		}
	}
}
