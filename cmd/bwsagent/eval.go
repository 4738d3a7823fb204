package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bwsagent/bwsagent/eval"
	"github.com/bwsagent/bwsagent/eval/rates"
)

func (m *Main) evalRecognition(ctx context.Context, args []string) error {
	fs := m.newFlagSet("eval recognition", "[options] DIR",
		`Measures recognition on DIR/<person>/<image> (other entries are ignored; the
face nearest each image's centre is used): every genuine and impostor pair is
compared. Prints EER and FNMR at FMR 1 % and 0.1 % with their thresholds, and
writes a DET plot (PNG). An image without a usable face counts in FTE and its
genuine pairs as non-matches. With --json, one object with rates as fractions:
  {"persons","images","fte","genuine","impostor","eer","fnmr_at_fmr":{"0.01","0.001"},"threshold_at_fmr_0.001",...}`)
	ef := m.addEngineFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	plot := fs.String("plot", "det-recognition.png", "write the DET plot here (empty: no plot)")
	enroll := fs.Int("enroll", 0, "fuse each person's first N images into one template (as enrollment does) and probe with the rest; 0 compares all pairs")
	int8Gallery := fs.Bool("int8", false, "with --enroll: score through the int8 1:N gallery that identification uses")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("eval recognition needs one DIR")
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.Close()
	r, scores, err := eval.Recognition(ctx, fs.Arg(0), eval.EngineEmbedder(e),
		eval.RecognitionOptions{Enroll: *enroll, Int8: *int8Gallery, Workers: *ef.workers, Progress: m.Stderr})
	if err != nil {
		return err
	}
	if *plot != "" {
		title := "DET — " + filepath.Base(filepath.Clean(fs.Arg(0)))
		if err := rates.PlotDET(*plot, title, "FMR", "FNMR", []rates.Curve{{Label: "bwsagent", Scores: scores}}); err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "DET plot written to %s\n", *plot)
	}
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(r)
	}
	eval.WriteRecognitionTable(m.Stdout, r)
	return nil
}

func (m *Main) evalPose(ctx context.Context, args []string) error {
	fs := m.newFlagSet("eval pose", "[options] DIR",
		`Measures head-pose error on DIR, whose labels.csv lists file,yaw,pitch[,roll]
in degrees (yaw > 0: nose toward the image's right edge; pitch > 0: up; as the
image is stored). Prints the mean absolute error per angle and how often the
sign is right; with --json, {"images","detected","yaw_mae","pitch_mae",...}.
'bwsagent eval gen-pose' renders such a folder from frontal photos.`)
	ef := m.addEngineFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("eval pose needs one DIR")
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.Close()
	r, err := eval.Pose(ctx, fs.Arg(0), eval.EnginePose(e), m.Stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(r)
	}
	eval.WritePoseTable(m.Stdout, r)
	return nil
}

func (m *Main) evalGenPose(ctx context.Context, args []string) error {
	fs := m.newFlagSet("eval gen-pose", "[options] OUTDIR PHOTO...",
		`Renders each (roughly frontal) photo as a textured 3-D head turned by known
angles and writes the views with labels.csv into OUTDIR, for 'eval pose'.`)
	ef := m.addEngineFlags(fs)
	step := fs.Float64("step", 10, "angle step in degrees")
	maxYaw := fs.Float64("max-yaw", 30, "largest |yaw| rendered")
	maxPitch := fs.Float64("max-pitch", 20, "largest |pitch| rendered")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return usagef("eval gen-pose needs OUTDIR and at least one PHOTO")
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.Close()
	if err := os.MkdirAll(fs.Arg(0), 0o755); err != nil {
		return err
	}
	n, err := eval.GeneratePoseSet(ctx, e, fs.Arg(0), fs.Args()[1:], eval.PoseSetOptions{Step: *step, MaxYaw: *maxYaw, MaxPitch: *maxPitch, Progress: m.Stderr})
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "%d views written to %s\n", n, fs.Arg(0))
	return nil
}
