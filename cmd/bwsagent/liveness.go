package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bwsagent/bwsagent/eval/rates"
	"github.com/bwsagent/bwsagent/face/models"
	"github.com/bwsagent/bwsagent/liveness"
	"github.com/bwsagent/bwsagent/liveness/dataset"
	"github.com/bwsagent/bwsagent/liveness/evaluate"
)

func (m *Main) evalLiveness(ctx context.Context, args []string) error {
	fs := m.newFlagSet("eval liveness", "[options] DIR",
		`Runs the liveness decision on every case of DIR/<case>/{meta.json, 0001.jpg, ...}
(meta.json: {"label":"bona-fide"|"attack","attack":TYPE,"tags":["any","left",...]},
one tag per image in upload order; all "any" = liveness only, no challenge).
Prints APCER per attack type, BPCER and the challenge pass rate of bona fide
jobs, with counts, and writes a DET plot (APCER/BPCER) of the liveness score.
A case whose samples show no usable face counts as rejected. With --json:
  {"apcer":{TYPE:rate,...},"bpcer":rate,"challenge_pass_rate":rate,
   "counts":{TYPE:{"cases":n,"accepted":k},...,"bona-fide":{"cases":n,"rejected":k}}}
Progress goes to stderr.`)
	ef := m.addEngineFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	plot := fs.String("plot", "det-liveness.png", "write the DET plot here (empty: no plot; JSON mode writes one only when set explicitly)")
	dump := fs.String("dump", "", "write every case's decision and scores as JSON lines to this file")
	configFile := fs.String("config", "", "JSON file overriding liveness thresholds (keys as in liveness.Config's json tags)")
	samplesFile := fs.String("samples", "", "cache of analysed samples (gob, holds templates: evaluation data only): reused if it exists and the set is unchanged, written otherwise")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("eval liveness needs one DIR")
	}
	plotSet := false
	fs.Visit(func(f *flag.Flag) { plotSet = plotSet || f.Name == "plot" })
	cfg := liveness.DefaultConfig()
	if *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return fmt.Errorf("%s: %w", *configFile, err)
		}
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.Close()
	c, err := liveness.New(e, cfg)
	if err != nil {
		return err
	}
	var results []evaluate.CaseResult
	if *samplesFile != "" {
		switch results, err = evaluate.LoadSamples(*samplesFile); {
		case err == nil:
			why, err := evaluate.Stale(fs.Arg(0), results)
			if err != nil {
				return err
			}
			if why != "" {
				fmt.Fprintf(m.Stderr, "samples cache %s is stale (%s): analysing again\n", *samplesFile, why)
				results = nil
				break
			}
			evaluate.Rejudge(c, results)
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
	}
	if results == nil {
		if results, err = evaluate.Run(ctx, c, fs.Arg(0), evaluate.Options{Workers: *ef.workers, Progress: m.Stderr}); err != nil {
			return err
		}
		if *samplesFile != "" {
			if err := evaluate.SaveSamples(*samplesFile, results); err != nil {
				return err
			}
		}
	}
	if *dump != "" {
		if err := writeDump(*dump, results); err != nil {
			return err
		}
	}
	r := evaluate.Summarise(results)
	if *plot != "" && (!*asJSON || plotSet) {
		title := "Liveness DET — " + filepath.Base(filepath.Clean(fs.Arg(0)))
		if err := rates.PlotDET(*plot, title, "APCER", "BPCER", evaluate.Curves(results)); err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "DET plot written to %s\n", *plot)
	}
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(r)
	}
	evaluate.WriteTable(m.Stdout, r, results)
	return nil
}

// writeDump writes one JSON object per case: its label, verdict and
// scores (no biometric data).
func writeDump(path string, results []evaluate.CaseResult) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(fh)
	for _, r := range results {
		var problems, tags []string
		for _, s := range r.Samples {
			problems = append(problems, s.Problem)
			tags = append(tags, s.Tag)
		}
		if err := enc.Encode(map[string]any{
			"case": r.Name, "bona_fide": r.BonaFide, "attack": r.Attack, "challenge": r.Challenge,
			"live": r.Decision.Live, "code": r.Decision.Code, "reasons": r.Decision.Reasons,
			"challenge_passed": r.Decision.ChallengePassed, "scores": r.Decision.Scores,
			"tags": tags, "problems": problems,
		}); err != nil {
			fh.Close()
			return err
		}
	}
	return fh.Close()
}

