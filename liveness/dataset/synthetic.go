package dataset

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"

	"golang.org/x/image/math/f64"

	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/synth"
)

// scene renders the bona fide and attack jobs of one portrait.
type scene struct {
	p    *Portrait
	head *synth.Head
}

func newScene(p *Portrait) (*scene, error) {
	h, err := synth.NewHead(p.Img, p.Landmarks)
	if err != nil {
		return nil, err
	}
	return &scene{p: p, head: h}, nil
}

// liveFrames renders a live user following the tags: a textured 3-D head
// turning, shifting a little, under slowly changing light. No pixel noise
// is added to any generated sample, bona fide or attack: on these smooth
// (often upscaled) photos, white or correlated noise of σ = 1 alone makes
// the PAD model score a live render as a recapture (0.99 → 0.44 and
// lower), which would measure the generator rather than the checker. JPEG
// coding is the common degradation; attacks add their own artefacts.
func (s *scene) liveFrames(rng *rand.Rand, tags []string) []*image.RGBA {
	plan := planHead(rng, tags)
	gain := uniform(rng, 0.85, 1.15)
	out := make([]*image.RGBA, len(plan.Poses))
	for k, pose := range plan.Poses {
		out[k] = s.head.Render(pose, synth.RenderOptions{
			Light: gain * uniform(rng, 0.97, 1.03),
			Shift: plan.Shifts[k],
		})
	}
	return out
}

// printFrames renders a print of the portrait held in a room and moved as
// the attack kind says (print, print-moved, print-tilted, print-bent).
func (s *scene) printFrames(rng *rand.Rand, kind string, tags []string) []*image.RGBA {
	sheet, _ := paper(s.p.Img, uniform(rng, 0.03, 0.08), rng)
	return s.heldFrames(rng, kind, tags, func(int) *image.RGBA { return sheet })
}

// heldFrames places a flat sheet (print) in a room and moves it per the
// plan for kind; sheetAt gives the sheet for sample k (the mask attack
// changes what shows through its holes).
func (s *scene) heldFrames(rng *rand.Rand, kind string, tags []string, sheetAt func(k int) *image.RGBA) []*image.RGBA {
	bg := room(rng)
	plan := planPrint(rng, kind, tags)
	// The print covers 55–110 % of the frame's width: held at arm's length
	// or so close that its edges leave the frame.
	cover := uniform(rng, 0.55, 1.1)
	curvature := uniform(rng, 0.6, 1.6)
	if rng.IntN(4) == 0 {
		curvature = -curvature
	}
	gain, gamma := uniform(rng, 0.85, 1.15), uniform(rng, 0.9, 1.1)
	out := make([]*image.RGBA, len(plan))
	for k, pp := range plan {
		sheet := sheetAt(k)
		sb := sheet.Bounds()
		flat := newFrame()
		transformOnto(flat, sheet, placeTransform(sb.Dx(), sb.Dy(), cover*FrameW/float64(sb.Dx()), 0, 0))
		var layer *image.RGBA
		if kind == AttackPrintBent {
			bent := synth.WarpCylinder(flat, curvature, pp.Yaw)
			layer = synth.WarpHomography(bent, synth.PlaneRotation(FrameW, FrameH, 0, pp.Pitch, pp.Roll, pp.Scale, pp.Shift))
		} else {
			layer = synth.WarpHomography(flat, synth.PlaneRotation(FrameW, FrameH, pp.Yaw, pp.Pitch, pp.Roll, pp.Scale, pp.Shift))
		}
		frame := flatten(bg, layer)
		out[k] = camera(frame, gain*uniform(rng, 0.97, 1.03), gamma, rng.IntN(2))
	}
	return out
}

// maskFrames renders a tilted print with cut-outs at the eyes and mouth
// through which a live face shows: the print turns with the challenge and
// the face behind it turns too. (What shows through the holes is taken
// from the rendered head at the holes' place in the photo and moves with
// the print: an approximation of a face held right behind it.)
func (s *scene) maskFrames(rng *rand.Rand, tags []string) []*image.RGBA {
	sheet, m := paper(s.p.Img, uniform(rng, 0.03, 0.08), rng)
	live := planHead(rng, tags)
	holes := holeMask(s.p.Landmarks, sheet.Bounds(), m)
	return s.heldFrames(rng, AttackMask, tags, func(k int) *image.RGBA {
		r := s.head.Render(live.Poses[k], synth.RenderOptions{})
		out := image.NewRGBA(sheet.Bounds())
		draw.Draw(out, out.Bounds(), sheet, image.Point{}, draw.Src)
		draw.DrawMask(out, out.Bounds().Add(image.Pt(m, m)), r, image.Point{}, holes, image.Pt(m, m), draw.Over)
		return out
	})
}

