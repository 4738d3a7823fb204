//go:build matprofile

package face

import (
	"context"
	"testing"

	"gocv.io/x/gocv"
)

// TestNoMatLeaks runs every engine path and checks that gocv's count of live
// Mats returns to where it was (run with -tags matprofile).
func TestNoMatLeaks(t *testing.T) {
	e := engine(t)
	before := gocv.MatProfile.Count()
	m := readMat(t, sampleImage(t, "sample1.jpg"))
	s, err := e.Analyze(context.Background(), m, Options{Embed: true, PAD: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Faces {
		if _, err := e.Embed(context.Background(), m, f); err != nil {
			t.Fatal(err)
		}
		if _, err := e.PAD(context.Background(), m, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.NewTracker().Track(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if after := gocv.MatProfile.Count(); after != before {
		t.Fatalf("%d Mats leaked", after-before)
	}
}
