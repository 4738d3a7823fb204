package liveness

import (
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
)

// A screen or a print held up to the camera has edges: the bezel or the
// paper's border, straight lines that enclose the face. A live person has
// none around the head that run on unbroken under the chin: the neck and
// the shoulders continue to the image border, and a door or a window frame
// behind the person is cut by the body. frameSides finds straight edges on
// each side of the face that span it (above and below: across its width;
// left and right: along its height, and whether they run on down past the
// shoulders to the image's border or to the frame's lower corner). Decide
// counts framed samples (see framed).

// Sides of the face where frameSides found an edge; sideLeftDown and
// sideRightDown mark a side edge that also runs on unbroken from the face
// to the image's border or to a lower corner (see runsDown).
const (
	sideTop uint8 = 1 << iota
	sideBottom
	sideLeft
	sideRight
	sideLeftDown
	sideRightDown
)

// sidesAll is every bit frameSides may set.
const sidesAll = sideTop | sideBottom | sideLeft | sideRight | sideLeftDown | sideRightDown

// Geometry of the search; distances in face-box widths (fw).
const (
	frameWidth   = 320  // the image is analysed at this width (or height, if taller)
	frameMaxTilt = 25.0 // degrees from horizontal/vertical a side may lean
	frameBelow   = 0.02 // a bottom edge lies below the face box (a screen held close: its bezel right under the chin)
	frameAbove   = 0.15 // a top edge this far above the box (the hair)
	frameBeside  = 0.15 // a side edge this far left or right of the box
	frameMaxFar  = 4.0  // edges farther from the face box belong to the room
	frameSpan    = 0.6  // an edge spans the face centre ± this
	frameCover   = 0.75 // fraction of the span with edge pixels on the line
	// A side edge "runs on down" when it covers this much of the way down
	// from the face's centre with no gap longer than frameDownGap face
	// widths: a person's shoulders in front of a door frame cut its jambs
	// (the drawn door in TestFrameSides: 79 %, a gap of 0.6 face widths).
	frameCoverDown = 0.8
	frameDownGap   = 0.2
	// Running on to the image's border, a side edge ends at most this many
	// pixels short of it (at frameWidth): the last rows have no gradient.
	// A face so large that the shoulders are at the border cuts a door
	// jamb behind it more (24 px in the real clip lp_d9).
	frameBorderGap = 6
	// A side edge may instead end in a corner at least this far below the
	// face's centre, whose lower edge runs this far in towards the face.
	frameCornerBelow = 0.6
	frameCornerLen   = 0.3
	frameCornerSkew  = 20.0 // degrees
)

// frameMinCos is cos 20°, the largest angle between an edge pixel's
// gradient and the line's normal.
const frameMinCos = 0.9396926207859084

// edgeMap is a binary edge image (Canny's output) with the colour image
// it came from (3 bytes a pixel, BGR), both row-major. Colour, because a
// screen's or print's border against a room is often a change of hue at
// one brightness (a blue backdrop on screen above a green wall).
type edgeMap struct {
	w, h int
	pix  []byte
	bgr  []byte
}

// along reports whether (x, y) is an edge pixel whose gradient is within
// 20° of the normal (nx, ny): texture (hair, clothes, foliage)
// has edge pixels on any line but in every direction. The gradient is the
// strongest channel's, as Canny takes it on a colour image.
func (m *edgeMap) along(x, y int, nx, ny float64) bool {
	if x < 1 || y < 1 || x >= m.w-1 || y >= m.h-1 || m.pix[y*m.w+x] == 0 {
		return false
	}
	// The Sobel gradient, here only: few pixels lie on the lines checked.
	var gx, gy, best float64
	for c := range 3 {
		p := func(dx, dy int) float64 { return float64(m.bgr[3*((y+dy)*m.w+x+dx)+c]) }
		cx := p(1, -1) + 2*p(1, 0) + p(1, 1) - p(-1, -1) - 2*p(-1, 0) - p(-1, 1)
		cy := p(-1, 1) + 2*p(0, 1) + p(1, 1) - p(-1, -1) - 2*p(0, -1) - p(1, -1)
		if n := math.Abs(cx) + math.Abs(cy); n > best {
			gx, gy, best = cx, cy, n
		}
	}
	return math.Abs(gx*nx+gy*ny) >= frameMinCos*math.Hypot(gx, gy)
}

