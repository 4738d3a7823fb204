package eval

import (
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/face/synth"
)

// PoseSetOptions is the grid of angles GeneratePoseSet renders.
type PoseSetOptions struct {
	Step, MaxYaw, MaxPitch float64
	// Progress receives a line per photo (used or skipped); nil discards.
	Progress io.Writer
}

// maxSourceAngle: a photo turned more than this is not frontal enough to
// serve as the zero pose of rendered views (its own turn would count as error).
const maxSourceAngle = 12

// GeneratePoseSet renders every photo as a textured 3-D head at each grid
// pose and writes the views and labels.csv (file,yaw,pitch,roll) to outDir.
func GeneratePoseSet(ctx context.Context, e *face.Engine, outDir string, photos []string, grid PoseSetOptions) (int, error) {
	if grid.Step <= 0 {
		return 0, fmt.Errorf("angle step must be positive, got %v", grid.Step)
	}
	var labels strings.Builder
	labels.WriteString("file,yaw,pitch,roll\n")
	n := 0
	for _, path := range photos {
		img, err := imgio.ReadFile(path, imgio.Limits{})
		if err != nil {
			return n, err
		}
		m, err := face.MatFromImage(img)
		if err != nil {
			return n, err
		}
		s, err := e.Analyze(ctx, m, face.Options{})
		m.Close()
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
		f, ok := s.PrimaryFace()
		if !ok {
			return n, fmt.Errorf("%s: %w", path, face.ErrNoFace)
		}
		if math.Abs(f.Pose.Yaw) > maxSourceAngle || math.Abs(f.Pose.Pitch) > maxSourceAngle {
			if grid.Progress != nil {
				fmt.Fprintf(grid.Progress, "skip %s: the face is turned (yaw %.0f°, pitch %.0f°); frontal photos only\n", path, f.Pose.Yaw, f.Pose.Pitch)
			}
			continue
		}
		head, err := synth.NewHead(img, [68]geom.Point(f.Landmarks))
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
		if grid.Progress != nil {
			fmt.Fprintf(grid.Progress, "render %s\n", path)
		}
		base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		for yaw := -grid.MaxYaw; yaw <= grid.MaxYaw+1e-9; yaw += grid.Step {
			for pitch := -grid.MaxPitch; pitch <= grid.MaxPitch+1e-9; pitch += grid.Step {
				if err := ctx.Err(); err != nil {
					return n, err
				}
				p := geom.Pose{Yaw: yaw, Pitch: pitch}
				view := head.Render(p, synth.RenderOptions{Noise: 2, Seed: int64(n)})
				name := fmt.Sprintf("%s_y%+03.0f_p%+03.0f.jpg", base, yaw, pitch)
				if err := writeJPEG(filepath.Join(outDir, name), view); err != nil {
					return n, err
				}
				fmt.Fprintf(&labels, "%s,%.1f,%.1f,%.1f\n", name, yaw, pitch, 0.0)
				n++
			}
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("none of the %d photos shows a frontal face", len(photos))
	}
	return n, os.WriteFile(filepath.Join(outDir, "labels.csv"), []byte(labels.String()), 0o644)
}

func writeJPEG(path string, img image.Image) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(fh, img, &jpeg.Options{Quality: 92}); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fh.Close()
}
