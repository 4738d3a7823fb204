package face

import (
	"fmt"
	"image"
	"image/draw"

	"gocv.io/x/gocv"
)

// MatFromImage converts a decoded image to a BGR Mat (the order OpenCV and
// every model wrapper in this package expect). The caller closes the Mat.
func MatFromImage(img image.Image) (gocv.Mat, error) {
	b := img.Bounds()
	if b.Empty() {
		return gocv.NewMat(), fmt.Errorf("empty image %v", b)
	}
	if g, ok := img.(*image.Gray); ok && g.Stride == b.Dx() {
		grey, err := gocv.NewMatFromBytes(b.Dy(), b.Dx(), gocv.MatTypeCV8UC1, g.Pix)
		if err != nil {
			return gocv.NewMat(), err
		}
		defer grey.Close()
		out := gocv.NewMat()
		gocv.CvtColor(grey, &out, gocv.ColorGrayToBGR)
		return out, nil
	}
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Stride != 4*b.Dx() {
		// draw.Draw has fast paths for YCbCr (JPEG) and NRGBA sources.
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	}
	m, err := gocv.NewMatFromBytes(b.Dy(), b.Dx(), gocv.MatTypeCV8UC4, rgba.Pix)
	if err != nil {
		return gocv.NewMat(), err
	}
	defer m.Close()
	out := gocv.NewMat()
	gocv.CvtColor(m, &out, gocv.ColorRGBAToBGR)
	return out, nil
}