func (m *Main) evalGenLiveness(ctx context.Context, args []string) error {
	fs := m.newFlagSet("eval gen-liveness", "[options] OUTDIR",
		`Generates a liveness evaluation set for 'eval liveness' in OUTDIR:
  - bona fide: a textured 3-D head rendered from each frontal portrait
    following a BWS challenge (or moving freely), with lighting and noise;
    frames of real head-motion videos picked where the head turned, tagged
    with the measured direction;
  - attacks from the same photos: print (held still), print-moved,
    print-tilted (turned with the challenge), print-bent, screen (a replay of
    a live sequence with moiré, gamma, glare and bezel), mask (a tilted print
    with live eyes and mouth in cut-outs);
  - with --attacks, the shared real attack data as jobs (print-real,
    screen-real).
Portraits come from gocv's sample images and the model cache's photos, plus
--photos and --lfw N persons of --data's LFW set; videos from --data's
videos/headmotion. The same --seed and sources give the same set.`)
	ef := m.addEngineFlags(fs)
	seed := fs.Uint64("seed", 1, "random seed")
	data := fs.String("data", os.Getenv("BWSAGENT_TESTDATA"), "the shared data folder (identities/, videos/, attacks/); empty: registry photos only")
	lfw := fs.Int("lfw", 24, "how many LFW persons of --data to use as portraits (each person's first usable photo)")
	photos := fs.String("photos", "", "comma-separated extra portrait photos")
	videos := fs.Bool("videos", true, "cut bona fide jobs from --data's head-motion videos")
	attacks := fs.Bool("attacks", false, "add jobs from --data's real attack data")
	registry := fs.Bool("registry", true, "use the photos shipped in gocv and the model cache")
	challengeLen := fs.Int("challenges", 3, "directions per challenge (BWS: 2–7)")
	repeats := fs.Int("repeats", 1, "jobs of each kind per portrait")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("eval gen-liveness needs OUTDIR")
	}
	if *challengeLen < 2 || *challengeLen > 7 {
		return usagef("--challenges must be 2–7, got %d", *challengeLen)
	}
	opt := dataset.Options{Seed: *seed, ChallengeLen: *challengeLen, Repeats: *repeats, Progress: m.Stderr}
	if *registry {
		ps, err := registryPhotos(*ef.modelsDir)
		if err != nil {
			return err
		}
		opt.Photos = append(opt.Photos, ps...)
	}
	if *photos != "" {
		opt.Photos = append(opt.Photos, strings.Split(*photos, ",")...)
	}
	if *data != "" {
		groups, err := lfwPhotos(filepath.Join(*data, "identities", "lfw_deepfunneled_min10"), *lfw)
		if err != nil {
			return err
		}
		opt.PhotoGroups = groups
		if *videos {
			vs, _ := filepath.Glob(filepath.Join(*data, "videos", "headmotion", "*.mp4"))
			opt.Videos = vs
		}
		if *attacks {
			opt.AttacksDir = filepath.Join(*data, "attacks")
		}
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.Close()
	sum, err := dataset.Generate(ctx, e, fs.Arg(0), opt)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(sum))
	total := 0
	for k, n := range sum {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(m.Stderr, "%-16s %4d cases\n", k, sum[k])
	}
	fmt.Fprintf(m.Stderr, "%d cases written to %s\n", total, fs.Arg(0))
	return nil
}

// registryPhotos are the portrait photos every machine has after
// 'bwsagent models fetch': gocv's sample faces and face-api's demo photos.
func registryPhotos(modelsDirFlag string) ([]string, error) {
	var out []string
	if dir, err := gocvImagesDir(); err == nil {
		for _, n := range []string{"face.jpg", "face-detect.jpg"} {
			out = append(out, filepath.Join(dir, n))
		}
	}
	d, err := modelsDir(modelsDirFlag)
	if err != nil {
		return nil, err
	}
	mf, err := models.Default()
	if err != nil {
		return nil, err
	}
	if p, ok := mf.Lookup("@vladmandic/face-api"); ok {
		for i := 1; i <= 6; i++ {
			out = append(out, models.Cache{Dir: d}.Path(p, fmt.Sprintf("demo/sample%d.jpg", i)))
		}
	}
	var have []string
	for _, p := range out {
		if _, err := os.Stat(p); err == nil {
			have = append(have, p)
		}
	}
	return have, nil
}

// gocvImagesDir finds gocv's images folder in the module cache.
func gocvImagesDir() (string, error) {
	d := os.Getenv("GOMODCACHE")
	if d == "" {
		d = filepath.Join(os.Getenv("HOME"), "go", "pkg", "mod")
		if gp := os.Getenv("GOPATH"); gp != "" {
			d = filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
		}
	}
	dir := filepath.Join(d, "gocv.io", "x", "gocv@v0.31.0", "images")
	_, err := os.Stat(dir)
	return dir, err
}

// lfwPhotos returns the photos of the first n persons of an LFW folder,
// one group per person.
func lfwPhotos(dir string, n int) ([][]string, error) {
	persons, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("LFW photos: %w", err)
	}
	var out [][]string
	for _, p := range persons {
		if len(out) >= n {
			break
		}
		if !p.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, p.Name(), "*.jpg"))
		sort.Strings(files)
		if len(files) > 0 {
			out = append(out, files)
		}
	}
	return out, nil
}
