// Package imgio decodes untrusted image bytes with limits checked before any
// pixel is decoded, and applies EXIF orientation, so that every path that
// turns bytes into pixels (uploads, files, the CLI) sees the same upright image.
package imgio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registered decoders: the BWS contract's png, jpeg, bmp, gif, tiff
	_ "image/jpeg"
	_ "image/png"
	"os"

	"github.com/disintegration/imaging"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
)

// Limits bound what Decode accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes  int64 // encoded size
	MaxPixels int64 // width × height, from the header, before decoding
	MaxSide   int   // the longer side, from the header
}

// DefaultLimits fit any camera still a kiosk produces with room to spare,
// and keep one decoded image under ~160 MB.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 20 << 20, MaxPixels: 40_000_000, MaxSide: 10_000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = d.MaxPixels
	}
	if l.MaxSide <= 0 {
		l.MaxSide = d.MaxSide
	}
	return l
}

// Sentinel errors; callers map them to their own error shapes.
var (
	ErrTooLarge    = errors.New("image too large")
	ErrUnsupported = errors.New("unsupported or corrupt image")
	ErrEmpty       = errors.New("image has no pixels")
)

// Decode decodes data (png, jpeg, bmp, gif — first frame —, tiff) and returns
// the upright image and its format name. The header is checked against the
// limits before decoding, so a small file declaring huge dimensions costs nothing.
func Decode(data []byte, lim Limits) (img image.Image, format string, err error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, format, fmt.Errorf("%w: %d×%d", ErrEmpty, cfg.Width, cfg.Height)
	}
	if cfg.Width > lim.MaxSide || cfg.Height > lim.MaxSide || int64(cfg.Width)*int64(cfg.Height) > lim.MaxPixels {
		return nil, format, fmt.Errorf("%w: %d×%d pixels, limit %d pixels and %d per side",
			ErrTooLarge, cfg.Width, cfg.Height, lim.MaxPixels, lim.MaxSide)
	}
	// The decoders are memory-safe but not all promise never to panic on
	// hostile input; a panic here must become a 400, not a dead daemon.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: decoder failed: %v", ErrUnsupported, r)
		}
	}()
	img, err = imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
	if err != nil {
		return nil, format, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, format, fmt.Errorf("%w: %v", ErrEmpty, b)
	}
	return img, format, nil
}

// ReadFile decodes an image file with the same limits and orientation rules.
func ReadFile(path string, lim Limits) (image.Image, error) {
	lim = lim.withDefaults()
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > lim.MaxBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes, limit %d", path, ErrTooLarge, st.Size(), lim.MaxBytes)
	}
	data := make([]byte, st.Size())
	if _, err := fh.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	img, _, err := Decode(data, lim)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}
