package liveness

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPADRealData measures the passive scores per image on the shared
// real data (live vs spoof), the numbers behind Config.MinPAD and
// Config.MaxMoire. Single images carry no motion, so this is the passive
// part alone. Bounds, from the measurement when the thresholds were set:
// NUAA live 0 of 60 below MinPAD (spoof 59 of 60 below), the laptop
// replay ≥ 25 of 30 below, the iPhone head-pose photos 0 of 17 below, and
// no live image's moiré score above MaxMoire (max 0.81), and no live image
// framed.
func TestPADRealData(t *testing.T) {
	if testing.Short() {
		t.Skip("analyses ~200 real images")
	}
	root := realData(t, "attacks")
	bounds := map[string][2]int{ // set/label: at most this many below MinPAD, at least this many
		"nuaa_subset/live":                   {0, 0},
		"nuaa_subset/spoof":                  {60, 58},
		"manikantha_liveness/spoof":          {30, 25},
		"../headpose/aws_headpose_testIMs/.": {0, 0},
	}
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
			noFace, nFramed := 0, 0
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
				if framed(s.Frame) {
					nFramed++
				}
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
			if b, ok := bounds[set+"/"+label]; ok && (below > b[0] || below < b[1]) {
				t.Errorf("%s/%s: %d images below MinPAD, want %d…%d", set, label, below, b[1], b[0])
			}
			if label != "spoof" && moires[len(moires)-1] > c.cfg.MaxMoire {
				t.Errorf("%s/%s: a live image's moiré score %.2f exceeds MaxMoire %.2f", set, label, moires[len(moires)-1], c.cfg.MaxMoire)
			}
			if label != "spoof" && nFramed > 0 {
				t.Errorf("%s/%s: %d live images show a frame around the face", set, label, nFramed)
			}
			t.Logf("%-24s %-5s n=%3d (no face %d) PAD min %.3f p10 %.3f median %.3f max %.3f; below MinPAD %.2f: %d; moiré median %.2f max %.2f; framed %d",
				set, label, len(scores), noFace, scores[0], scores[len(scores)/10], scores[len(scores)/2], scores[len(scores)-1], c.cfg.MinPAD, below,
				moires[len(moires)/2], moires[len(moires)-1], nFramed)
		}
	}
}
