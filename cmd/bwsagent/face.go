package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/imgio"
)

// engineFlags are the options every command that runs the models shares.
type engineFlags struct {
	modelsDir *string
	workers   *int
}

func (m *Main) addEngineFlags(fs interface {
	String(string, string, string) *string
	Int(string, int, string) *int
}) engineFlags {
	return engineFlags{
		modelsDir: fs.String("models-dir", "", "model cache directory (see 'bwsagent models fetch')"),
		workers:   fs.Int("workers", runtime.NumCPU(), "parallel inference workers"),
	}
}

func (ef engineFlags) open() (*face.Engine, error) {
	d, err := modelsDir(*ef.modelsDir)
	if err != nil {
		return nil, err
	}
	// One OpenCV thread per worker: parallelism comes from the workers, and
	// nested thread pools on a small device only add contention.
	face.SetThreads(1)
	return face.New(face.Config{ModelsDir: d, Workers: *ef.workers})
}

// faceJSON is the CLI's JSON shape of a face.
type faceJSON struct {
	Box     [4]float64 `json:"box"`
	Score   float64    `json:"score"`
	Pose    poseJSON   `json:"pose"`
	Quality []string   `json:"quality"`
}

type poseJSON struct {
	Yaw   float64 `json:"yaw"`
	Pitch float64 `json:"pitch"`
	Roll  float64 `json:"roll"`
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func toFaceJSON(f face.Face) faceJSON {
	return faceJSON{
		Box:     [4]float64{round(f.Box.X, 1), round(f.Box.Y, 1), round(f.Box.W, 1), round(f.Box.H, 1)},
		Score:   round(float64(f.Score), 4),
		Pose:    poseJSON{round(f.Pose.Yaw, 1), round(f.Pose.Pitch, 1), round(f.Pose.Roll, 1)},
		Quality: f.Warnings,
	}
}

func (m *Main) faceDetect(ctx context.Context, args []string) error {
	fs := m.newFlagSet("face detect", "[options] IMAGE...",
		`Finds the faces in each image and prints one JSON object per image and line:
  {"image":PATH,"faces":[{"box":[x,y,w,h],"score":s,"pose":{"yaw":..,"pitch":..,"roll":..},"quality":[...]}]}
Pose is in degrees in the image as stored (EXIF orientation applied): yaw > 0
when the nose points toward the image's right edge, pitch > 0 when the face
turns up, roll > 0 counter-clockwise. quality lists BWS warning codes.
An image that cannot be read gives {"image":PATH,"error":"..."} and exit code 1.`)
	ef := m.addEngineFlags(fs)
	_ = fs.Bool("json", true, "JSON lines output (the only format; accepted for clarity)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usagef("face detect needs at least one IMAGE")
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.Close()
	enc := json.NewEncoder(m.Stdout)
	failed := 0
	for _, path := range fs.Args() {
		faces, err := detectFile(ctx, e, path)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
			if err := enc.Encode(map[string]string{"image": path, "error": err.Error()}); err != nil {
				return err
			}
			continue
		}
		out := struct {
			Image string     `json:"image"`
			Faces []faceJSON `json:"faces"`
		}{Image: path, Faces: []faceJSON{}}
		for _, f := range faces {
			out.Faces = append(out.Faces, toFaceJSON(f))
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be analysed", failed, fs.NArg())
	}
	return nil
}

// loadMat decodes an image file (EXIF orientation applied) to a BGR Mat the
// caller closes.
func loadMat(path string) (gocv.Mat, error) {
	return face.ReadImageFile(path, imgio.Limits{})
}

func detectFile(ctx context.Context, e *face.Engine, path string) ([]face.Face, error) {
	m, err := loadMat(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return e.Detect(ctx, m)
}

func (m *Main) faceCompare(ctx context.Context, args []string) error {
	fs := m.newFlagSet("face compare", "[options] IMAGE1 IMAGE2",
		fmt.Sprintf(`Compares the face nearest the centre of each image and prints
  {"score":s,"same":bool}
score is the cosine similarity of the two templates (-1..1); same is true above
the threshold (default %.2f: FMR 0.1 %% measured on LFW; %.2f gives FMR 1 %%).`, face.ThresholdFMR01, face.ThresholdFMR1))
	ef := m.addEngineFlags(fs)
	threshold := fs.Float64("threshold", face.ThresholdFMR01, "decision threshold on the score")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return usagef("face compare needs exactly two images, got %d", fs.NArg())
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.Close()
	var embs [2]face.Embedding
	for i, path := range fs.Args() {
		mat, err := loadMat(path)
		if err != nil {
			return err
		}
		s, err := e.Analyze(ctx, mat, face.Options{Embed: true})
		mat.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if s.Embedding == nil {
			return fmt.Errorf("%s: %w", path, face.ErrNoFace)
		}
		embs[i] = s.Embedding
	}
	score, err := face.Similarity(embs[0], embs[1])
	if err != nil {
		return err
	}
	return json.NewEncoder(m.Stdout).Encode(struct {
		Score float64 `json:"score"`
		Same  bool    `json:"same"`
	}{round(score, 4), score > *threshold})
}