// frameSides returns the sides (sideTop|…) of the face at which a straight
// edge spans it in img (8-bit BGR; any other image has none).
func frameSides(img gocv.Mat, f *face.Face) uint8 {
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 || f.Box.W <= 0 {
		return 0
	}
	s := frameWidth / float64(max(img.Cols(), img.Rows()))
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Pt(max(int(float64(img.Cols())*s+0.5), 1), max(int(float64(img.Rows())*s+0.5), 1)), 0, 0, gocv.InterpolationArea)
	edges := gocv.NewMat()
	defer edges.Close()
	gocv.Canny(small, &edges, 40, 120)
	pix, err := edges.DataPtrUint8()
	if err != nil || len(pix) != edges.Rows()*edges.Cols() {
		return 0
	}
	bgr, err := small.DataPtrUint8()
	if err != nil || len(bgr) != 3*len(pix) {
		return 0
	}
	em := &edgeMap{w: edges.Cols(), h: edges.Rows(), pix: pix, bgr: bgr}
	fw := f.Box.W * s
	lines := gocv.NewMat()
	defer lines.Close()
	// A candidate needs votes for most of the shortest span it could cover.
	gocv.HoughLines(edges, &lines, 1, math.Pi/180, max(int(frameCover*frameSpan*fw), 15))
	var ls [][2]float64
	for i := range min(lines.Rows(), 2000) {
		v := lines.GetVecfAt(i, 0)
		if len(v) == 2 {
			ls = append(ls, [2]float64{float64(v[0]), float64(v[1])})
		}
	}
	box := [4]float64{f.Box.X * s, f.Box.Y * s, (f.Box.X + f.Box.W) * s, (f.Box.Y + f.Box.H) * s}
	return sidesAround(em, ls, box)
}

// sidesAround checks lines (ρ, θ: x·cos θ + y·sin θ = ρ) around the face
// box (x0, y0, x1, y1) against the edge map.
func sidesAround(em *edgeMap, lines [][2]float64, box [4]float64) uint8 {
	fw := box[2] - box[0]
	cx, cy := (box[0]+box[2])/2, (box[1]+box[3])/2
	maxTilt := frameMaxTilt * math.Pi / 180
	var sides uint8
	for _, l := range lines {
		rho, theta := l[0], l[1]
		sin, cos := math.Sin(theta), math.Cos(theta)
		// θ near 90°: a horizontal line; near 0 or 180°: vertical.
		switch {
		case math.Abs(theta-math.Pi/2) <= maxTilt:
			y := (rho - cx*cos) / sin // where the line crosses the face's centre column
			side := uint8(0)
			switch {
			case y > box[3]+frameBelow*fw && y < box[3]+frameMaxFar*fw:
				side = sideBottom
			case y < box[1]-frameAbove*fw && y > box[1]-frameMaxFar*fw:
				side = sideTop
			}
			if side != 0 && sides&side == 0 && coverage(em, cx-frameSpan*fw, cx+frameSpan*fw, func(u float64) float64 { return (rho - u*cos) / sin }, cos, sin, true) >= frameCover {
				sides |= side
			}
		case theta <= maxTilt || theta >= math.Pi-maxTilt:
			x := (rho - cy*sin) / cos
			side := uint8(0)
			switch {
			case x < box[0]-frameBeside*fw && x > box[0]-frameMaxFar*fw:
				side = sideLeft
			case x > box[2]+frameBeside*fw && x < box[2]+frameMaxFar*fw:
				side = sideRight
			}
			along := func(u float64) float64 { return (rho - u*sin) / cos }
			if side != 0 && sides&side == 0 && coverage(em, cy-frameSpan*fw, cy+frameSpan*fw, along, cos, sin, false) >= frameCover {
				sides |= side
			}
			if side != 0 && sides&side != 0 && sides&(side<<2) == 0 {
				if down, under := runsDown(em, cy, cx, fw, along, cos, sin); down {
					sides |= side << 2 // sideLeftDown, sideRightDown
					if under {
						sides |= sideBottom // the corner's lower edge passes below the face
					}
				}
			}
		}
	}
	return sides
}

