// Package evaluate measures a liveness Checker on an evaluation set in the
// layout of package dataset: APCER per attack type, BPCER, the challenge
// pass rate of bona fide jobs, and DET curves (ISO/IEC 30107-3 names).
package evaluate

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/bwsagent/bwsagent/eval/rates"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/liveness"
	"github.com/bwsagent/bwsagent/liveness/dataset"
)

// Options configure Run.
type Options struct {
	// Workers is how many cases are analysed at once (match the engine's
	// workers); 0 means 1.
	Workers int
	// Progress receives a line per case; nil discards.
	Progress io.Writer
}

// CaseResult is one judged case.
type CaseResult struct {
	Name      string
	BonaFide  bool
	Attack    string // attack type; "" for bona fide
	Challenge bool
	Samples   []liveness.Sample
	Decision  liveness.Decision
	// Fingerprint is the case's files' (dataset.Case.Fingerprint) when
	// analysed: a saved result is stale when they changed.
	Fingerprint string
}

// Run analyses every case of dir with the checker and decides on it.
func Run(ctx context.Context, c *liveness.Checker, dir string, opt Options) ([]CaseResult, error) {
	cases, err := dataset.ReadCases(dir)
	if err != nil {
		return nil, err
	}
	workers := max(1, opt.Workers)
	progress := opt.Progress
	if progress == nil {
		progress = io.Discard
	}
	results := make([]CaseResult, len(cases))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		done    int
		firstEr error
	)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := runCase(ctx, c, &cases[i])
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = err
				}
				results[i] = r
				done++
				for _, n := range cases[i].Notes {
					fmt.Fprintf(progress, "%s: note: %s\n", cases[i].Name, n)
				}
				fmt.Fprintf(progress, "[%d/%d] %s: %s\n", done, len(cases), cases[i].Name, verdict(&r))
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range cases {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstEr != nil {
		return nil, firstEr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return results, nil
}

func verdict(r *CaseResult) string {
	s := "live"
	if !r.Decision.Live {
		s = r.Decision.Code
	}
	if len(r.Decision.Reasons) > 0 {
		s += " (" + strings.Join(r.Decision.Reasons, "; ") + ")"
	}
	return s
}

// runCase analyses one case's images. An image that cannot be read or
// analysed becomes an unusable sample: the case then has fewer samples,
// as a BWS job whose upload was refused.
func runCase(ctx context.Context, c *liveness.Checker, cs *dataset.Case) (CaseResult, error) {
	r := CaseResult{Name: cs.Name, BonaFide: cs.BonaFide(), Challenge: cs.Challenge()}
	fp, err := cs.Fingerprint()
	if err != nil {
		return r, err
	}
	r.Fingerprint = fp
	if !r.BonaFide {
		r.Attack = cs.AttackType()
	}
	for i, path := range cs.Images {
		s, err := analyzeFile(ctx, c, path, cs.Tags[i])
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			s = liveness.Sample{Tag: cs.Tags[i], Problem: "Unreadable"}
		}
		r.Samples = append(r.Samples, s)
	}
	r.Decision = c.Decide(r.Samples, r.Challenge)
	return r, nil
}

func analyzeFile(ctx context.Context, c *liveness.Checker, path, tag string) (liveness.Sample, error) {
	img, err := imgio.ReadFile(path, imgio.Limits{})
	if err != nil {
		return liveness.Sample{}, err
	}
	m, err := face.MatFromImage(img)
	if err != nil {
		return liveness.Sample{}, err
	}
	defer m.Close()
	return c.Analyze(ctx, m, tag)
}

// Count is one row of the report's counts: attacks count accepted cases,
// bona fide rejected ones.
type Count struct {
	Cases    int
	Accepted int
	Rejected int
	bonaFide bool
}

// MarshalJSON writes {"cases","accepted"} for attacks and
// {"cases","rejected"} for bona fide.
func (c Count) MarshalJSON() ([]byte, error) {
	if c.bonaFide {
		return json.Marshal(struct {
			Cases    int `json:"cases"`
			Rejected int `json:"rejected"`
		}{c.Cases, c.Rejected})
	}
	return json.Marshal(struct {
		Cases    int `json:"cases"`
		Accepted int `json:"accepted"`
	}{c.Cases, c.Accepted})
}

// Report is the evaluation's result; rates are fractions in [0,1].
// ChallengePassRate is the share of bona fide jobs with a challenge whose
// every tagged sample moved in its direction (0 when there are none).
type Report struct {
	APCER             map[string]float64 `json:"apcer"`
	BPCER             float64            `json:"bpcer"`
	ChallengePassRate float64            `json:"challenge_pass_rate"`
	Counts            map[string]Count   `json:"counts"`
}

