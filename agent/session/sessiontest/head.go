package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/synth"
)

// HeadFromPhoto builds a synthetic 3-D head from a frontal photo, with the
// engine's landmarks on it; it also returns the photo (for photo attacks).
func HeadFromPhoto(ctx context.Context, e *face.Engine, path string) (*synth.Head, image.Image, error) {
	m := gocv.IMRead(path, gocv.IMReadColor)
	defer m.Close()
	if m.Empty() {
		return nil, nil, fmt.Errorf("sessiontest: cannot read %s", path)
	}
	s, err := e.Analyze(ctx, m, face.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("sessiontest: analyze %s: %w", path, err)
	}
	f, ok := s.PrimaryFace()
	if !ok {
		return nil, nil, errors.New("sessiontest: no face in " + path)
	}
	img, err := m.ToImage()
	if err != nil {
		return nil, nil, fmt.Errorf("sessiontest: %w", err)
	}
	h, err := synth.NewHead(img, [68]geom.Point(f.Landmarks))
	if err != nil {
		return nil, nil, fmt.Errorf("sessiontest: head: %w", err)
	}
	return h, img, nil
}
