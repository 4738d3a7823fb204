package dataset

import (
	"context"
	"fmt"
	"hash/fnv"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/imgio"
)

// Attack types made from the shared real data (ours).
const (
	AttackRealPrint  = "print-real"  // NUAA: a printed photo moved by hand, webcam frames
	AttackRealScreen = "screen-real" // a laptop screen replaying a video of the person
)

// Options configure Generate.
type Options struct {
	// Seed makes the set reproducible: the same seed, sources and options
	// give the same cases.
	Seed uint64
	// Photos are portrait sources: every frontal face alone in its frame
	// becomes a synthetic bona fide user and the source of attacks.
	Photos []string
	// PhotoGroups are more portrait sources: from each group (one
	// person's photos) the first photo with a usable face is used.
	PhotoGroups [][]string
	// MinPortraitPAD: portraits whose own PAD score is lower make attacks
	// only, no synthetic bona fide jobs: a press photo or an upscaled
	// thumbnail already looks like a recapture to the PAD model, so its
	// renders would measure the photo, not liveness. 0 means 0.9.
	MinPortraitPAD float64
	// Videos are head-motion clips of live people: bona fide jobs, and
	// screen replays of some of them.
	Videos []string
	// AttacksDir, if set, is the shared data's attacks/ folder: NUAA
	// print sequences and the laptop replay video become attack jobs.
	AttacksDir string
	// ChallengeLen is the number of directions per challenge (BWS: 2–7);
	// 0 means 3.
	ChallengeLen int
	// VideoJobs is the most jobs cut from one video; 0 means 6.
	VideoJobs int
	// Repeats is how many jobs of each kind every portrait makes; 0
	// means 1.
	Repeats int
	// Quality is the JPEG quality of the written samples; 0 means 90.
	Quality int
	// Progress receives a line per source; nil discards.
	Progress io.Writer
}

// Summary counts the cases written per label or attack type.
type Summary map[string]int

// Generate writes a liveness evaluation set to outDir (see the package
// comment for the layout).
func Generate(ctx context.Context, e *face.Engine, outDir string, opt Options) (Summary, error) {
	if opt.ChallengeLen <= 0 {
		opt.ChallengeLen = 3
	}
	if opt.VideoJobs <= 0 {
		opt.VideoJobs = 6
	}
	if opt.Quality <= 0 {
		opt.Quality = 90
	}
	if opt.Repeats <= 0 {
		opt.Repeats = 1
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	g := &generator{opt: opt, out: outDir, sum: Summary{}}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	if opt.MinPortraitPAD <= 0 {
		opt.MinPortraitPAD = 0.9
	}
	g.opt = opt
	portraits, err := LoadPortraits(ctx, e, opt.Photos, opt.Progress)
	if err != nil {
		return g.sum, err
	}
	more, err := FirstPortraits(ctx, e, opt.PhotoGroups, opt.Progress)
	if err != nil {
		return g.sum, err
	}
	portraits = append(portraits, more...)
	for i := range portraits {
		if err := g.portraitJobs(ctx, &portraits[i]); err != nil {
			return g.sum, err
		}
	}
	for _, v := range opt.Videos {
		if err := g.videoJobs(ctx, e, v, LabelBonaFide, ""); err != nil {
			return g.sum, err
		}
	}
	if opt.AttacksDir != "" {
		if err := g.realAttacks(ctx, e); err != nil {
			return g.sum, err
		}
	}
	if len(g.sum) == 0 {
		return g.sum, fmt.Errorf("no cases generated: no usable portrait or video")
	}
	return g.sum, nil
}

type generator struct {
	opt Options
	out string
	sum Summary
}

// rng returns the case's own random source, so a case does not change
// when others are added or removed.
func (g *generator) rng(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(g.opt.Seed, h.Sum64()))
}

func (g *generator) write(name string, meta Meta, frames []*image.RGBA) error {
	imgs := make([]image.Image, len(frames))
	for i, f := range frames {
		imgs[i] = f
	}
	if err := WriteCase(filepath.Join(g.out, name), meta, imgs, g.opt.Quality); err != nil {
		return err
	}
	key := meta.Label
	if meta.Label == LabelAttack {
		key = meta.Attack
	}
	g.sum[key]++
	return nil
}

// tags draws a job's tags: a BWS challenge, or (liveness only) 3–4 "any".
func (g *generator) tags(rng *rand.Rand, challenge bool) []string {
	if challenge {
		return Tags(Challenge(rng, g.opt.ChallengeLen), 0)
	}
	return Tags(nil, 3+rng.IntN(2))
}

// portraitJobs writes the synthetic bona fide jobs of one portrait and the
// attacks made from the same photo.
func (g *generator) portraitJobs(ctx context.Context, p *Portrait) error {
	sc, err := newScene(p)
	if err != nil {
		fmt.Fprintf(g.opt.Progress, "skip portrait %s: %v\n", p.Name, err)
		return nil
	}
	bonaFide := p.PAD >= g.opt.MinPortraitPAD
	note := ""
	if !bonaFide {
		note = ": attacks only"
	}
	fmt.Fprintf(g.opt.Progress, "portrait %s (PAD %.2f)%s\n", p.Name, p.PAD, note)
	type job struct {
		kind      string
		challenge bool
		suffix    string
	}
	jobs := []job{
		{LabelBonaFide, true, "c"}, {LabelBonaFide, false, "a"},
		{AttackPrint, true, "c"},
		{AttackPrintMoved, true, "c"},
		{AttackPrintTilted, true, "c"}, {AttackPrintTilted, false, "a"},
		{AttackPrintBent, true, "c"},
		{AttackScreen, true, "c"},
		{AttackMask, true, "c"},
	}
	for r := 0; r < g.opt.Repeats; r++ {
		for _, j := range jobs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if j.kind == LabelBonaFide && !bonaFide {
				continue
			}
			suffix := j.suffix
			if r > 0 {
				suffix = fmt.Sprintf("%s%d", j.suffix, r+1)
			}
			if err := g.portraitJob(sc, p, j.kind, j.challenge, fmt.Sprintf("%s-synth-%s-%s", j.kind, p.Name, suffix)); err != nil {
				return err
			}
		}
	}
	return nil
}

