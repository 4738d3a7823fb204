package face

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"path/filepath"
	"reflect"
	"strings"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/imgio"
)

// ReadImageFile loads a local image file as a BGR Mat (the caller closes
// it), with EXIF orientation applied. Files in the upload formats go
// through imgio's limits; netpbm files (research face sets such as AT&T/ORL
// are PGM) are read by OpenCV, and only from local files, never from uploads.
func ReadImageFile(path string, lim imgio.Limits) (gocv.Mat, error) {
	img, err := imgio.ReadFile(path, lim)
	if errors.Is(err, imgio.ErrUnsupported) && isNetpbm(path) {
		m := gocv.IMRead(path, gocv.IMReadColor)
		if m.Empty() {
			m.Close()
			return gocv.NewMat(), fmt.Errorf("%s: OpenCV could not read it: %w", path, err)
		}
		return m, nil
	}
	if err != nil {
		return gocv.NewMat(), err
	}
	return MatFromImage(img)
}

func isNetpbm(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pgm", ".ppm", ".pbm", ".pnm":
		return true
	}
	return false
}

// MatFromImage converts a decoded image to a BGR Mat (the order OpenCV and
// every model wrapper in this package expect). The caller closes the Mat.
func MatFromImage(img image.Image) (gocv.Mat, error) {
	if v := reflect.ValueOf(img); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return gocv.NewMat(), errors.New("no image (nil)")
	}
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
