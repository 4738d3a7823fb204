package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	m := &Main{Stdout: &o, Stderr: &e}
	err = m.Run(context.Background(), args)
	return o.String(), e.String(), err
}

func needModels(t *testing.T) { t.Helper(); testenv.RequireModels(t) }

func sampleImage(t *testing.T, name string) string { return testenv.SampleImage(t, name) }

// numbers replaces every number so golden files pin the shape (keys, casing,
// nesting, types), not model outputs, which face's own golden tests pin.
var numbers = regexp.MustCompile(`-?\d+(\.\d+)?(e-?\d+)?`)

func TestFaceDetectJSONShape(t *testing.T) {
	needModels(t)
	out, _, err := run(t, "face", "detect", "--json", gocvImage(t, "face.jpg"), gocvImage(t, "face-detect.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one JSON line per image, got %d:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var v struct {
			Image string `json:"image"`
			Faces []struct {
				Box     [4]float64 `json:"box"`
				Score   float64    `json:"score"`
				Pose    struct{ Yaw, Pitch, Roll float64 }
				Quality []string `json:"quality"`
			} `json:"faces"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, l)
		}
		if len(v.Faces) != 1 || v.Faces[0].Score < 0.9 || v.Faces[0].Box[2] < 100 || v.Faces[0].Quality == nil {
			t.Errorf("unexpected detection: %s", l)
		}
	}
	shape := numbers.ReplaceAllString(strings.ReplaceAll(out, filepath.Dir(gocvImage(t, "face.jpg")), "IMAGES"), "N")
	golden(t, "face_detect.golden", shape)
}

func TestFaceDetectBadImage(t *testing.T) {
	needModels(t)
	bad := filepath.Join(t.TempDir(), "bad.jpg")
	if err := os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "face", "detect", bad, gocvImage(t, "face.jpg"))
	if err == nil {
		t.Fatal("a corrupt image must make the command fail")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"error":`) || !strings.Contains(lines[1], `"faces":[{`) {
		t.Fatalf("want an error line for the bad image and a result for the good one:\n%s", out)
	}
}

func TestFaceCompare(t *testing.T) {
	needModels(t)
	tests := []struct {
		a, b string
		same bool
	}{
		{gocvImage(t, "face.jpg"), gocvImage(t, "face.jpg"), true},
		// gocv's two photos show the same man.
		{gocvImage(t, "face.jpg"), gocvImage(t, "face-detect.jpg"), true},
		{gocvImage(t, "face.jpg"), sampleImage(t, "sample2.jpg"), false},
	}
	for _, tt := range tests {
		out, _, err := run(t, "face", "compare", tt.a, tt.b)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Score *float64 `json:"score"`
			Same  *bool    `json:"same"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.Score == nil || v.Same == nil {
			t.Fatalf("want {\"score\":s,\"same\":bool}, got %q (%v)", out, err)
		}
		if *v.Same != tt.same {
			t.Errorf("compare %s %s: same=%v (score %.3f), want %v", filepath.Base(tt.a), filepath.Base(tt.b), *v.Same, *v.Score, tt.same)
		}
	}
	if _, _, err := run(t, "face", "compare", gocvImage(t, "face.jpg")); !isUsage(err) {
		t.Errorf("compare with one image: %v, want a usage error", err)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args  []string
		usage bool
		want  string
	}{
		{nil, true, "no command"},
		{[]string{"frobnicate"}, true, "unknown command"},
		{[]string{"face"}, true, "needs a subcommand"},
		{[]string{"face", "detect"}, true, "at least one IMAGE"},
		{[]string{"eval", "recognition"}, true, "one DIR"},
		{[]string{"face", "detect", "--no-such-flag", "x.jpg"}, true, "no-such-flag"},
	}
	for _, tt := range tests {
		_, stderr, err := run(t, tt.args...)
		if isUsage(err) != tt.usage || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want usage error containing %q", tt.args, err, tt.want)
		}
		if !strings.Contains(stderr, "Usage") {
			t.Errorf("%v: no usage text on stderr", tt.args)
		}
	}
	out, _, err := run(t, "help")
	if err != nil || !strings.Contains(out, "models fetch") {
		t.Errorf("help: %v\n%s", err, out)
	}
	_, stderr, err := run(t, "face", "detect", "-h")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "yaw > 0") {
		t.Errorf("face detect -h must explain the pose convention: %v\n%s", err, stderr)
	}
}

// TestEvalRecognition runs the evaluation on three LFW people and checks the
// report's keys and values.
func TestEvalRecognition(t *testing.T) {
	needModels(t)
	src, err := filepath.Abs(realData(t, "identities", "lfw_deepfunneled_min10"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range []string{"Tony_Blair", "George_W_Bush", "Colin_Powell"} {
		if err := os.Symlink(filepath.Join(src, p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	plot := filepath.Join(t.TempDir(), "det.png")
	out, _, err := run(t, "eval", "recognition", "--json", "--plot", plot, dir)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"persons", "images", "fte", "genuine", "impostor", "eer", "fnmr_at_fmr", "threshold_at_fmr_0.001"} {
		if _, ok := r[k]; !ok {
			t.Errorf("report lacks %q: %s", k, out)
		}
	}
	if r["persons"].(float64) != 3 || r["images"].(float64) != 30 || r["genuine"].(float64) != 135 || r["impostor"].(float64) != 300 {
		t.Errorf("counts wrong: %s", out)
	}
	fnmr := r["fnmr_at_fmr"].(map[string]any)
	if fnmr["0.01"] == nil || fnmr["0.001"] == nil || r["eer"].(float64) > 0.05 {
		t.Errorf("rates wrong: %s", out)
	}
	if st, err := os.Stat(plot); err != nil || st.Size() == 0 {
		t.Errorf("DET plot not written: %v", err)
	}
}

// TestEvalPose renders a frontal photo at known angles and checks the error bar.
func TestEvalPose(t *testing.T) {
	needModels(t)
	dir := t.TempDir()
	if _, _, err := run(t, "eval", "gen-pose", "--step", "15", dir, gocvImage(t, "face-detect.jpg")); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "eval", "pose", "--json", dir)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Images, Detected   int
		YawMAE             float64 `json:"yaw_mae"`
		PitchMAE           float64 `json:"pitch_mae"`
		YawSign, PitchSign float64
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Images != 15 || r.Detected != 15 || r.YawMAE > 8 || r.PitchMAE > 8 {
		t.Fatalf("pose on rendered views: %s (want 15 views, MAE ≤ 8°)", out)
	}
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func realData(t *testing.T, sub ...string) string { return testenv.DataDir(t, sub...) }

func gocvImage(t *testing.T, name string) string { return testenv.GocvImage(t, name) }
