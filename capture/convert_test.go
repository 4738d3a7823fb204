package capture

import (
	"context"
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
	"time"
)

// bt601 is what OpenCV's YUV→BGR conversions compute (video range).
func bt601(y, cb, cr uint8) [3]uint8 {
	c := func(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }
	yy, u, v := 1.164*(float64(y)-16), float64(cb)-128, float64(cr)-128
	return [3]uint8{c(yy + 2.018*u), c(yy - 0.391*u - 0.813*v), c(yy + 1.596*v)}
}

// jfif is Go's full-range conversion, used by the image/draw fallback.
func jfif(y, cb, cr uint8) [3]uint8 {
	r, g, b := color.YCbCrToRGB(y, cb, cr)
	return [3]uint8{b, g, r}
}

func solidYCbCr(w, h int, ratio image.YCbCrSubsampleRatio, y, cb, cr uint8) *image.YCbCr {
	im := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
	for i := range im.Y {
		im.Y[i] = y
	}
	for i := range im.Cb {
		im.Cb[i], im.Cr[i] = cb, cr
	}
	return im
}

func TestConvertToBGR(t *testing.T) {
	const w, h = 64, 48
	// A left/right split checks that columns are not swapped or shifted.
	split := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{R: 250, G: 10, B: 10, A: 255}
			if x >= w/2 {
				c = color.RGBA{R: 10, G: 10, B: 250, A: 255}
			}
			split.SetRGBA(x, y, c)
		}
	}
	gray := image.NewGray(image.Rect(0, 0, w, h))
	for i := range gray.Pix {
		gray.Pix[i] = 77
	}
	big := image.NewRGBA(image.Rect(0, 0, w+20, h+10))
	for i := 0; i < len(big.Pix); i += 4 {
		copy(big.Pix[i:], []byte{30, 60, 90, 255})
	}
	sub := big.SubImage(image.Rect(10, 5, 10+w, 5+h)) // stride ≠ 4*w, offset origin
	tests := []struct {
		name        string
		img         image.Image
		left, right [3]uint8 // expected BGR at x=2 and x=w-3
	}{
		{"YCbCr 4:2:0 (pion I420/NV12/MJPEG)", solidYCbCr(w, h, image.YCbCrSubsampleRatio420, 150, 90, 180),
			bt601(150, 90, 180), bt601(150, 90, 180)},
		{"YCbCr 4:2:2 (pion YUYV, videotest)", solidYCbCr(w, h, image.YCbCrSubsampleRatio422, 100, 200, 60),
			bt601(100, 200, 60), bt601(100, 200, 60)},
		{"YCbCr 4:4:4 via image/draw", solidYCbCr(w, h, image.YCbCrSubsampleRatio444, 120, 128, 128),
			jfif(120, 128, 128), jfif(120, 128, 128)},
		{"RGBA split", split, [3]uint8{10, 10, 250}, [3]uint8{250, 10, 10}},
		{"NRGBA", &image.NRGBA{Pix: split.Pix, Stride: split.Stride, Rect: split.Rect}, [3]uint8{10, 10, 250}, [3]uint8{250, 10, 10}},
		{"Gray", gray, [3]uint8{77, 77, 77}, [3]uint8{77, 77, 77}},
		{"RGBA sub-image", sub, [3]uint8{90, 60, 30}, [3]uint8{90, 60, 30}},
	}
	var c converter
	defer c.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := c.toMat(tt.img)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Cols() != w || m.Rows() != h || m.Channels() != 3 {
				t.Fatalf("got %dx%d×%d, want %dx%d×3", m.Cols(), m.Rows(), m.Channels(), w, h)
			}
			for _, p := range []struct {
				x    int
				want [3]uint8
			}{{2, tt.left}, {w - 3, tt.right}} {
				got := bgrAt(m, p.x, h/2)
				for i := range 3 {
					if abs(int(got[i])-int(p.want[i])) > 3 {
						t.Fatalf("pixel x=%d: BGR %v, want %v", p.x, got, p.want)
					}
				}
			}
		})
	}
	if _, err := c.toMat(image.NewRGBA(image.Rect(0, 0, 0, 0))); err == nil {
		t.Error("empty image: want an error")
	}
}

func TestMediaDevicesVideotest(t *testing.T) {
	src, err := ParseURI("mediadevices:videotest", Options{Width: 320, Height: 240, FPS: 60})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Twice: pion's driver state machine must be left closed for a reopen.
	for round := range 2 {
		if err := src.Open(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range 3 {
			f, err := src.Read(ctx)
			if err != nil {
				t.Fatalf("round %d frame %d: %v", round, i, err)
			}
			if f.Width != 320 || f.Height != 240 {
				t.Errorf("frame is %dx%d, want 320x240", f.Width, f.Height)
			}
			// videotest draws colour bars: 75% white, then yellow.
			white, yellow := bgrAt(f.Mat, 10, 20), bgrAt(f.Mat, 320/7+10, 20)
			_ = f.Close()
			if abs(int(white[0])-int(white[2])) > 12 || white[1] < 120 {
				t.Errorf("first bar BGR %v, want light grey", white)
			}
			if yellow[0] > 60 || yellow[1] < 120 || yellow[2] < 120 {
				t.Errorf("second bar BGR %v, want yellow (low blue, high green and red)", yellow)
			}
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMediaDevicesSelection(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"mediadevices:", "no camera registered"},
		{"mediadevices:nonesuch", `no mediadevices camera matches "nonesuch"`},
	} {
		src, err := ParseURI(tc.uri, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = src.Open(context.Background())
		_ = src.Close()
		if camerasBuiltIn() {
			continue // with the camera driver a real device may exist
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "VideoTest") {
			t.Errorf("%s: Open = %v, want %q listing the VideoTest device", tc.uri, err, tc.want)
		}
	}
}
