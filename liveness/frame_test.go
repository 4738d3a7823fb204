package liveness

import (
	"image"
	"image/color"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
)

// TestFrameSides draws scenes around a face-sized blob: a screen's bezel
// is found on every side it shows (its lower edge out of view: its sides
// run on to the image's border), while the straight edges a live person's
// surroundings have (a door frame cut by the shoulders, a striped shirt,
// clutter) never make a frame.
func TestFrameSides(t *testing.T) {
	box := face.Rect{X: 270, Y: 150, W: 100, H: 100}
	var (
		dark  = color.RGBA{20, 20, 25, 0}
		room  = color.RGBA{190, 180, 160, 0}
		skin  = color.RGBA{150, 170, 210, 0}
		shirt = color.RGBA{90, 60, 40, 0}
	)
	person := func(m *gocv.Mat) {
		// Head, neck and shoulders running to the image's bottom.
		gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{{{150, 480}, {200, 330}, {290, 290}, {350, 290}, {440, 330}, {490, 480}}}), shirt)
		gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
	}
	// quad draws a screen by its corners: bezel and content.
	quad := func(m *gocv.Mat, corners []image.Point) {
		var c image.Point
		for _, p := range corners {
			c = c.Add(p.Div(len(corners)))
		}
		gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{corners}), dark)
		inner := make([]image.Point, len(corners))
		for i, p := range corners {
			inner[i] = image.Pt(p.X+(c.X-p.X)/12, p.Y+(c.Y-p.Y)/12)
		}
		gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{inner}), color.RGBA{70, 90, 110, 0})
	}
	screen := func(m *gocv.Mat, r image.Rectangle, angle float64) {
		c := image.Pt((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2)
		corners := []image.Point{r.Min, {r.Max.X, r.Min.Y}, r.Max, {r.Min.X, r.Max.Y}}
		sin, cos := math.Sincos(angle * math.Pi / 180)
		for i, p := range corners {
			dx, dy := float64(p.X-c.X), float64(p.Y-c.Y)
			corners[i] = image.Pt(c.X+int(dx*cos-dy*sin), c.Y+int(dx*sin+dy*cos))
		}
		quad(m, corners)
	}
	clutter := func(m *gocv.Mat) {
		noise := gocv.NewMatWithSize(48, 64, gocv.MatTypeCV8UC3)
		defer noise.Close()
		gocv.RandU(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
		gocv.Resize(noise, m, image.Pt(640, 480), 0, 0, gocv.InterpolationCubic)
	}
	tests := []struct {
		name   string
		draw   func(m *gocv.Mat)
		sides  uint8 // must all be found
		framed bool
	}{
		{"plain room, person", func(m *gocv.Mat) { person(m) }, 0, false},
		{"screen held up", func(m *gocv.Mat) {
			screen(m, image.Rect(150, 40, 490, 420), 0)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideBottom | sideLeft | sideRight, true},
		{"screen turned 10° in the hand", func(m *gocv.Mat) {
			screen(m, image.Rect(150, 40, 490, 420), 10)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideBottom | sideLeft | sideRight, true},
		{"screen whose bottom is out of the image", func(m *gocv.Mat) {
			screen(m, image.Rect(150, 40, 490, 560), 0)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideLeft | sideRight | sideLeftDown | sideRightDown, true},
		{"screen turned so that only its lower right corner is in view", func(m *gocv.Mat) {
			// The lower edge crosses the face's column below the image, so
			// no bottom side is seen; the right side ends in the corner.
			screen(m, image.Rect(150, 40, 490, 470), -12)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideLeft | sideRight | sideRightDown, true},
		{"screen seen from its lower left corner", func(m *gocv.Mat) {
			// Top and right out of view: the lower edge and the left side.
			screen(m, image.Rect(150, -200, 800, 420), 0)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideBottom | sideLeft | sideLeftDown, true},
		{"screen filling the view, its lower left corner at the image's border", func(m *gocv.Mat) {
			// Too near the border to see that no edge runs on outwards from
			// the corner: its lower edge crosses under the face instead.
			gocv.Rectangle(m, image.Rect(0, -10, 700, 430), dark, -1)
			gocv.Rectangle(m, image.Rect(16, -10, 700, 416), color.RGBA{70, 90, 110, 0}, -1)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideBottom | sideLeft | sideLeftDown, true},
		{"screen filling the view held at an angle, its lower edge leaving the image beneath the face", func(m *gocv.Mat) {
			// No room to look outwards from the lower left corner, and the
			// lower edge leaves the image before it runs on past the face.
			gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{{{16, -10}, {700, -10}, {700, 530}, {16, 440}}}), color.RGBA{70, 90, 110, 0})
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideBottom | sideLeft | sideLeftDown, true},
		{"screen filling the view held at an angle, its lower edge leaving the image beside the face", func(m *gocv.Mat) {
			// The lower left corner just above the image's border: the
			// lower edge leaves it after about one face width.
			gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{{{16, -10}, {700, -10}, {700, 620}, {16, 450}}}), color.RGBA{70, 90, 110, 0})
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideBottom | sideLeft | sideLeftDown, true},
		{"screen filling the view, its lower edge a change of hue only", func(m *gocv.Mat) {
			// A blue backdrop and a red-brown shirt on screen above a green
			// wall, all three one brightness (BT.601 luma 93–94): only a
			// colour edge shows where the screen ends. Its right side is
			// the bezel, down to the lower right corner.
			gocv.Rectangle(m, image.Rect(0, 0, 640, 480), color.RGBA{40, 130, 50, 0}, -1)
			gocv.Rectangle(m, image.Rect(-10, -10, 570, 430), color.RGBA{40, 100, 200, 0}, -1)
			gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{{{150, 430}, {200, 330}, {290, 290}, {350, 290}, {440, 330}, {490, 430}}}), color.RGBA{130, 80, 60, 0})
			gocv.Rectangle(m, image.Rect(570, -10, 590, 430), dark, -1)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideBottom | sideRight | sideRightDown, true},
		{"screen taller than the view", func(m *gocv.Mat) {
			screen(m, image.Rect(150, -200, 490, 700), 0)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideLeft | sideRight | sideLeftDown | sideRightDown, true},
		{"screen whose bezel is hidden in three places", func(m *gocv.Mat) {
			screen(m, image.Rect(150, 40, 490, 560), 0)
			// Dark things across the bezel hide its edges three times over
			// about 0.15 face widths: 15 % of the way down.
			for _, y := range []int{270, 340, 410} {
				gocv.Rectangle(m, image.Rect(100, y, 200, y+10), dark, -1)
				gocv.Rectangle(m, image.Rect(440, y, 540, y+10), dark, -1)
			}
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideLeft | sideRight | sideLeftDown | sideRightDown, true},
		{"screen whose left side leaves the image through its left border", func(m *gocv.Mat) {
			quad(m, []image.Point{{120, 60}, {700, 40}, {700, 600}, {-60, 520}})
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideLeft | sideLeftDown, false}, // the right side is out of view: no frame
		{"bezel close above the hair", func(m *gocv.Mat) {
			screen(m, image.Rect(150, 125, 490, 560), 0)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideLeft | sideRight | sideLeftDown | sideRightDown, true},
		{"door frame behind a person with level shoulders", func(m *gocv.Mat) {
			// The shoulders cut the jambs and run on past them: no corner.
			gocv.Rectangle(m, image.Rect(170, 20, 470, 480), dark, 12)
			gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{{{90, 480}, {90, 370}, {280, 365}, {290, 250}, {350, 250}, {360, 365}, {550, 370}, {550, 480}}}), shirt)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideTop | sideLeft | sideRight, false},
		{"door frame behind the person", func(m *gocv.Mat) {
			gocv.Rectangle(m, image.Rect(170, 20, 470, 480), dark, 12)
			person(m)
		}, sideTop | sideLeft | sideRight, false},
		{"door jamb at the image's border, cut by a shoulder rising to the neck", func(m *gocv.Mat) {
			gocv.Rectangle(m, image.Rect(0, -10, 12, 490), dark, -1)
			gocv.FillPoly(m, gocv.NewPointsVectorFromPoints([][]image.Point{{{-10, 480}, {-10, 420}, {280, 330}, {290, 290}, {350, 290}, {360, 330}, {650, 420}, {650, 480}}}), shirt)
			gocv.Ellipse(m, image.Pt(320, 200), image.Pt(50, 65), 0, 0, 360, skin, -1)
		}, sideLeft, false},
		{"striped shirt", func(m *gocv.Mat) {
			person(m)
			for y := 330; y < 480; y += 24 {
				gocv.Line(m, image.Pt(180, y), image.Pt(460, y), dark, 6)
			}
		}, sideBottom, false},
		{"clutter", func(m *gocv.Mat) {
			clutter(m)
			person(m)
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(room.B), float64(room.G), float64(room.R), 0), 480, 640, gocv.MatTypeCV8UC3)
			defer m.Close()
			tt.draw(&m)
			f := face.Face{Box: box}
			got := frameSides(m, &f)
			if got&tt.sides != tt.sides {
				t.Errorf("sides %04b, want at least %04b", got, tt.sides)
			}
			if framed(got) != tt.framed {
				t.Errorf("framed(%04b) = %v, want %v", got, framed(got), tt.framed)
			}
		})
	}
}

// TestFrameSidesLargeFace: with a large face, a door jamb at the image's
// border behind it is cut by the shoulder only just above the lower border
// (the real clip lp_d9: 24 px at 320), and the shoulder's edge leaves the
// image right after the jamb: neither an edge running on down nor a
// corner.
func TestFrameSidesLargeFace(t *testing.T) {
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(160, 180, 190, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer m.Close()
	gocv.Rectangle(&m, image.Rect(618, -10, 630, 490), color.RGBA{20, 20, 25, 0}, -1)
	gocv.FillPoly(&m, gocv.NewPointsVectorFromPoints([][]image.Point{{{0, 480}, {0, 440}, {250, 400}, {390, 400}, {640, 450}, {640, 480}}}), color.RGBA{90, 60, 40, 0})
	gocv.Ellipse(&m, image.Pt(320, 240), image.Pt(125, 160), 0, 0, 360, color.RGBA{150, 170, 210, 0}, -1)
	got := frameSides(m, &face.Face{Box: face.Rect{X: 170, Y: 90, W: 300, H: 300}})
	if got&sideRight == 0 || got&sideRightDown != 0 {
		t.Errorf("sides %06b, want the jamb on the right (%06b) not running down (%06b)", got, sideRight, sideRightDown)
	}
}

func TestFrameSidesBadInput(t *testing.T) {
	empty := gocv.NewMat()
	defer empty.Close()
	if s := frameSides(empty, &face.Face{Box: face.Rect{W: 10, H: 10}}); s != 0 {
		t.Errorf("empty image: %04b", s)
	}
	grey := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 0, 0, 0), 480, 640, gocv.MatTypeCV8U)
	defer grey.Close()
	gocv.Rectangle(&grey, image.Rect(150, 40, 490, 420), color.RGBA{}, 12)
	if s := frameSides(grey, &face.Face{Box: face.Rect{X: 270, Y: 150, W: 100, H: 100}}); s != 0 {
		t.Errorf("grey image: %04b", s)
	}
	m := gocv.NewMatWithSize(4, 4, gocv.MatTypeCV8UC3)
	defer m.Close()
	for _, b := range []face.Rect{{}, {X: -100, Y: -100, W: 1000, H: 1000}, {X: 1, Y: 1, W: 1, H: 1}} {
		_ = frameSides(m, &face.Face{Box: b}) // no panic
	}
}

// FuzzSidesAround feeds arbitrary lines and face boxes to the frame
// classifier over a small random edge map: no panic, no side outside the
// four.
func FuzzSidesAround(f *testing.F) {
	f.Add(100.0, 1.5707, 20.0, 30.0, 60.0, 70.0, []byte{1, 2, 3})
	f.Add(-5.0, 0.0, 0.0, 0.0, 0.0, 0.0, []byte{})
	f.Add(10.0, 1.5707, -1e300, -1e300, 1e300, 1e300, []byte{255}) // a huge box must not loop for ever
	f.Fuzz(func(t *testing.T, rho, theta, x0, y0, x1, y1 float64, pix []byte) {
		const w, h = 32, 24
		em := &edgeMap{w: w, h: h, pix: make([]byte, w*h), bgr: make([]byte, 3*w*h)}
		for i, b := range pix {
			em.pix[i%(w*h)] = b
			em.bgr[(i*7)%(3*w*h)] = b
		}
		s := sidesAround(em, [][2]float64{{rho, theta}, {-rho, theta + 1}}, [4]float64{x0, y0, x1, y1})
		if s&^sidesAll != 0 {
			t.Fatalf("sides %08b", s)
		}
	})
}

func TestFrameMinCos(t *testing.T) {
	if d := math.Abs(frameMinCos - math.Cos(20*math.Pi/180)); d > 1e-15 {
		t.Errorf("frameMinCos is off cos 20° by %g", d)
	}
}

// TestFramed lists which sets of sides make a frame: the patterns a held-up
// screen or print shows, and those a live person's surroundings do.
func TestFramed(t *testing.T) {
	tests := []struct {
		name  string
		sides uint8
		want  bool
	}{
		{"nothing", 0, false},
		{"a door or window edge beside the head", sideLeft, false},
		{"an edge above and one beside (a room's corner)", sideTop | sideLeft, false},
		{"a shirt's stripe below", sideBottom, false},
		{"a stripe below and an edge beside", sideBottom | sideRight, false},
		{"door frame, jambs cut by the shoulders", sideTop | sideLeft | sideRight, false},
		{"door jambs, lintel out of view", sideLeft | sideRight, false},
		{"a side running down alone", sideLeft | sideLeftDown, false},
		{"an edge above and one side running down", sideTop | sideLeft | sideLeftDown, false},
		{"print held up: all four", sideTop | sideBottom | sideLeft | sideRight, true},
		{"below and two more", sideBottom | sideLeft | sideRight, true},
		{"the frame's lower corner: below and a side running down", sideBottom | sideLeft | sideLeftDown, true},
		{"screen filling the view's height: both sides, one running down", sideLeft | sideRight | sideRightDown, true},
		{"lower edge out of view: above, both sides running down", sideTop | sideLeft | sideRight | sideLeftDown | sideRightDown, true},
	}
	for _, tt := range tests {
		if got := framed(tt.sides); got != tt.want {
			t.Errorf("%s: framed(%06b) = %v, want %v", tt.name, tt.sides, got, tt.want)
		}
	}
}

// TestFrameSidesScreenHeldClose: a screen held so close that the face
// fills it has its lower bezel just under the face box; its edges are
// the frame's lower side (the generated replay of the real clip lp_d3:
// 2–6 px below the box at 320 px).
func TestFrameSidesScreenHeldClose(t *testing.T) {
	dark := color.RGBA{20, 20, 25, 0}
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(160, 180, 190, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer m.Close()
	gocv.Rectangle(&m, image.Rect(0, -10, 640, 420), dark, -1)
	gocv.Rectangle(&m, image.Rect(20, 15, 620, 400), color.RGBA{110, 90, 70, 0}, -1)
	gocv.Ellipse(&m, image.Pt(320, 250), image.Pt(120, 150), 0, 0, 360, color.RGBA{150, 170, 210, 0}, -1)
	gocv.Rectangle(&m, image.Rect(0, 400, 640, 420), dark, -1) // the face is on the screen: the bezel covers its edge
	got := frameSides(m, &face.Face{Box: face.Rect{X: 170, Y: 100, W: 300, H: 300}})
	if want := sideTop | sideBottom | sideLeft | sideRight; got&want != want || !framed(got) {
		t.Errorf("sides %06b, want at least %06b, framed", got, want)
	}
}