// holeMask is an alpha mask (sheet coordinates) of ellipses around the
// eyes and the mouth.
func holeMask(lm [68]geom.Point, b image.Rectangle, m int) *image.Alpha {
	mask := image.NewAlpha(b)
	ellipse := func(idx []int, growX, growY float64) {
		minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for _, i := range idx {
			minX, maxX = math.Min(minX, lm[i].X), math.Max(maxX, lm[i].X)
			minY, maxY = math.Min(minY, lm[i].Y), math.Max(maxY, lm[i].Y)
		}
		cx, cy := (minX+maxX)/2+float64(m), (minY+maxY)/2+float64(m)
		rx, ry := (maxX-minX)/2*growX, math.Max((maxY-minY)/2*growY, (maxX-minX)/4)
		for y := int(cy - ry - 2); y <= int(cy+ry+2); y++ {
			for x := int(cx - rx - 2); x <= int(cx+rx+2); x++ {
				d := math.Hypot((float64(x)-cx)/rx, (float64(y)-cy)/ry)
				if d < 1 && image.Pt(x, y).In(b) {
					mask.SetAlpha(x, y, color.Alpha{A: uint8(255 * math.Min(1, 4*(1-d)))})
				}
			}
		}
	}
	ellipse([]int{36, 37, 38, 39, 40, 41}, 1.5, 2.2)
	ellipse([]int{42, 43, 44, 45, 46, 47}, 1.5, 2.2)
	ellipse([]int{48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59}, 1.3, 1.6)
	return mask
}

// screenFrames shows content frames on a screen held in a room: the
// display's gamma and black level, its bezel, a moiré from the pixel grid,
// glare on the glass, the screen slightly turned and shaking in the hand.
func screenFrames(rng *rand.Rand, content []*image.RGBA) []*image.RGBA {
	bg := room(rng)
	sw := uniform(rng, 0.7, 1.05) * FrameW
	sh := sw * 3 / 4
	bezel := uniform(rng, 6, 28)
	bezelCol := color.RGBA{uint8(5 + rng.IntN(40)), uint8(5 + rng.IntN(40)), uint8(5 + rng.IntN(40)), 255}
	gam, black := uniform(rng, 0.7, 1.4), uniform(rng, 4, 28)
	yaw, pitch, roll := uniform(rng, -10, 10), uniform(rng, -8, 8), uniform(rng, -4, 4)
	shift := geom.Point{X: uniform(rng, -30, 30), Y: uniform(rng, -20, 20)}
	period, angle, amp := uniform(rng, 2.5, 6), uniform(rng, 0, math.Pi), uniform(rng, 0.04, 0.12)
	hasGlare := rng.IntN(10) < 7
	gx, gy, gr, gp := uniform(rng, 100, 540), uniform(rng, 80, 400), uniform(rng, 60, 200), uniform(rng, 30, 90)
	gain := uniform(rng, 0.85, 1.15)
	out := make([]*image.RGBA, len(content))
	for k, c := range content {
		layer := newFrame()
		x0, y0 := (FrameW-sw)/2-bezel, (FrameH-sh)/2-bezel
		draw.Draw(layer, image.Rect(int(x0), int(y0), int(x0+sw+2*bezel), int(y0+sh+2*bezel)), image.NewUniform(bezelCol), image.Point{}, draw.Src)
		shown := toRGBA(c)
		gammaRGBA(shown, gam, black)
		cb := shown.Bounds()
		s := math.Min(sw/float64(cb.Dx()), sh/float64(cb.Dy()))
		screen := image.NewRGBA(image.Rect(0, 0, int(sw), int(sh)))
		draw.Draw(screen, screen.Bounds(), image.NewUniform(color.RGBA{A: 255}), image.Point{}, draw.Src)
		transformOnto(screen, shown, placeTransformIn(cb.Dx(), cb.Dy(), int(sw), int(sh), s))
		draw.Draw(layer, image.Rect(int(x0+bezel), int(y0+bezel), int(x0+bezel+sw), int(y0+bezel+sh)), screen, image.Point{}, draw.Src)
		H := synth.PlaneRotation(FrameW, FrameH, yaw+uniform(rng, -1.5, 1.5), pitch+uniform(rng, -1.5, 1.5), roll+uniform(rng, -1, 1), 1,
			geom.Point{X: shift.X + uniform(rng, -4, 4), Y: shift.Y + uniform(rng, -4, 4)})
		warped := synth.WarpHomography(layer, H)
		frame := flatten(bg, warped)
		moire(frame, warped, period, angle, amp)
		if hasGlare {
			glare(frame, warped, gx, gy, gr, gp)
		}
		out[k] = camera(frame, gain, 1, 1)
	}
	return out
}

// placeTransformIn centres a sw×sh source scaled by s in a dw×dh target.
func placeTransformIn(sw, sh, dw, dh int, s float64) f64.Aff3 {
	return f64.Aff3{s, 0, (float64(dw) - s*float64(sw)) / 2, 0, s, (float64(dh) - s*float64(sh)) / 2}
}
