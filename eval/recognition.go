// Package eval measures bwsagent's accuracy on a folder of real data:
// recognition (FNMR at fixed FMR, EER) and head pose (mean absolute error).
// Each report reprints with one command and comes with a DET plot.
package eval

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bwsagent/bwsagent/enroll"
	"github.com/bwsagent/bwsagent/eval/rates"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/imgio"
)

// RecognitionReport is the machine-readable result of a recognition run.
// Rates are fractions in [0,1].
type RecognitionReport struct {
	Persons          int                `json:"persons"`
	Images           int                `json:"images"`
	FTE              float64            `json:"fte"`
	Genuine          int                `json:"genuine"`
	Impostor         int                `json:"impostor"`
	EER              float64            `json:"eer"`
	FNMRAtFMR        map[string]float64 `json:"fnmr_at_fmr"`
	ThresholdAtFMR01 float64            `json:"threshold_at_fmr_0.001"`
	ThresholdAtFMR1  float64            `json:"threshold_at_fmr_0.01"`
	Model            string             `json:"model"`
	// Protocol is "all-pairs", or "enroll-N" when N images per person were
	// fused into one template and each remaining image probed every template.
	Protocol string `json:"protocol"`
}

type labelled struct {
	person, path string
}

var imageExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".gif": true, ".tif": true, ".tiff": true, ".pgm": true}

// listIdentities reads DIR/<person>/<image>; other entries are ignored.
func listIdentities(dir string) ([]labelled, int, error) {
	persons, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var out []labelled
	n := 0
	for _, p := range persons {
		if !isDir(filepath.Join(dir, p.Name())) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, p.Name()))
		if err != nil {
			return nil, 0, err
		}
		had := false
		for _, f := range files {
			if imageExt[strings.ToLower(filepath.Ext(f.Name()))] && !isDir(filepath.Join(dir, p.Name(), f.Name())) {
				out = append(out, labelled{p.Name(), filepath.Join(dir, p.Name(), f.Name())})
				had = true
			}
		}
		if had {
			n++
		}
	}
	return out, n, nil
}

// isDir follows symbolic links: datasets are often assembled from links.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// Embedder computes one template per image file (nil when no usable face).
type Embedder func(ctx context.Context, path string) (face.Embedding, error)

// EngineEmbedder embeds the face nearest the image centre with the engine.
func EngineEmbedder(e *face.Engine) Embedder {
	return func(ctx context.Context, path string) (face.Embedding, error) {
		m, err := face.ReadImageFile(path, imgio.Limits{})
		if err != nil {
			return nil, err
		}
		defer m.Close()
		s, err := e.Analyze(ctx, m, face.Options{Embed: true})
		if err != nil {
			return nil, err
		}
		return s.Embedding, nil
	}
}