// portraitJob renders and writes one job of a portrait.
func (g *generator) portraitJob(sc *scene, p *Portrait, kind string, challenge bool, name string) error {
	rng := g.rng(name)
	tags := g.tags(rng, challenge)
	meta := Meta{Label: LabelAttack, Attack: kind, Tags: tags, Source: "synthetic from photo " + p.Name}
	var frames []*image.RGBA
	switch kind {
	case LabelBonaFide:
		meta = Meta{Label: LabelBonaFide, Tags: tags, Source: "3-D head rendered from photo " + p.Name}
		frames = sc.liveFrames(rng, tags)
	case AttackScreen:
		frames = screenFrames(rng, sc.liveFrames(rng, tags))
	case AttackMask:
		frames = sc.maskFrames(rng, tags)
	default:
		frames = sc.printFrames(rng, kind, tags)
	}
	return g.write(name, meta, frames)
}

// videoJobs cuts jobs from a video, alternating challenge and liveness
// only. label bona fide also writes a screen replay of every other job;
// label attack (a replay video) writes the jobs as attack.
func (g *generator) videoJobs(ctx context.Context, e *face.Engine, path, label, attack string) error {
	base := sanitize(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	t, err := trackVideo(ctx, e, path)
	if err != nil {
		return err
	}
	rng := g.rng("video-" + base)
	var jobs []videoJob
	for start, mode := 0, rng.IntN(2) == 0; start < len(t.frames) && len(jobs) < g.opt.VideoJobs; mode = !mode {
		js, next := pickJobs(t, rng, mode, 1, start)
		jobs = append(jobs, js...)
		start = next
	}
	fmt.Fprintf(g.opt.Progress, "video %s: %d analysed frames with a face, %d jobs\n", path, len(t.frames), len(jobs))
	for k, j := range jobs {
		frames, err := readFrames(path, j.frames)
		if err != nil {
			return err
		}
		mode := "a"
		if slices.ContainsFunc(j.tags, func(s string) bool { return s != "any" }) {
			mode = "c"
		}
		src := fmt.Sprintf("video %s frames %v", filepath.Base(path), j.frames)
		if label == LabelAttack {
			name := fmt.Sprintf("%s-%s-%02d%s", attack, base, k+1, mode)
			if err := g.write(name, Meta{Label: LabelAttack, Attack: attack, Tags: j.tags, Source: src}, frames); err != nil {
				return err
			}
			continue
		}
		name := fmt.Sprintf("%s-video-%s-%02d%s", LabelBonaFide, base, k+1, mode)
		if err := g.write(name, Meta{Label: LabelBonaFide, Tags: j.tags, Source: src}, frames); err != nil {
			return err
		}
		if k%2 == 0 {
			name := fmt.Sprintf("%s-video-%s-%02d%s", AttackScreen, base, k+1, mode)
			replay := screenFrames(g.rng(name), frames)
			if err := g.write(name, Meta{Label: LabelAttack, Attack: AttackScreen, Tags: j.tags, Source: "screen replay of " + src}, replay); err != nil {
				return err
			}
		}
	}
	return nil
}

// realAttacks writes the shared real attack data as jobs: each NUAA
// subject's printed-photo frames (the print moved between them) as one
// liveness-only job, and jobs cut from the laptop replay video.
func (g *generator) realAttacks(ctx context.Context, e *face.Engine) error {
	spoof := filepath.Join(g.opt.AttacksDir, "nuaa_subset", "spoof")
	subjects, err := os.ReadDir(spoof)
	if err != nil {
		fmt.Fprintf(g.opt.Progress, "skip NUAA: %v\n", err)
	}
	for _, s := range subjects {
		if !s.IsDir() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(spoof, s.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		var names []string
		for _, en := range entries {
			if imageExt[strings.ToLower(filepath.Ext(en.Name()))] {
				names = append(names, en.Name())
			}
		}
		slices.SortFunc(names, naturalCompare)
		var frames []*image.RGBA
		for _, n := range names {
			img, err := imgio.ReadFile(filepath.Join(dir, n), imgio.Limits{})
			if err != nil {
				return err
			}
			frames = append(frames, toRGBA(img))
		}
		if len(frames) < 2 {
			continue
		}
		name := fmt.Sprintf("%s-nuaa-%s", AttackRealPrint, s.Name())
		meta := Meta{Label: LabelAttack, Attack: AttackRealPrint, Tags: Tags(nil, len(frames)), Source: "NUAA spoof " + s.Name()}
		if err := g.write(name, meta, frames); err != nil {
			return err
		}
	}
	video := filepath.Join(g.opt.AttacksDir, "manikantha_liveness", "spoof", "fake_video_screen_replay.mp4")
	if _, err := os.Stat(video); err != nil {
		fmt.Fprintf(g.opt.Progress, "skip replay video: %v\n", err)
		return nil
	}
	return g.videoJobs(ctx, e, video, LabelAttack, AttackRealScreen)
}
