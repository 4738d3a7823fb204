package face

import (
	"image"
	"image/color"
	"testing"
)

func TestMatFromImage(t *testing.T) {
	var nilRGBA *image.RGBA
	rgba := image.NewRGBA(image.Rect(0, 0, 4, 3))
	rgba.Set(1, 2, color.RGBA{R: 200, G: 100, B: 50, A: 255})
	grey := image.NewGray(image.Rect(0, 0, 4, 3))
	grey.SetGray(3, 0, color.Gray{Y: 77})
	tests := []struct {
		name    string
		img     image.Image
		wantErr bool
		x, y    int
		bgr     [3]uint8
	}{
		{"nil interface", nil, true, 0, 0, [3]uint8{}},
		{"nil *image.RGBA", nilRGBA, true, 0, 0, [3]uint8{}},
		{"empty", image.NewRGBA(image.Rectangle{}), true, 0, 0, [3]uint8{}},
		{"RGBA to BGR", rgba, false, 1, 2, [3]uint8{50, 100, 200}},
		{"grey to BGR", grey, false, 3, 0, [3]uint8{77, 77, 77}},
		{"sub-image with an offset", rgba.SubImage(image.Rect(1, 1, 3, 3)), false, 0, 1, [3]uint8{50, 100, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := MatFromImage(tt.img)
			if err != nil {
				m.Close() // the empty Mat that comes with the error
				if !tt.wantErr {
					t.Fatal(err)
				}
				return
			}
			defer m.Close()
			if tt.wantErr {
				t.Fatal("no error")
			}
			v := m.GetVecbAt(tt.y, tt.x)
			if [3]uint8{v[0], v[1], v[2]} != tt.bgr {
				t.Errorf("pixel (%d,%d) = %v, want BGR %v", tt.x, tt.y, v, tt.bgr)
			}
		})
	}
}
