package synth

import (
	"cmp"
	"image"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/bwsagent/bwsagent/face/geom"
)

// RenderOptions vary a rendered view. The zero value renders the plain
// view.
type RenderOptions struct {
	// Light is a brightness gain applied to the whole frame; 0 means 1.
	Light float64
	// Noise is the σ of additive Gaussian pixel noise, in 0..255 units.
	Noise float64
	// Seed makes the noise reproducible: equal options give equal images.
	Seed int64
	// Shift translates the head (not the background) in pixels. The
	// rendered landmarks are Landmarks(p) + Shift.
	Shift geom.Point
}

// Render draws the head at pose p (the geom.Pose convention: Yaw > 0
// turns the nose toward the image's right, Pitch > 0 up, Roll > 0
// counter-clockwise). Head vertices rotate about the rotation centre and
// are projected with the head's camera; the background ring stays put so
// the room behind the person does not move, and the neck follows the
// head only partially. Triangles are painted back to front by mean depth,
// back-facing head triangles are skipped, and each triangle is textured
// from the photo by an affine map with bilinear sampling. The output has
// the photo's size; Render(geom.Pose{}, RenderOptions{}) reproduces the
// photo.
func (h *Head) Render(p geom.Pose, opt RenderOptions) *image.RGBA {
	n := len(h.verts)
	screen := make([]geom.Point, n)
	depth := make([]float64, n)
	rots := map[float64][3][3]float64{}
	for i, v := range h.verts {
		if v.weight == 0 {
			screen[i] = v.tex
			depth[i] = math.Inf(-1)
			continue
		}
		R, ok := rots[v.weight]
		if !ok {
			R = geom.RotationFromPose(geom.Pose{Yaw: v.weight * p.Yaw, Pitch: v.weight * p.Pitch, Roll: v.weight * p.Roll})
			rots[v.weight] = R
		}
		q := geom.Rotate(R, v.pos).Add(h.t)
		sp := h.cam.ProjectPoint(q)
		sp.X += v.weight * opt.Shift.X
		sp.Y += v.weight * opt.Shift.Y
		screen[i] = sp
		depth[i] = q.Z
	}

	out := h.tex.copyRGBA()
	tri := func(t [3]int, bg bool) (s, uv [3]geom.Point) {
		for k := 0; k < 3; k++ {
			s[k] = screen[t[k]]
			uv[k] = h.verts[t[k]].headTex
			if bg {
				uv[k] = h.verts[t[k]].tex
			}
		}
		return s, uv
	}
	// The room first, in mesh order; it may fold where the head moved over
	// it, and the head covers those places anyway.
	type keyed struct {
		depth float64
		idx   int
	}
	var order []keyed
	for i, t := range h.tris {
		if h.bg[i] {
			s, uv := tri(t, true)
			drawTriangle(out, &h.tex, s, uv)
			continue
		}
		s, _ := tri(t, false)
		area := (s[1].X-s[0].X)*(s[2].Y-s[0].Y) - (s[1].Y-s[0].Y)*(s[2].X-s[0].X)
		if !(area > 0) { // back-facing, degenerate or behind the camera
			continue
		}
		order = append(order, keyed{(depth[t[0]] + depth[t[1]] + depth[t[2]]) / 3, i})
	}
	// Painter's algorithm: farthest (most negative Z) first; ties keep mesh
	// order so the output is deterministic.
	slices.SortStableFunc(order, func(a, b keyed) int { return cmp.Compare(a.depth, b.depth) })
	for _, k := range order {
		s, uv := tri(h.tris[k.idx], false)
		drawTriangle(out, &h.tex, s, uv)
	}

	postProcess(out, opt)
	return out
}

// postProcess applies the brightness gain and the seeded noise.
func postProcess(img *image.RGBA, opt RenderOptions) {
	gain := opt.Light
	if gain == 0 {
		gain = 1
	}
	noise := opt.Noise > 0 && !math.IsInf(opt.Noise, 0)
	if gain == 1 && !noise {
		return
	}
	rng := rand.New(rand.NewPCG(uint64(opt.Seed), 0x9e3779b97f4a7c15))
	pix := img.Pix
	for i := 0; i+3 < len(pix); i += 4 {
		for c := 0; c < 3; c++ {
			v := float64(pix[i+c]) * gain
			if noise {
				v += rng.NormFloat64() * opt.Noise
			}
			pix[i+c] = clamp255(v)
		}
	}
}
