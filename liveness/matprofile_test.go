//go:build matprofile

package liveness

import (
	"context"
	"testing"

	"gocv.io/x/gocv"
)

// TestNoMatLeaks runs Analyze and Decide (tracking, moiré, patches) and
// checks that gocv's count of live Mats returns to where it was (run with
// -tags matprofile).
func TestNoMatLeaks(t *testing.T) {
	c := checker(t)
	before := gocv.MatProfile.Count()
	m := readMat(t, sampleImage(t, "face.jpg"))
	s, err := c.Analyze(context.Background(), m, TagAny)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	synthetic := live(t, challengeTags, followPoses...)
	c.Decide(append(synthetic, s), true)
	c.Decide(synthetic, true)
	if after := gocv.MatProfile.Count(); after != before {
		t.Fatalf("%d Mats leaked", after-before)
	}
}
