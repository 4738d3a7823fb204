package liveness

import (
	"testing"

	"github.com/bwsagent/bwsagent/face"
)

// TestCountFaces: a second face makes a sample ambiguous only when it is
// large enough and the detector is sure of it — the measured false second
// faces (clutter, an ornament, a blurred half face at the edge) scored
// 0.65–0.80, a face in full view ≈ 1.
func TestCountFaces(t *testing.T) {
	main := face.Face{Box: face.Rect{W: 180, H: 180}, Score: 1}
	with := func(w float64, score float32) []face.Face {
		return []face.Face{main, {Box: face.Rect{X: 300, W: w, H: w}, Score: score}}
	}
	d := DefaultConfig()
	tests := []struct {
		name  string
		faces []face.Face
		want  int
	}{
		{"alone", []face.Face{main}, 1},
		{"a photo held up beside the head", with(150, 0.99), 2},
		{"a small face far behind", with(60, 0.99), 1},
		{"clutter detected as a face", with(255, 0.68), 1},
		{"at the score threshold", with(150, float32(d.SecondFaceScore)), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := countFaces(tt.faces, 0, d.SecondFaceRatio, d.SecondFaceScore); got != tt.want {
				t.Errorf("countFaces = %d, want %d", got, tt.want)
			}
		})
	}
}
