// Package synth renders synthetic views for evaluation: a photo-textured
// 2.5-D head that turns by a known geom.Pose (bona-fide views with ground
// truth angles and landmarks), and planar presentation attacks (a flat or
// bent print moved in front of the camera).
//
// It is pure Go (no cgo, no OpenCV) so evaluations run anywhere. Pixel
// (i, j) is centred on (i, j), as in package geom; landmark coordinates
// are relative to the image's Bounds().Min and every output image has its
// origin at (0, 0) and the input's size.
package synth

import (
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/bwsagent/bwsagent/face/geom"
)

// ErrBadInput reports an image or landmark set a Head cannot be built from.
var ErrBadInput = errors.New("synth: bad input")

// Head is a photo-textured mesh of a head, built once from a frontal-ish
// photo and its 68 landmarks, that can be rendered at any pose. It is
// immutable after NewHead and safe for concurrent use.
type Head struct {
	tex   texture
	cam   geom.Camera
	t     geom.Vec3     // rotation centre in the camera frame
	model [68]geom.Vec3 // this person's landmarks, head frame (mm)
	verts []vertex      // the 68 landmarks first, then extra vertices
	tris  [][3]int      // counter-clockwise in the layout
	bg    []bool        // per triangle: touches the static background
}

// vertex is one mesh vertex. pos is in the head frame (mm, origin at the
// rotation centre); tex is its position in the photo, which is also where
// it projects at Pose{} (so the frontal render reproduces the photo), and
// the texture coordinate background triangles use. headTex is the texture
// coordinate of head triangles: the same except on the wrap-around ring,
// which has no photo of its own and borrows a band of hair inside the
// silhouette. weight is how much of the head's motion it follows: 1 for
// the head, 0 for the static background, in between for the neck.
type vertex struct {
	pos     geom.Vec3
	tex     geom.Point
	headTex geom.Point
	weight  float64
}

// Mesh construction constants, in mm in the head frame (see
// geom.Canonical68: X right, Y up, Z toward the camera, origin at the
// rotation centre, eye line at Y ≈ 20).
const (
	// The head outline is an ellipse centred 10 mm above the eye line,
	// 16 mm wider than the jaw on each side (ears, hair), reaching 130 mm
	// above the eyes (top of the skull) and, below, 180 mm under the eyes
	// (the neck, ~70 mm under the chin).
	outlineAbove = 10.0
	outlineWiden = 16.0
	outlineUpper = 120.0
	outlineLower = 190.0

	// minOutlineGap keeps the outline at least this far beyond the face
	// contour.
	minOutlineGap = 15.0

	// silhouetteZ is the depth of the head's frontal silhouette (about the
	// ears); neckZ that of the front of the neck.
	silhouetteZ = -5.0
	neckZ       = 15.0

	// The wrap-around ring lies about 30° around the skull behind the
	// silhouette: behindDepth behind it and behindInset closer to the
	// axis, so a turned head keeps roughly its width instead of growing
	// wings.
	behindDepth = 45.0
	behindInset = 0.87
	wrapTexBand = 45.0 // mm of photo inside the silhouette the strip borrows

	// borderSpacing is the static background vertex spacing, as a
	// fraction of min(width, height).
	borderSpacing = 0.16

	// The static background starts outside the head outline enlarged by
	// these factors (sides, above, below): room for the head to move.
	staticSide  = 1.45
	staticUpper = 1.3
	staticLower = 1.2

	// minVertexGapPx drops extra vertices closer than this to another.
	minVertexGapPx = 2.0

	// minNoseDistance (mm) rejects landmark sets so large that the fitted
	// head would touch the camera.
	minNoseDistance = 50.0
)

// ringFractions place the rings between the face contour (0) and the head
// outline (1).
func ringFractions() []float64 { return []float64{0.3, 0.65, 1} }