// Summarise computes the report of judged cases.
func Summarise(results []CaseResult) Report {
	r := Report{APCER: map[string]float64{}, Counts: map[string]Count{}}
	bf := Count{bonaFide: true}
	var chN, chOK int
	for _, c := range results {
		if c.BonaFide {
			bf.Cases++
			if !c.Decision.Live {
				bf.Rejected++
			}
			if c.Challenge {
				chN++
				if c.Decision.ChallengePassed {
					chOK++
				}
			}
			continue
		}
		k := r.Counts[c.Attack]
		k.Cases++
		if c.Decision.Live {
			k.Accepted++
		}
		r.Counts[c.Attack] = k
	}
	for t, k := range r.Counts {
		r.APCER[t] = float64(k.Accepted) / float64(k.Cases)
	}
	r.Counts[dataset.LabelBonaFide] = bf
	if bf.Cases > 0 {
		r.BPCER = float64(bf.Rejected) / float64(bf.Cases)
	}
	if chN > 0 {
		r.ChallengePassRate = float64(chOK) / float64(chN)
	}
	return r
}

// AttackTypes lists the report's attack types in name order.
func (r Report) AttackTypes() []string {
	var ts []string
	for t := range r.APCER {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// WriteTable prints the report as a table, with the reasons bona fide
// cases were rejected.
func WriteTable(w io.Writer, r Report, results []CaseResult) {
	fmt.Fprintf(w, "%-22s %6s %9s %8s\n", "attack type", "cases", "accepted", "APCER")
	var all, acc int
	for _, t := range r.AttackTypes() {
		k := r.Counts[t]
		all += k.Cases
		acc += k.Accepted
		fmt.Fprintf(w, "%-22s %6d %9d %7.1f%%\n", t, k.Cases, k.Accepted, 100*r.APCER[t])
	}
	if all > 0 {
		fmt.Fprintf(w, "%-22s %6d %9d %7.1f%%\n", "all attacks", all, acc, 100*float64(acc)/float64(all))
	}
	bf := r.Counts[dataset.LabelBonaFide]
	fmt.Fprintf(w, "\n%-22s %6s %9s %8s\n", "", "cases", "rejected", "BPCER")
	fmt.Fprintf(w, "%-22s %6d %9d %7.1f%%\n", "bona fide", bf.Cases, bf.Rejected, 100*r.BPCER)
	fmt.Fprintf(w, "challenge pass rate (bona fide with a challenge): %.1f%%\n", 100*r.ChallengePassRate)
	codes := map[string]int{}
	for _, c := range results {
		if c.BonaFide && !c.Decision.Live {
			codes[c.Decision.Code]++
		}
	}
	if len(codes) > 0 {
		keys := make([]string, 0, len(codes))
		for k := range codes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "bona fide rejections by code:")
		for _, k := range keys {
			fmt.Fprintf(w, " %s %d", k, codes[k])
		}
		fmt.Fprintln(w)
	}
}

// Curves returns the DET curves of the cases' liveness scores
// (Decision.Scores["score"]): bona fide against each attack type and
// against all attacks.
func Curves(results []CaseResult) []rates.Curve {
	var bona []float64
	byType := map[string][]float64{}
	var all []float64
	for _, c := range results {
		s := c.Decision.Scores["score"]
		if math.IsNaN(s) {
			s = 0
		}
		if c.BonaFide {
			bona = append(bona, s)
			continue
		}
		byType[c.Attack] = append(byType[c.Attack], s)
		all = append(all, s)
	}
	curves := []rates.Curve{{Label: "all attacks", Scores: rates.Scores{Genuine: bona, Impostor: all}}}
	var types []string
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		curves = append(curves, rates.Curve{Label: t, Scores: rates.Scores{Genuine: bona, Impostor: byType[t]}})
	}
	return curves
}

// Rejudge decides again on analysed cases, e.g. with another
// configuration.
func Rejudge(c *liveness.Checker, results []CaseResult) {
	for i := range results {
		results[i].Decision = c.Decide(results[i].Samples, results[i].Challenge)
	}
}

// SaveSamples writes the analysed samples of every case (gob) so that
// Decide can be re-run without the face models. The file holds face
// templates and patches: evaluation data only.
func SaveSamples(path string, results []CaseResult) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gob.NewEncoder(fh).Encode(results); err != nil {
		fh.Close()
		return fmt.Errorf("save samples: %w", err)
	}
	return fh.Close()
}

// Stale says why results (from LoadSamples) no longer describe the set in
// dir — a case added, removed or whose files changed — or "" when they
// still do.
func Stale(dir string, results []CaseResult) (string, error) {
	cases, err := dataset.ReadCases(dir)
	if err != nil {
		return "", err
	}
	saved := make(map[string]string, len(results))
	for _, r := range results {
		saved[r.Name] = r.Fingerprint
	}
	if len(cases) != len(results) {
		return fmt.Sprintf("%d cases analysed, %d in %s", len(results), len(cases), dir), nil
	}
	for i := range cases {
		fp, ok := saved[cases[i].Name]
		if !ok {
			return fmt.Sprintf("case %s was not analysed", cases[i].Name), nil
		}
		now, err := cases[i].Fingerprint()
		if err != nil {
			return "", err
		}
		if fp != now {
			return fmt.Sprintf("case %s changed since it was analysed", cases[i].Name), nil
		}
	}
	return "", nil
}

// LoadSamples reads a file written by SaveSamples.
func LoadSamples(path string) ([]CaseResult, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []CaseResult
	if err := gob.NewDecoder(fh).Decode(&out); err != nil {
		return nil, fmt.Errorf("load samples %s: %w", path, err)
	}
	return out, nil
}