// runsDown reports whether the side edge x = along(y) (normal (nx, ny))
// runs on unbroken from the face's centre row cy to the image's border, or
// to a corner below the face where the frame's lower edge turns in towards
// the face (cx): a screen whose lower edge is in view beside the face only.
// A door jamb is cut by the shoulders instead, and their edge runs on past
// the jamb, outwards as well as in. under reports that the corner's lower
// edge runs on under the face (see corner).
func runsDown(em *edgeMap, cy, cx, fw float64, along func(u float64) float64, nx, ny float64) (down, under bool) {
	first := int(math.Ceil(cy))
	if first < 0 || first >= em.h || math.IsNaN(cy) {
		return false, false
	}
	// A tilted side may leave the image through its left or right border
	// before the lower one: the rows below are not looked at.
	hits := make([]bool, 0, em.h-first)
	for y := first; y < em.h; y++ {
		if x := math.Round(along(float64(y))); !(x >= 1 && x < float64(em.w-1)) { // NaN fails too
			break
		}
		hits = append(hits, lineHit(em, float64(y), along, nx, ny, false))
	}
	if len(hits) == 0 || !(float64(len(hits)) >= frameCornerBelow*fw) {
		return false, false // leaves the image beside the face
	}
	// ok[i]: the rows from cy down to row i are covered: frameCoverDown of
	// them, with no gap longer than frameDownGap face widths (where the
	// room behind happens to match the bezel's colour). A shoulder cuts a
	// door jamb from the shoulder down: one long gap.
	ok := make([]bool, len(hits))
	n, gap, worst := 0, 0, 0
	for i, h := range hits {
		if h {
			n, gap = n+1, 0
		} else {
			gap++
			worst = max(worst, gap)
		}
		ok[i] = float64(n) >= frameCoverDown*float64(i+1) && float64(worst) <= frameDownGap*fw
	}
	if ok[len(ok)-1] && gap <= frameBorderGap {
		return true, false // on to the image's border, not ending short of it
	}
	// A corner where a covered run from cy ends, at least frameCornerBelow
	// face widths down: below the chin. Stray edge pixels may lie below
	// the corner, so every run's end is tried.
	for i := len(hits) - 1; i >= 0 && float64(i) >= frameCornerBelow*fw; i-- {
		end := hits[i] && (i == len(hits)-1 || !hits[i+1])
		if !end || !ok[i] {
			continue
		}
		if found, under := corner(em, along(float64(first+i)), float64(first+i), cx, fw, nx, ny); found {
			return true, under
		}
	}
	return false, false
}

// corner reports whether a straight edge about perpendicular to a side
// edge (normal (nx, ny); within frameCornerSkew, as a screen held at an
// angle is not a rectangle in the image) leaves its end (x, y) towards the
// face's centre column cx for frameCornerLen face widths, and none leaves
// it outwards. under reports that this lower edge runs on under the face
// (see below), which a shoulder, rising to the neck and ending there,
// never does. Where the image's border leaves too little room to see
// outwards, a corner counts only if under; one whose lower edge descends
// out of the image counts whatever lies outwards.
func corner(em *edgeMap, x, y, cx, fw, nx, ny float64) (found, under bool) {
	l := frameCornerLen * fw
	if !(l >= 1) {
		return false, false
	}
	inImage := func(px, py float64) bool {
		return px >= 1 && py >= 1 && px < float64(em.w-1) && py < float64(em.h-1)
	}
	// hitAt: an edge pixel oriented along (dx, dy) within two pixels
	// across (px, py); the run's end is only known to a pixel or two.
	hitAt := func(px, py, dx, dy float64) bool {
		for d := -2; d <= 2; d++ {
			if em.along(int(math.Round(px-float64(d)*dy)), int(math.Round(py+float64(d)*dx)), -dy, dx) {
				return true
			}
		}
		return false
	}
	steps := int(math.Min(l, float64(em.w+em.h))) // a longer run leaves the image
	// The fraction of steps from (x, y) along (dx, dy) with an edge pixel
	// oriented along it, and the fraction inside the image.
	run := func(dx, dy float64) (hit, inside float64) {
		for t := 1; t <= steps; t++ {
			px, py := x+float64(t)*dx, y+float64(t)*dy
			if inImage(px, py) {
				inside++
			}
			if hitAt(px, py, dx, dy) {
				hit++
			}
		}
		return hit / float64(steps), inside / float64(steps)
	}
	// The directions within the skew about the side's normal, one way.
	directions := func(sign float64, fn func(dx, dy float64)) {
		for a := -frameCornerSkew; a <= frameCornerSkew; a += 2 {
			sin, cos := math.Sincos(a * math.Pi / 180)
			fn(sign*(nx*cos-ny*sin), sign*(nx*sin+ny*cos))
		}
	}
	// The best run one way, and the least of it inside the image.
	best := func(sign float64) (hit, inside float64) {
		inside = 1
		directions(sign, func(dx, dy float64) {
			h, in := run(dx, dy)
			hit, inside = math.Max(hit, h), math.Min(inside, in)
		})
		return hit, inside
	}
	in := 1.0
	if (cx-x)*nx < 0 {
		in = -1
	}
	if inHit, _ := best(in); inHit < frameCover {
		return false, false
	}
	// The lower edge runs on under the face when it runs straight
	// across to frameSpan past the face's centre, or descends towards the
	// face out of the image through its lower border, as a screen's does
	// when held at an angle, after frameSpan face widths or beneath the
	// face box; in the image it covers frameCover of the way.
	across := int(math.Min(math.Abs(cx-x)+frameSpan*fw, float64(em.w+em.h)))
	descent := math.Min(math.Abs(cx-x)-fw/2, frameSpan*fw) // horizontally
	var acrossFace, descends bool
	directions(in, func(dx, dy float64) {
		hit, t := 0, 1
		for ; t <= across; t++ {
			px, py := x+float64(t)*dx, y+float64(t)*dy
			if !inImage(px, py) {
				break
			}
			if hitAt(px, py, dx, dy) {
				hit++
			}
		}
		n := t - 1
		if n < 1 || float64(hit) < frameCover*float64(n) {
			return
		}
		if n == across {
			acrossFace = true
		} else if y+float64(t)*dy >= float64(em.h-1) && float64(n)*math.Abs(dx) >= descent {
			descends = true
		}
	})
	if descends {
		return true, true
	}
	outHit, outInside := best(-in)
	if outInside >= 0.5 {
		clear := outHit < 1-frameCover
		return clear, clear && acrossFace
	}
	// Whether an edge runs on outwards cannot be seen at the image's
	// border, where a door jamb is cut by a shoulder whose edge leaves
	// the image. A frame filling the view has its side there, and its
	// lower edge runs on under the face.
	return acrossFace, acrossFace
}