// RecognitionOptions selects the protocol.
type RecognitionOptions struct {
	// Enroll > 0 fuses the first Enroll images of each person (by file name)
	// into one template, as the agent's enrollment does, and compares every
	// other image with every template. 0 compares all pairs of images.
	Enroll int
	// Int8 scores the enrollment protocol through the int8 1:N gallery that
	// identification uses, instead of float cosine.
	Int8    bool
	Workers int
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// Recognition embeds every image of DIR/<person>/<image> and compares all
// genuine and impostor pairs. An image without a usable face counts in FTE
// and its genuine pairs as non-matches.
func Recognition(ctx context.Context, dir string, embed Embedder, opt RecognitionOptions) (RecognitionReport, rates.Scores, error) {
	items, persons, err := listIdentities(dir)
	if err != nil {
		return RecognitionReport{}, rates.Scores{}, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(items) == 0 {
		return RecognitionReport{}, rates.Scores{}, fmt.Errorf("%s holds no <person>/<image> files", dir)
	}
	embs := make([]face.Embedding, len(items))
	if err := forEach(ctx, len(items), opt.Workers, opt.Progress, "embedding", func(i int) error {
		e, err := embed(ctx, items[i].path)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		embs[i] = e // a decode or analysis failure is a failure to enrol, not a run failure
		return nil
	}); err != nil {
		return RecognitionReport{}, rates.Scores{}, err
	}

	fte := 0
	for _, e := range embs {
		if e == nil {
			fte++
		}
	}
	var s rates.Scores
	protocol := "all-pairs"
	if opt.Enroll > 0 {
		protocol = fmt.Sprintf("enroll-%d", opt.Enroll)
		if opt.Int8 {
			protocol += "-int8-gallery"
		}
		s, err = enrolledScores(items, embs, opt.Enroll, opt.Int8)
	} else {
		s, err = allPairScores(items, embs)
	}
	if err != nil {
		return RecognitionReport{}, s, err
	}
	if len(s.Genuine) == 0 || len(s.Impostor) == 0 {
		return RecognitionReport{}, s, fmt.Errorf("%s gives %d genuine and %d impostor pairs: need at least two persons with two images each", dir, len(s.Genuine), len(s.Impostor))
	}
	r := RecognitionReport{
		Persons: persons, Images: len(items), FTE: float64(fte) / float64(len(items)),
		Genuine: len(s.Genuine), Impostor: len(s.Impostor), FNMRAtFMR: map[string]float64{},
		Model: face.EmbeddingModel, Protocol: protocol,
	}
	r.EER, _ = s.EER()
	r.FNMRAtFMR["0.01"], r.ThresholdAtFMR1 = s.FNMRAtFMR(0.01)
	r.FNMRAtFMR["0.001"], r.ThresholdAtFMR01 = s.FNMRAtFMR(0.001)
	return r, s, nil
}

// nonMatch scores a comparison that could not be made: below every cosine.
const nonMatch = -2

func allPairScores(items []labelled, embs []face.Embedding) (rates.Scores, error) {
	var s rates.Scores
	for i := range items {
		for j := i + 1; j < len(items); j++ {
			same := items[i].person == items[j].person
			if embs[i] == nil || embs[j] == nil {
				if same {
					s.Genuine = append(s.Genuine, nonMatch)
				}
				continue
			}
			score, err := face.Similarity(embs[i], embs[j])
			if err != nil {
				return s, err
			}
			if same {
				s.Genuine = append(s.Genuine, score)
			} else {
				s.Impostor = append(s.Impostor, score)
			}
		}
	}
	return s, nil
}

// enrolledScores fuses each person's first n usable images into a template
// and compares every other image with every template, by float cosine or
// through the int8 gallery identification uses.
func enrolledScores(items []labelled, embs []face.Embedding, n int, int8Gallery bool) (rates.Scores, error) {
	templates := map[string]face.Embedding{}
	var parts = map[string][]face.Embedding{}
	probe := make([]bool, len(items))
	for i, it := range items {
		if len(parts[it.person]) < n && embs[i] != nil {
			parts[it.person] = append(parts[it.person], embs[i])
			continue
		}
		probe[i] = true
	}
	for p, es := range parts {
		templates[p] = face.Mean(es...)
	}
	scoreAll := func(probe face.Embedding) (map[string]float64, error) {
		out := make(map[string]float64, len(templates))
		for p, t := range templates {
			sc, err := face.Similarity(probe, t)
			if err != nil {
				return nil, err
			}
			out[p] = sc
		}
		return out, nil
	}
	if int8Gallery {
		var err error
		if scoreAll, err = galleryScorer(templates); err != nil {
			return rates.Scores{}, err
		}
	}
	var s rates.Scores
	for i, it := range items {
		if !probe[i] {
			continue
		}
		if _, ok := templates[it.person]; !ok || embs[i] == nil {
			s.Genuine = append(s.Genuine, nonMatch)
			continue
		}
		scores, err := scoreAll(embs[i])
		if err != nil {
			return s, err
		}
		for p, sc := range scores {
			if p == it.person {
				s.Genuine = append(s.Genuine, sc)
			} else {
				s.Impostor = append(s.Impostor, sc)
			}
		}
	}
	return s, nil
}

// galleryScorer puts the templates in an int8 gallery and scores a probe
// against every template through Identify, the production 1:N path.
func galleryScorer(templates map[string]face.Embedding) (func(face.Embedding) (map[string]float64, error), error) {
	var g *enroll.Gallery
	persons := make([]string, 0, len(templates))
	for p, t := range templates {
		if g == nil {
			g = enroll.NewGallery(len(t))
		}
		if err := g.Add(int64(len(persons)), t); err != nil {
			return nil, err
		}
		persons = append(persons, p)
	}
	return func(probe face.Embedding) (map[string]float64, error) {
		ms, err := g.Identify(probe, len(persons), nonMatch)
		if err != nil {
			return nil, err
		}
		out := make(map[string]float64, len(ms))
		for _, m := range ms {
			out[persons[m.ClassID]] = m.Score
		}
		return out, nil
	}, nil
}

// forEach runs fn(0..n-1) on workers goroutines, printing progress lines.
func forEach(ctx context.Context, n, workers int, progress io.Writer, what string, fn func(int) error) error {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var progressMu sync.Mutex // the writer need not be safe for concurrent use
	errs := make(chan error, workers)
	step := int64(max(1, n/20))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					errs <- err
					return
				}
				if d := done.Add(1); progress != nil && (d%step == 0 || d == int64(n)) {
					progressMu.Lock()
					fmt.Fprintf(progress, "%s: %d/%d (%.0f%%)\n", what, d, n, 100*float64(d)/float64(n))
					progressMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// WriteRecognitionTable prints the report for people.
func WriteRecognitionTable(w io.Writer, r RecognitionReport) {
	fmt.Fprintf(w, "model            %s (%s)\n", r.Model, r.Protocol)
	fmt.Fprintf(w, "persons/images   %d / %d   (FTE %.2f%%)\n", r.Persons, r.Images, 100*r.FTE)
	fmt.Fprintf(w, "pairs            %d genuine / %d impostor\n", r.Genuine, r.Impostor)
	fmt.Fprintf(w, "EER              %.2f%%\n", 100*r.EER)
	keys := make([]string, 0, len(r.FNMRAtFMR))
	for k := range r.FNMRAtFMR {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	for _, k := range keys {
		t := r.ThresholdAtFMR01
		if k == "0.01" {
			t = r.ThresholdAtFMR1
		}
		fmt.Fprintf(w, "FNMR @ FMR %-5s %.2f%%  (threshold %.3f)\n", k, 100*r.FNMRAtFMR[k], t)
	}
}
