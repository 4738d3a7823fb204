package synth

import (
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // face.jpg
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bwsagent/bwsagent/face/geom"
)

// testPhoto returns a 640×480 frontal face photo and plausible landmarks
// for it. The photo is gocv's images/face.jpg from the module cache (gocv
// is a dependency of this module, so it is on every machine that builds
// it); its landmarks are the canonical face projected onto the photo's
// face area (eye centres at about (305, 248) and (400, 245)), since no
// landmark detector exists in pure Go. Without the module cache a drawn
// stand-in face is used so the tests still run.
func testPhoto(t testing.TB) (image.Image, [68]geom.Point) {
	t.Helper()
	img := faceJPEG()
	if img == nil {
		t.Log("gocv images/face.jpg not found; using a drawn stand-in face")
		img = drawnFace(640, 480)
	}
	cam := geom.DefaultCamera(640, 480)
	m := geom.Canonical68()
	var lm [68]geom.Point
	copy(lm[:], geom.Project(m[:], geom.Pose{}, photoTranslation(), cam))
	return img, lm
}

// photoTranslation puts the canonical face over face.jpg's face: 95 px
// between the eye centres (1.51 px/mm) at the eyes' midpoint (352, 247).
func photoTranslation() geom.Vec3 { return geom.Vec3{X: 21, Y: -25, Z: -493} }

var faceJPEG = sync.OnceValue(func() image.Image {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "gocv.io/x/gocv").Output()
	if err != nil {
		return nil
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "images", "face.jpg"))
	if err != nil {
		return nil
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 480 {
		return nil
	}
	// Compare renders with the same RGB values the package sees (the
	// JPEG's YCbCr→RGB rounding differs between At and draw.Draw).
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	return rgba
})

// drawnFace is a crude textured stand-in: a skin ellipse with dark eyes,
// nose and mouth over a gradient background, so renders have structure.
func drawnFace(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	ellipse := func(cx, cy, rx, ry float64, c color.RGBA) {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
				if dx*dx+dy*dy < 1 {
					img.Set(x, y, c)
				}
			}
		}
	}
	ellipse(352, 290, 95, 130, color.RGBA{220, 180, 150, 255})
	ellipse(305, 248, 18, 8, color.RGBA{40, 30, 30, 255})
	ellipse(400, 245, 18, 8, color.RGBA{40, 30, 30, 255})
	ellipse(352, 300, 10, 12, color.RGBA{170, 120, 100, 255})
	ellipse(355, 335, 35, 9, color.RGBA{150, 60, 60, 255})
	return img
}

// meanAbsDiff is the mean absolute RGB difference over rect.
func meanAbsDiff(a, b image.Image, rect image.Rectangle) float64 {
	var sum float64
	var n int
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		for x := rect.Min.X; x < rect.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			sum += math.Abs(float64(r1)-float64(r2)) + math.Abs(float64(g1)-float64(g2)) + math.Abs(float64(b1)-float64(b2))
			n += 3
		}
	}
	return sum / float64(n) / 257
}

// faceRect is the landmarks' bounding box.
func faceRect(lm [68]geom.Point) image.Rectangle {
	r := image.Rect(int(lm[0].X), int(lm[0].Y), int(lm[0].X)+1, int(lm[0].Y)+1)
	for _, p := range lm {
		r = r.Union(image.Rect(int(p.X), int(p.Y), int(p.X)+1, int(p.Y)+1))
	}
	return r
}

// hstack places images side by side.
func hstack(imgs ...image.Image) *image.RGBA {
	w, h := 0, 0
	for _, im := range imgs {
		w += im.Bounds().Dx()
		h = max(h, im.Bounds().Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	x := 0
	for _, im := range imgs {
		b := im.Bounds()
		draw.Draw(out, image.Rect(x, 0, x+b.Dx(), b.Dy()), im, b.Min, draw.Src)
		x += b.Dx()
	}
	return out
}

func savePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// markLandmarks draws small crosses at the landmarks (for eyeballing).
func markLandmarks(img *image.RGBA, lm [68]geom.Point, c color.RGBA) {
	for _, p := range lm {
		x, y := int(math.Round(p.X)), int(math.Round(p.Y))
		for d := -2; d <= 2; d++ {
			img.Set(x+d, y, c)
			img.Set(x, y+d, c)
		}
	}
}
