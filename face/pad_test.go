package face

import (
	"context"
	"math/rand/v2"
	"testing"
)

// TestPADUnderSensorNoise: live photos taken in a dim room — a third of
// the light, the sensor's noise, the camera's gain doubling both — must
// still read as live. The passive model is known to be fragile here (see
// padScore); these registry photos are the ones it scores live when clean.
func TestPADUnderSensorNoise(t *testing.T) {
	e := engine(t)
	for _, name := range []string{"face.jpg", "face-detect.jpg", "sample1.jpg", "sample3.jpg", "sample4.jpg", "sample5.jpg"} {
		for _, sigma := range []float64{0, 4, 8} {
			m := readMat(t, sampleImage(t, name))
			b, err := m.DataPtrUint8()
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, uint64(sigma)))
			for i, v := range b {
				b[i] = uint8(max(0, min(255, 2*(float64(v)*0.35+rng.NormFloat64()*sigma/2)+0.5)))
			}
			s, err := e.Analyze(context.Background(), m, Options{PAD: true})
			m.Close()
			if err != nil || s.Primary < 0 {
				t.Fatalf("%s σ %g: Analyze: %v, primary %d", name, sigma, err, s.Primary)
			}
			if s.PAD < 0.5 {
				t.Errorf("%s in a dim room, noise σ %g: PAD %.3f, a live face read as an attack", name, sigma, s.PAD)
			}
		}
	}
}