// NewHead builds a head from a frontal-ish photo and its 68 iBUG/dlib
// landmarks (pixels, relative to img.Bounds().Min).
//
// The canonical face (geom.Canonical68) is scaled and translated onto the
// landmarks to fix the head's distance and position for the default
// camera (geom.DefaultCamera), then each landmark is back-projected at its
// canonical depth so the mesh passes exactly through this person's
// landmarks. Extra vertices cover the rest of the head: cheeks and chin
// inside the face, rings from the face contour out to an elliptical head
// outline (forehead, hair, temples and ears curving back to the
// silhouette; the neck under the jaw, which follows the head only
// partially), a ring that wraps behind the silhouette so a turning head
// shows its side instead of the background, and static vertices on the
// image border and wherever the room is far enough from the head, so the
// background stays put and only the room right around the head stretches
// as it moves. The mesh is triangulated once with geom.Delaunay on the
// frontal 2-D positions (the wrap-around ring, which is hidden behind the
// silhouette in the photo, is laid out just outside the outline for that
// purpose).
//
// The photo's own head pose is taken as Pose{}: the angles a Head renders
// are relative to it, so the photo should be frontal for them to be
// absolute.
func NewHead(img image.Image, landmarks [68]geom.Point) (*Head, error) {
	if img == nil {
		return nil, fmt.Errorf("new head: nil image: %w", ErrBadInput)
	}
	b := img.Bounds()
	if b.Dx() < 16 || b.Dy() < 16 {
		return nil, fmt.Errorf("new head: image %v too small: %w", b, ErrBadInput)
	}
	for i, p := range landmarks {
		if !finitePt(p) {
			return nil, fmt.Errorf("new head: landmark %d is %v: %w", i, p, ErrBadInput)
		}
	}
	h := &Head{tex: newTexture(img), cam: geom.DefaultCamera(b.Dx(), b.Dy())}
	if err := h.fitLandmarks(&landmarks); err != nil {
		return nil, fmt.Errorf("new head: %w", err)
	}
	layout := h.buildVertices()
	h.tris = geom.Delaunay(layout)
	if len(h.tris) == 0 {
		return nil, fmt.Errorf("new head: triangulation failed: %w", ErrBadInput)
	}
	h.bg = make([]bool, len(h.tris))
	for i, t := range h.tris {
		h.bg[i] = h.verts[t[0]].weight == 0 || h.verts[t[1]].weight == 0 || h.verts[t[2]].weight == 0
	}
	return h, nil
}

// fitLandmarks fixes the camera-frame translation of the rotation centre
// from a least-squares scale+translation fit of the canonical face, then
// back-projects the landmarks at their canonical depths.
func (h *Head) fitLandmarks(lm *[68]geom.Point) error {
	canon := geom.Canonical68()
	var pm, mm geom.Point
	var mz float64
	for i := range canon {
		pm.X += lm[i].X / 68
		pm.Y += lm[i].Y / 68
		mm.X += canon[i].X / 68
		mm.Y += -canon[i].Y / 68 // image Y grows downward
		mz += canon[i].Z / 68
	}
	var num, den float64
	for i := range canon {
		dx, dy := canon[i].X-mm.X, -canon[i].Y-mm.Y
		num += (lm[i].X-pm.X)*dx + (lm[i].Y-pm.Y)*dy
		den += dx*dx + dy*dy
	}
	s := num / den // pixels per mm at the face's depth
	if !(s > 0.05) || math.IsInf(s, 0) {
		return fmt.Errorf("landmarks do not look like a frontal face (scale %.3g px/mm): %w", s, ErrBadInput)
	}
	f := h.cam.Focal
	depth := f/s + mz // of the rotation centre
	if depth-geom.RotationCentreBehindNoseTip < minNoseDistance {
		return fmt.Errorf("face too large for the default camera (%.3g px/mm): %w", s, ErrBadInput)
	}
	h.t = geom.Vec3{
		X: (pm.X-h.cam.Cx)/s - mm.X,
		Y: (h.cam.Cy-pm.Y)/s + mm.Y,
		Z: -depth,
	}
	for i := range canon {
		d := depth - canon[i].Z
		cam := geom.Vec3{X: (lm[i].X - h.cam.Cx) * d / f, Y: (h.cam.Cy - lm[i].Y) * d / f, Z: -d}
		h.model[i] = cam.Sub(h.t)
	}
	return nil
}

// frontal projects a head-frame point at Pose{}.
func (h *Head) frontal(p geom.Vec3) geom.Point { return h.cam.ProjectPoint(p.Add(h.t)) }

