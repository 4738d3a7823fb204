package imgio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

func encoded(t testing.TB, format string, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 100, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "bmp":
		err = bmp.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngHeaderClaiming returns a tiny PNG whose IHDR declares w×h pixels: a
// decompression bomb's header.
func pngHeaderClaiming(t testing.TB, w, h uint32) []byte {
	data := encoded(t, "png", 4, 4)
	binary.BigEndian.PutUint32(data[16:], w)
	binary.BigEndian.PutUint32(data[20:], h)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29])) // IHDR CRC
	return data
}

func TestDecode(t *testing.T) {
	jpg := encoded(t, "jpeg", 64, 48)
	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		wantErr error
		wantW   int
	}{
		{"png", encoded(t, "png", 64, 48), Limits{}, nil, 64},
		{"jpeg", jpg, Limits{}, nil, 64},
		{"bmp", encoded(t, "bmp", 64, 48), Limits{}, nil, 64},
		// Netpbm is not decoded here: a netpbm library hung on "P1 00#" (found by FuzzDecode).
		{"pgm", append([]byte("P5\n64 2\n255\n"), make([]byte, 128)...), Limits{}, ErrUnsupported, 0},
		{"not an image", []byte("hello, world"), Limits{}, ErrUnsupported, 0},
		{"empty", nil, Limits{}, ErrUnsupported, 0},
		{"truncated jpeg", jpg[:len(jpg)/2], Limits{}, ErrUnsupported, 0},
		{"20000x20000 header", pngHeaderClaiming(t, 20000, 20000), Limits{}, ErrTooLarge, 0},
		{"0x0 header", pngHeaderClaiming(t, 0, 0), Limits{}, nil, -1},
		{"too many bytes", jpg, Limits{MaxBytes: 100}, ErrTooLarge, 0},
		{"too many pixels", jpg, Limits{MaxPixels: 1000}, ErrTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _, err := Decode(tt.data, tt.lim)
			if tt.wantW == -1 { // any error, never a panic or an empty image
				if err == nil {
					t.Fatalf("Decode succeeded on a 0×0 image")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && img.Bounds().Dx() != tt.wantW {
				t.Fatalf("width = %d, want %d", img.Bounds().Dx(), tt.wantW)
			}
		})
	}
}

// TestEXIFOrientation uses the real photo stored rotated 180° with an EXIF
// orientation tag, and its upright twin.
func TestEXIFOrientation(t *testing.T) {
	dir := filepath.Join(testdataDir(t), "headpose", "aws_headpose_testIMs")
	upright, err := ReadFile(filepath.Join(dir, "IMG_1242.JPG"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ReadFile(filepath.Join(dir, "IMG_1242.jpeg"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if upright.Bounds() != rotated.Bounds() {
		t.Fatalf("bounds differ: %v vs %v", upright.Bounds(), rotated.Bounds())
	}
	// After orientation both show the same scene: compare coarse block means.
	if d := meanAbsDiff(upright, rotated); d > 20 {
		t.Fatalf("EXIF-rotated image differs from upright one by %.1f grey levels on average; orientation not applied", d)
	}
}

func meanAbsDiff(a, b image.Image) float64 {
	r := a.Bounds()
	var sum float64
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y += 8 {
		for x := r.Min.X; x < r.Max.X; x += 8 {
			ga := color.GrayModel.Convert(a.At(x, y)).(color.Gray).Y
			gb := color.GrayModel.Convert(b.At(x, y)).(color.Gray).Y
			d := float64(ga) - float64(gb)
			if d < 0 {
				d = -d
			}
			sum += d
			n++
		}
	}
	return sum / float64(n)
}

func testdataDir(t *testing.T) string { return testenv.DataDir(t) }

func FuzzDecode(f *testing.F) {
	f.Add(encoded(f, "png", 8, 8))
	f.Add(encoded(f, "jpeg", 8, 8))
	f.Add(encoded(f, "bmp", 8, 8))
	f.Add(pngHeaderClaiming(f, 20000, 20000))
	f.Add([]byte("GIF89a"))
	f.Add([]byte("II*\x00"))
	f.Add([]byte("P5\n2 2\n255\n\x00\x01\x02\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, _, err := Decode(data, Limits{MaxPixels: 1 << 20})
		if err == nil && (img == nil || img.Bounds().Empty()) {
			t.Fatal("nil error with no image")
		}
	})
}
