package liveness

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPADRealData measures the passive PAD score per image on the shared
// real attack data (live vs spoof), the numbers behind Config.MinPAD.
// Single images carry no motion, so this is the PAD part alone.
func TestPADRealData(t *testing.T) {
	root := realData(t, "attacks")
	c := checker(t)
	ctx := context.Background()
	for _, set := range []string{"nuaa_subset", "manikantha_liveness", "silent_face_minivision", "../headpose/aws_headpose_testIMs"} {
		for _, label := range []string{"live", "spoof"} {
			if strings.HasPrefix(set, "../") {
				// Real photos without attacks: live only.
				if label == "spoof" {
					continue
				}
				label = "."
			}
			var scores, moires []float64
			noFace := 0
			_ = filepath.WalkDir(filepath.Join(root, set, label), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				ext := strings.ToLower(filepath.Ext(p))
				if ext != ".jpg" && ext != ".jpeg" && ext != ".png" {
					return nil
				}
				m := readMat(t, p)
				defer m.Close()
				s, err := c.Analyze(ctx, m, TagAny)
				if err != nil {
					t.Fatal(err)
				}
				if s.Faces == 0 {
					noFace++
					return nil
				}
				scores = append(scores, s.PAD)
				moires = append(moires, s.Moire)
				return nil
			})
			if len(scores) == 0 {
				continue
			}
			slices.Sort(scores)
			below := 0
			for _, s := range scores {
				if s < c.cfg.MinPAD {
					below++
				}
			}
			slices.Sort(moires)
			t.Logf("%-24s %-5s n=%3d (no face %d) PAD min %.3f p10 %.3f median %.3f max %.3f; below MinPAD %.2f: %d; moiré median %.2f max %.2f",
				set, label, len(scores), noFace, scores[0], scores[len(scores)/10], scores[len(scores)/2], scores[len(scores)-1], c.cfg.MinPAD, below,
				moires[len(moires)/2], moires[len(moires)-1])
		}
	}
}