// buildVertices fills h.verts and returns the 2-D layout to triangulate.
func (h *Head) buildVertices() []geom.Point {
	L := &h.model
	var layout []geom.Point
	addTex := func(pos geom.Vec3, weight float64, lay, headTex geom.Point, force bool) {
		tex := h.frontal(pos)
		if weight == 0 {
			tex, headTex = lay, lay
		}
		if !force {
			if !finitePt(tex) || !finitePt(lay) ||
				lay.X < 1 || lay.Y < 1 || lay.X > float64(h.tex.w-2) || lay.Y > float64(h.tex.h-2) {
				return
			}
			for _, q := range layout {
				if math.Hypot(q.X-lay.X, q.Y-lay.Y) < minVertexGapPx {
					return
				}
			}
		}
		h.verts = append(h.verts, vertex{pos: pos, tex: tex, headTex: headTex, weight: weight})
		layout = append(layout, lay)
	}
	add := func(pos geom.Vec3, weight float64, lay geom.Point, force bool) {
		addTex(pos, weight, lay, h.frontal(pos), force)
	}
	for i := range L {
		add(L[i], 1, h.frontal(L[i]), true)
	}

	// Inside the face: cheeks and chin, slightly bulged over the flat
	// interpolation of their landmarks.
	type combo struct {
		idx [3]int
		wt  [3]float64
		dz  float64
	}
	mirror := func(i int) int {
		switch {
		case i <= 16:
			return 16 - i
		case i == 31:
			return 35
		case i == 41:
			return 46
		case i == 48:
			return 54
		}
		return i
	}
	for _, c := range []combo{
		{[3]int{1, 41, 31}, [3]float64{0.4, 0.35, 0.25}, 6},
		{[3]int{3, 31, 48}, [3]float64{0.4, 0.3, 0.3}, 6},
		{[3]int{5, 48, 7}, [3]float64{0.35, 0.45, 0.2}, 3},
	} {
		for side := 0; side < 2; side++ {
			var p geom.Vec3
			for k, i := range c.idx {
				if side == 1 {
					i = mirror(i)
				}
				p = p.Add(L[i].Scale(c.wt[k]))
			}
			p.Z += c.dz
			add(p, 1, h.frontal(p), false)
		}
	}
	chin := L[8].Scale(0.45).Add(L[57].Scale(0.55))
	chin.Z += 3
	add(chin, 1, h.frontal(chin), false)

	// The face contour: jaw, right temple, brows, glabella, left temple.
	temple := func(j, b int, out float64) geom.Vec3 {
		p := L[j].Add(L[b]).Scale(0.5)
		p.X += out
		p.Z = (L[j].Z+L[b].Z)/2 - 5
		return p
	}
	glabella := L[21].Add(L[22]).Scale(0.5)
	glabella.Y += 3
	glabella.Z = math.Max(L[21].Z, L[22].Z) + 2
	rightTemple, leftTemple := temple(16, 26, 6), temple(0, 17, -6)
	for _, q := range []geom.Vec3{rightTemple, glabella, leftTemple} {
		add(q, 1, h.frontal(q), false)
	}
	var contour []geom.Vec3
	for i := 0; i <= 16; i++ {
		contour = append(contour, L[i])
	}
	contour = append(contour, rightTemple)
	for i := 26; i >= 22; i-- {
		contour = append(contour, L[i])
	}
	contour = append(contour, glabella)
	for i := 21; i >= 17; i-- {
		contour = append(contour, L[i])
	}
	contour = append(contour, leftTemple)

	// Rings from the contour out to the head outline and beyond.
	var eyeY float64
	for i := geom.RightEyeFirst; i < geom.RightEyeFirst+12; i++ {
		eyeY += L[i].Y / 12
	}
	ox, oy := (L[27].X+L[33].X)/2, (L[27].Y+L[33].Y)/2
	ecx, ecy := L[27].X, eyeY+outlineAbove
	ea := (L[16].X-L[0].X)/2 + outlineWiden
	inOutline := func(x, y float64) bool {
		bb := outlineUpper
		if y < ecy {
			bb = outlineLower
		}
		dx, dy := (x-ecx)/ea, (y-ecy)/bb
		return dx*dx+dy*dy < 1
	}
	for _, q := range contour {
		dx, dy := q.X-ox, q.Y-oy
		rq := math.Hypot(dx, dy)
		if rq < 1e-6 {
			continue
		}
		dx, dy = dx/rq, dy/rq
		// Outline distance along the ray by bisection (the outline is convex
		// and contains the ray's origin).
		lo, hi := rq, rq+600
		if !inOutline(ox+dx*lo, oy+dy*lo) {
			hi = lo
		}
		for it := 0; it < 40 && hi-lo > 0.01; it++ {
			mid := (lo + hi) / 2
			if inOutline(ox+dx*mid, oy+dy*mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		rh := math.Max(hi, rq+minOutlineGap)
		neck := smoothstep(0.1, 0.5, -dy) // 1 for rays below the ears: neck and room
		for _, s := range ringFractions() {
			r := rq + s*(rh-rq)
			zShell := silhouetteZ + (q.Z-silhouetteZ)*math.Sqrt(1-s*s)
			zNeck := q.Z + (neckZ-q.Z)*math.Min(1, 2.5*s)
			p := geom.Vec3{X: ox + dx*r, Y: oy + dy*r, Z: lerp(zShell, zNeck, neck)}
			add(p, lerp(1, 0.7-0.5*s, neck), h.frontal(p), false)
		}
		if neck < 0.5 {
			// Wrap-around ring: in 3-D just behind the silhouette, in the
			// layout just outside the outline.
			p := geom.Vec3{X: ox + dx*rh*behindInset, Y: oy + dy*rh*behindInset, Z: silhouetteZ - behindDepth}
			rl := rh + 0.2*(rh-rq) + 10
			lay := h.frontal(geom.Vec3{X: ox + dx*rl, Y: oy + dy*rl, Z: silhouetteZ})
			// Borrow a band as wide as the wrap-around strip is in 3-D, mirrored
			// about the silhouette, so the strip is not one smeared texel.
			rt := rh - math.Min(wrapTexBand, 0.85*(rh-rq))
			tex := h.frontal(geom.Vec3{X: ox + dx*rt, Y: oy + dy*rt, Z: silhouetteZ})
			addTex(p, 1, lay, tex, false)
		}
	}

	// Static background: a grid outside an enlarged head outline, so only
	// the room right around the head is stretched as the head moves.
	w, ht := float64(h.tex.w), float64(h.tex.h)
	step := borderSpacing * math.Min(w, ht)
	bgDepth := -(h.t.Z + silhouetteZ)
	for y := step / 2; y < ht-step/4; y += step {
		for x := step / 2; x < w-step/4; x += step {
			// Back-project the pixel onto the plane of the silhouette.
			hx := (x-h.cam.Cx)*bgDepth/h.cam.Focal - h.t.X
			hy := (h.cam.Cy-y)*bgDepth/h.cam.Focal - h.t.Y
			bb := outlineUpper * staticUpper
			if hy < ecy {
				bb = outlineLower * staticLower
			}
			ex, ey := (hx-ecx)/(ea*staticSide), (hy-ecy)/bb
			if ex*ex+ey*ey > 1 {
				add(geom.Vec3{}, 0, geom.Point{X: x, Y: y}, false)
			}
		}
	}

	// Static background ring just outside the image border.
	nx := max(2, int(math.Ceil((w+1)/step)))
	ny := max(2, int(math.Ceil((ht+1)/step)))
	for i := 0; i <= nx; i++ {
		x := -1 + (w+1)*float64(i)/float64(nx)
		add(geom.Vec3{}, 0, geom.Point{X: x, Y: -1}, true)
		add(geom.Vec3{}, 0, geom.Point{X: x, Y: ht}, true)
	}
	for j := 1; j < ny; j++ {
		y := -1 + (ht+1)*float64(j)/float64(ny)
		add(geom.Vec3{}, 0, geom.Point{X: -1, Y: y}, true)
		add(geom.Vec3{}, 0, geom.Point{X: w, Y: y}, true)
	}
	return layout
}

func lerp(a, b, t float64) float64 { return a + (b-a)*t }

func smoothstep(e0, e1, x float64) float64 {
	t := math.Max(0, math.Min(1, (x-e0)/(e1-e0)))
	return t * t * (3 - 2*t)
}

// Camera is the camera the head is rendered with (geom.DefaultCamera of
// the photo's size).
func (h *Head) Camera() geom.Camera { return h.cam }

// Translation is the head's rotation centre in the camera frame (mm).
func (h *Head) Translation() geom.Vec3 { return h.t }

// Model is this person's 68 landmarks in the head frame (mm): the
// canonical depths with x/y fitted to the photo.
func (h *Head) Model() [68]geom.Vec3 { return h.model }

// Landmarks returns the ground-truth 2-D landmarks of Render(p, opt) for
// an opt without Shift (add opt.Shift otherwise). It equals
// geom.Project(h.Model(), p, h.Translation(), h.Camera()).
func (h *Head) Landmarks(p geom.Pose) [68]geom.Point {
	var out [68]geom.Point
	copy(out[:], geom.Project(h.model[:], p, h.t, h.cam))
	return out
}
