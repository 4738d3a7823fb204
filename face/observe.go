package face

import "time"

// Observer receives how long one model inference took on a worker:
// preprocessing, the forward pass and decoding its output, not the wait
// for a free worker. model is one of the Model constants. Workers call it
// concurrently, so it must be safe for that, and cheap.
type Observer func(model string, d time.Duration)

// The models an Observer hears about.
const (
	ModelDetect    = "detect"    // RFB-320 face detector
	ModelTrack     = "track"     // BlazeFace, the per-frame tracking detector
	ModelLandmarks = "landmarks" // 68-point landmarks, once per face found
	ModelEmbed     = "embed"     // ArcFace template, the crop and its mirror
	ModelPAD       = "pad"       // passive presentation-attack score
)

// timed starts timing model; call the result when the inference is done:
// defer w.timed(ModelDetect)().
func (w *worker) timed(model string) func() {
	if w.observe == nil {
		return func() {}
	}
	start := time.Now()
	return func() { w.observe(model, time.Since(start)) }
}
