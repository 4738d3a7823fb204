package face

import (
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/geom"
)

// Quality warning codes. The first four are BWS's own; the others follow its
// naming for checks BWS does not publish (ours).
const (
	WarnImageTooSmall      = "ImageTooSmall"      // face smaller than Config.MinFaceSize
	WarnImageOverExposure  = "ImageOverExposure"  // face region too bright
	WarnImageUnderExposure = "ImageUnderExposure" // face region too dark
	WarnMultipleFaces      = "MultipleFacesFound"
	WarnImageTooBlurry     = "ImageTooBlurry"       // ours: little fine detail in the face
	WarnFaceNotFrontal     = "FaceNotFrontal"       // ours: |yaw| > 30° or |pitch| > 25°
	WarnFaceAtImageBorder  = "FaceTooCloseToBorder" // ours: part of the face box outside the image
)

// Quality thresholds on a 128×128 grey crop of the square face box. The
// exposure bounds follow ISO/ICAO practice for 8-bit faces; the sharpness
// bound is the Laplacian variance below which eyelids and nostrils blur out.
const (
	qualitySize     = 128
	minBrightness   = 60
	maxBrightness   = 200
	minSharpness    = 30
	maxFrontalYaw   = 30
	maxFrontalPitch = 25
)

// QualitySignals are the raw measurements behind the warnings.
type QualitySignals struct {
	Brightness float64 `json:"brightness"` // mean grey level of the face, 0–255
	Sharpness  float64 `json:"sharpness"`  // variance of the Laplacian of the face
}

func measureQuality(img gocv.Mat, box Rect) QualitySignals {
	crop := cropResize(img, box, qualitySize)
	defer crop.Close()
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(crop, &grey, gocv.ColorBGRToGray)
	// The centre of the box: skin, eyes, nose, mouth; little background.
	inner := grey.Region(image.Rect(qualitySize/5, qualitySize/5, qualitySize*4/5, qualitySize*4/5))
	defer inner.Close()
	lap := gocv.NewMat()
	defer lap.Close()
	gocv.Laplacian(inner, &lap, gocv.MatTypeCV64F, 1, 1, 0, gocv.BorderDefault)
	mean, std := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer std.Close()
	gocv.MeanStdDev(lap, &mean, &std)
	sd := std.GetDoubleAt(0, 0)
	return QualitySignals{Brightness: inner.Mean().Val1, Sharpness: sd * sd}
}

func qualityWarnings(q QualitySignals, box Rect, pose geom.Pose, imgW, imgH, minFace int) []string {
	w := []string{}
	if box.W < float64(minFace) {
		w = append(w, WarnImageTooSmall)
	}
	if q.Brightness > maxBrightness {
		w = append(w, WarnImageOverExposure)
	}
	if q.Brightness < minBrightness {
		w = append(w, WarnImageUnderExposure)
	}
	if q.Sharpness < minSharpness {
		w = append(w, WarnImageTooBlurry)
	}
	if math.Abs(pose.Yaw) > maxFrontalYaw || math.Abs(pose.Pitch) > maxFrontalPitch {
		w = append(w, WarnFaceNotFrontal)
	}
	if box.X < 0 || box.Y < 0 || box.X+box.W > float64(imgW) || box.Y+box.H > float64(imgH) {
		w = append(w, WarnFaceAtImageBorder)
	}
	return w
}
