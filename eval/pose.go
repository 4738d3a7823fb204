package eval

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/imgio"
)

// PoseLabel is one row of labels.csv: file,yaw,pitch[,roll] in degrees, in
// the project's convention (geom.Pose: yaw > 0 nose toward image-right,
// pitch > 0 up, in the image as stored).
type PoseLabel struct {
	File    string
	Pose    geom.Pose
	HasRoll bool
}

// ReadPoseLabels parses DIR/labels.csv. A header row is optional.
func ReadPoseLabels(r io.Reader) ([]PoseLabel, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var out []PoseLabel
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("labels.csv: %w", err)
		}
		if len(rec) < 3 {
			return nil, fmt.Errorf("labels.csv line %d: want file,yaw,pitch[,roll], got %d fields", line, len(rec))
		}
		if line == 1 && strings.EqualFold(strings.TrimSpace(rec[1]), "yaw") {
			continue
		}
		var l PoseLabel
		l.File = rec[0]
		vals := make([]float64, 0, 3)
		for _, f := range rec[1:min(len(rec), 4)] {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("labels.csv line %d: %q is not an angle in degrees", line, f)
			}
			vals = append(vals, v)
		}
		l.Pose.Yaw, l.Pose.Pitch = vals[0], vals[1]
		if len(vals) == 3 {
			l.Pose.Roll, l.HasRoll = vals[2], true
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("labels.csv has no rows")
	}
	return out, nil
}

// PoseReport is the result of a pose run; errors are in degrees.
type PoseReport struct {
	Images      int     `json:"images"`
	Detected    int     `json:"detected"`
	YawMAE      float64 `json:"yaw_mae"`
	PitchMAE    float64 `json:"pitch_mae"`
	RollMAE     float64 `json:"roll_mae,omitempty"`
	YawSignOK   float64 `json:"yaw_sign_ok"`   // fraction of |yaw| ≥ 5° labels whose sign is right
	PitchSignOK float64 `json:"pitch_sign_ok"` // likewise for pitch
}

// PoseEstimator returns the pose of the face nearest the image centre.
type PoseEstimator func(ctx context.Context, path string) (geom.Pose, bool, error)

// EnginePose estimates pose with the engine's sample analysis.
func EnginePose(e *face.Engine) PoseEstimator {
	return func(ctx context.Context, path string) (geom.Pose, bool, error) {
		m, err := face.ReadImageFile(path, imgio.Limits{})
		if err != nil {
			return geom.Pose{}, false, err
		}
		defer m.Close()
		s, err := e.Analyze(ctx, m, face.Options{})
		if err != nil {
			return geom.Pose{}, false, err
		}
		f, ok := s.PrimaryFace()
		return f.Pose, ok, nil
	}
}

// Pose compares estimated and labelled poses of DIR's images. Images with
// no face count in Images but not in the errors.
func Pose(ctx context.Context, dir string, estimate PoseEstimator, progress io.Writer) (PoseReport, error) {
	fh, err := os.Open(filepath.Join(dir, "labels.csv"))
	if err != nil {
		return PoseReport{}, fmt.Errorf("pose evaluation needs %s/labels.csv (file,yaw,pitch[,roll]): %w", dir, err)
	}
	labels, err := ReadPoseLabels(fh)
	fh.Close()
	if err != nil {
		return PoseReport{}, err
	}
	r := PoseReport{Images: len(labels)}
	var yawN, pitchN, yawOK, pitchOK, rollN int
	for i, l := range labels {
		p, ok, err := estimate(ctx, filepath.Join(dir, l.File))
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			return r, fmt.Errorf("%s: %w", l.File, err)
		}
		if progress != nil && (i+1)%20 == 0 {
			fmt.Fprintf(progress, "pose: %d/%d\n", i+1, len(labels))
		}
		if !ok {
			continue
		}
		r.Detected++
		r.YawMAE += math.Abs(p.Yaw - l.Pose.Yaw)
		r.PitchMAE += math.Abs(p.Pitch - l.Pose.Pitch)
		if l.HasRoll {
			r.RollMAE += math.Abs(p.Roll - l.Pose.Roll)
			rollN++
		}
		if math.Abs(l.Pose.Yaw) >= 5 {
			yawN++
			if p.Yaw*l.Pose.Yaw > 0 {
				yawOK++
			}
		}
		if math.Abs(l.Pose.Pitch) >= 5 {
			pitchN++
			if p.Pitch*l.Pose.Pitch > 0 {
				pitchOK++
			}
		}
	}
	if r.Detected == 0 {
		return r, fmt.Errorf("no face found in any of the %d images", r.Images)
	}
	r.YawMAE /= float64(r.Detected)
	r.PitchMAE /= float64(r.Detected)
	if rollN > 0 {
		r.RollMAE /= float64(rollN)
	}
	r.YawSignOK, r.PitchSignOK = ratio(yawOK, yawN), ratio(pitchOK, pitchN)
	return r, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// WritePoseTable prints the report for people.
func WritePoseTable(w io.Writer, r PoseReport) {
	fmt.Fprintf(w, "images       %d (face found in %d)\n", r.Images, r.Detected)
	fmt.Fprintf(w, "yaw   MAE    %.2f°   sign right %.0f%%\n", r.YawMAE, 100*r.YawSignOK)
	fmt.Fprintf(w, "pitch MAE    %.2f°   sign right %.0f%%\n", r.PitchMAE, 100*r.PitchSignOK)
	if r.RollMAE > 0 {
		fmt.Fprintf(w, "roll  MAE    %.2f°\n", r.RollMAE)
	}
}
