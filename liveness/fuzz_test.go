package liveness

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
)

// FuzzDecide feeds arbitrary landmarks, poses, PAD scores, tags and patch
// bytes to Decide: it must never panic and must answer with one of the
// contract's codes.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{}, uint8(2), true)
	f.Add(make([]byte, 4096), uint8(4), false)
	seed := make([]byte, 3000)
	for i := range seed {
		seed[i] = byte(i * 7)
	}
	f.Add(seed, uint8(3), true)
	cfg := DefaultConfig()
	tags := []string{TagAny, TagUp, TagDown, TagLeft, TagRight, "", "sideways"}
	f.Fuzz(func(t *testing.T, data []byte, n uint8, challenge bool) {
		next := func() float64 {
			if len(data) < 8 {
				return 0
			}
			v := math.Float64frombits(binary.LittleEndian.Uint64(data))
			data = data[8:]
			return v
		}
		samples := make([]Sample, int(n%6))
		for i := range samples {
			s := &samples[i]
			s.Tag = tags[int(n+uint8(i))%len(tags)]
			s.Faces = 1
			for k := range s.Face.Landmarks {
				s.Face.Landmarks[k] = geom.Point{X: next(), Y: next()}
			}
			s.Face.Pose = geom.Pose{Yaw: next(), Pitch: next(), Roll: next()}
			s.PAD = next()
			s.Moire = next()
			s.Frame = uint8(math.Float64bits(next()))
			s.Embedding = face.Embedding{float32(next()), 1}
			if len(data) >= PatchSize*PatchSize {
				s.Patch = Patch{Pix: data[:PatchSize*PatchSize], Scale: next(), X0: next(), Y0: next()}
			}
		}
		d := decide(&cfg, samples, challenge)
		switch d.Code {
		case "", CodeLiveDetectionFailed, CodeChallengeResponseFailed, CodeNotEnoughSamples:
		default:
			t.Fatalf("code %q", d.Code)
		}
		if d.Live == (d.Code != "") {
			t.Fatalf("live=%v with code %q", d.Live, d.Code)
		}
	})
}
