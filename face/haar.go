package face

import (
	"fmt"
	"image"
	"os"

	"gocv.io/x/gocv"
)

// HaarCascadePath is where Debian's opencv-data installs the frontal-face
// cascade.
const HaarCascadePath = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

// HaarBaseline is OpenCV's classic Haar frontal-face detector, kept only as
// the speed baseline the benchmarks compare the tracking path with.
type HaarBaseline struct {
	c gocv.CascadeClassifier
}

// NewHaarBaseline loads the cascade from HaarCascadePath.
func NewHaarBaseline() (*HaarBaseline, error) {
	if _, err := os.Stat(HaarCascadePath); err != nil {
		return nil, fmt.Errorf("haar cascade not installed (apt-get install opencv-data): %w", err)
	}
	c := gocv.NewCascadeClassifier()
	if !c.Load(HaarCascadePath) {
		c.Close()
		return nil, fmt.Errorf("load %s failed", HaarCascadePath)
	}
	return &HaarBaseline{c: c}, nil
}

// Detect runs the cascade on a BGR frame with OpenCV's usual settings.
func (h *HaarBaseline) Detect(img gocv.Mat) []image.Rectangle {
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(img, &grey, gocv.ColorBGRToGray)
	return h.c.DetectMultiScale(grey)
}

// Close frees the cascade.
func (h *HaarBaseline) Close() error { return h.c.Close() }
