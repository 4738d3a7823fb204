package liveness

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/synth"
)

// Synthetic samples for tests that need no models: a head with a random
// skin-like texture (smooth noise, so points can be tracked) rendered by
// face/synth at known poses, or a flat print of it moved by a homography.
// Landmarks are the renderer's ground truth; the pose is solved from them
// as the engine does.

const (
	synthW, synthH = 480, 360
	synthDist      = 400.0 // mm, camera to the head's rotation centre
)

type synthWorld struct {
	head    *synth.Head
	frontal *image.RGBA
	lm0     [68]geom.Point
}

var testWorld = sync.OnceValues(func() (*synthWorld, error) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Smooth noise texture without periodic structure (a regular grid
	// would read as a screen's moiré): white noise box-blurred three times.
	n := make([]float64, synthW*synthH)
	for i := range n {
		n[i] = rng.Float64()
	}
	for pass := 0; pass < 3; pass++ {
		n = blur1D(n, synthW, synthH, 3, 1, 0)
		n = blur1D(n, synthW, synthH, 3, 0, 1)
	}
	var lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range n {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	img := image.NewRGBA(image.Rect(0, 0, synthW, synthH))
	for y := 0; y < synthH; y++ {
		for x := 0; x < synthW; x++ {
			v := 50 + 170*(n[y*synthW+x]-lo)/(hi-lo)
			img.Set(x, y, color.RGBA{uint8(v), uint8(0.8 * v), uint8(0.7 * v), 255})
		}
	}
	cam := geom.DefaultCamera(synthW, synthH)
	model := geom.Canonical68()
	pts := geom.Project(model[:], geom.Pose{}, geom.Vec3{Z: -synthDist}, cam)
	var lm [68]geom.Point
	copy(lm[:], pts)
	h, err := synth.NewHead(img, lm)
	if err != nil {
		return nil, err
	}
	return &synthWorld{head: h, frontal: h.Render(geom.Pose{}, synth.RenderOptions{}), lm0: h.Landmarks(geom.Pose{})}, nil
})

func world(t testing.TB) *synthWorld {
	t.Helper()
	w, err := testWorld()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// person is a unit template; different persons are near-orthogonal.
func person(seed uint64) face.Embedding {
	rng := rand.New(rand.NewPCG(seed, 99))
	e := make(face.Embedding, 512)
	var n float64
	for i := range e {
		e[i] = float32(rng.NormFloat64())
		n += float64(e[i]) * float64(e[i])
	}
	for i := range e {
		e[i] /= float32(math.Sqrt(n))
	}
	return e
}

// sampleFrom analyses a synthetic frame the way Analyze does, from ground
// truth landmarks instead of the models.
func sampleFrom(t testing.TB, img *image.RGBA, lm [68]geom.Point, tag string) Sample {
	t.Helper()
	m, err := face.MatFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fit, err := geom.SolvePose(lm, geom.DefaultCamera(img.Bounds().Dx(), img.Bounds().Dy()))
	if err != nil {
		t.Fatal(err)
	}
	l := face.Landmarks(lm)
	b := l.Bounds()
	side := math.Max(b.W, b.H)
	s := Sample{
		Tag: tag, Width: synthW, Height: synthH, Faces: 1,
		Face:      face.Face{Box: face.Rect{X: b.X + b.W/2 - side/2, Y: b.Y + b.H/2 - side/2, W: side, H: side}, Landmarks: l, Pose: fit.Pose},
		Embedding: person(1),
		PAD:       0.98,
	}
	if s.Patch, err = extractPatch(m, &s.Face.Landmarks); err != nil {
		t.Fatal(err)
	}
	s.Moire = moireOf(m, &s.Face)
	return s
}

// live renders the head at each pose.
func live(t testing.TB, tags []string, poses ...geom.Pose) []Sample {
	t.Helper()
	w := world(t)
	out := make([]Sample, len(poses))
	for i, p := range poses {
		out[i] = sampleFrom(t, w.head.Render(p, synth.RenderOptions{}), w.head.Landmarks(p), tags[i])
	}
	return out
}

// printed moves a flat print of the frontal render by each homography.
func printed(t testing.TB, tags []string, hs ...[3][3]float64) []Sample {
	t.Helper()
	w := world(t)
	out := make([]Sample, len(hs))
	for i, H := range hs {
		layer := synth.WarpHomography(w.frontal, H)
		img := image.NewRGBA(layer.Bounds())
		draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{90, 100, 110, 255}), image.Point{}, draw.Src)
		draw.Draw(img, img.Bounds(), layer, image.Point{}, draw.Over)
		var lm [68]geom.Point
		for k, p := range w.lm0 {
			lm[k] = applyH(H, p)
		}
		out[i] = sampleFrom(t, img, lm, tags[i])
	}
	return out
}

func applyH(H [3][3]float64, p geom.Point) geom.Point {
	z := H[2][0]*p.X + H[2][1]*p.Y + H[2][2]
	return geom.Point{X: (H[0][0]*p.X + H[0][1]*p.Y + H[0][2]) / z, Y: (H[1][0]*p.X + H[1][1]*p.Y + H[1][2]) / z}
}

func tilt(yaw, pitch float64, shift geom.Point) [3][3]float64 {
	return synth.PlaneRotation(synthW, synthH, yaw, pitch, 0, 1, shift)
}

// moved is a print moved in its plane: scaled, rotated (degrees), shifted.
func moved(scale, rollDeg float64, shift geom.Point) [3][3]float64 {
	return synth.PlaneRotation(synthW, synthH, 0, 0, rollDeg, scale, shift)
}

// blur1D is a box blur of radius r along (dx, dy), clamped at the border.
func blur1D(in []float64, w, h, r, dx, dy int) []float64 {
	out := make([]float64, len(in))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var s float64
			for k := -r; k <= r; k++ {
				xx, yy := min(w-1, max(0, x+k*dx)), min(h-1, max(0, y+k*dy))
				s += in[yy*w+xx]
			}
			out[y*w+x] = s / float64(2*r+1)
		}
	}
	return out
}