// coverage is the fraction of whole pixel steps u in [lo, hi] at which the
// line (v = along(u); (u, v) is (x, y) when horizontal, else (y, x);
// normal (nx, ny)) has an edge pixel oriented with it within one pixel
// across it. Steps outside the image count as uncovered: an edge must be
// seen to count.
func coverage(em *edgeMap, lo, hi float64, along func(u float64) float64, nx, ny float64, horizontal bool) float64 {
	first, last := math.Ceil(lo), math.Floor(hi)
	if !(last >= first) || math.IsInf(last-first, 0) { // NaN fails too
		return 0
	}
	n := last - first + 1
	limit := float64(em.h - 1)
	if horizontal {
		limit = float64(em.w - 1)
	}
	hit := 0
	for u := math.Max(first, 0); u <= math.Min(last, limit); u++ {
		if lineHit(em, u, along, nx, ny, horizontal) {
			hit++
		}
	}
	return float64(hit) / n
}

// lineHit reports whether the line v = along(u) (see coverage) has an edge
// pixel oriented with it within one pixel across it at step u.
func lineHit(em *edgeMap, u float64, along func(u float64) float64, nx, ny float64, horizontal bool) bool {
	v := math.Round(along(u))
	if math.IsNaN(v) || math.Abs(v) > 1e6 {
		return false
	}
	for d := -1; d <= 1; d++ {
		x, y := int(u), int(v)+d
		if !horizontal {
			x, y = int(v)+d, int(u)
		}
		if em.along(x, y, nx, ny) {
			return true
		}
	}
	return false
}

// framed reports whether the sides found make a frame. A live person's
// body continues below the face and cuts what stands behind it, so the
// evidence is an edge below the face (across the neck) or a side edge that
// runs on unbroken from beside the face to the image's border or to
// a lower corner (see runsDown), and one more side:
//   - an edge below and two more sides;
//   - an edge below and a side running down: the frame's lower corner;
//   - left and right edges, one of them running down: a screen whose upper
//     and lower edges are out of view;
//   - an edge above and both sides running down.
//
// A door frame's jambs behind a person are cut by the shoulders. A live
// scene this still frames: a doorway behind a person standing off-centre,
// one jamb running on beside the shoulders (the third pattern). Over five
// generated draws 14 of 2,519 bona fide samples had a side running down,
// all renders with clutter behind the head, none with a second side that
// would frame it; no real video frame had one.
func framed(sides uint8) bool {
	n := 0
	for s := sides & (sideTop | sideBottom | sideLeft | sideRight); s != 0; s &= s - 1 {
		n++
	}
	bottom := sides&sideBottom != 0
	down := sides&(sideLeftDown|sideRightDown) != 0
	return bottom && (n >= 3 || down) ||
		sides&(sideLeft|sideRight) == sideLeft|sideRight && down ||
		sides&(sideTop|sideLeftDown|sideRightDown) == sideTop|sideLeftDown|sideRightDown
}
