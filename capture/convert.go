package capture

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"

	"gocv.io/x/gocv"
)

// converter turns image.Image frames into BGR Mats. It keeps one scratch
// Mat so that a steady stream costs one Go→C copy of the packed planes and
// one OpenCV colour conversion (SIMD) per frame, with no Go pointers
// handed to C. It is not safe for concurrent use.
type converter struct {
	scratch gocv.Mat // packed YUV / RGBA staging, reused across frames
	rgba    *image.RGBA
}

// Close releases the scratch Mat.
func (c *converter) Close() error {
	if c.scratch.Ptr() == nil {
		return nil
	}
	err := c.scratch.Close()
	c.scratch = gocv.Mat{}
	return err
}

// staging returns the scratch Mat sized rows×cols of type t, and its bytes.
func (c *converter) staging(rows, cols int, t gocv.MatType) (gocv.Mat, []byte, error) {
	if c.scratch.Ptr() == nil || c.scratch.Rows() != rows || c.scratch.Cols() != cols || c.scratch.Type() != t {
		_ = c.Close()
		c.scratch = gocv.NewMatWithSize(rows, cols, t)
	}
	b, err := c.scratch.DataPtrUint8()
	return c.scratch, b, err
}

// toMat converts img to a new BGR Mat owned by the caller.
func (c *converter) toMat(img image.Image) (gocv.Mat, error) {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 {
		return gocv.Mat{}, fmt.Errorf("empty image %v", r)
	}
	switch im := img.(type) {
	case *image.YCbCr:
		if w%2 == 0 && h%2 == 0 {
			switch im.SubsampleRatio {
			case image.YCbCrSubsampleRatio420:
				return c.fromI420(im, w, h)
			case image.YCbCrSubsampleRatio422:
				return c.fromYUYV(im, w, h)
			}
		}
	case *image.RGBA:
		return c.fromPacked(im.Pix, im.Stride, im.Rect.Min.X*4, im.Rect.Min.Y, w, h, 4, gocv.ColorRGBAToBGR)
	case *image.NRGBA:
		// Camera frames are opaque, so NRGBA and RGBA bytes are the same.
		return c.fromPacked(im.Pix, im.Stride, im.Rect.Min.X*4, im.Rect.Min.Y, w, h, 4, gocv.ColorRGBAToBGR)
	case *image.Gray:
		return c.fromPacked(im.Pix, im.Stride, im.Rect.Min.X, im.Rect.Min.Y, w, h, 1, gocv.ColorGrayToBGR)
	}
	// Anything else (4:4:4, paletted, 16-bit) goes through image/draw.
	if c.rgba == nil || c.rgba.Rect.Dx() != w || c.rgba.Rect.Dy() != h {
		c.rgba = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	draw.Draw(c.rgba, c.rgba.Rect, img, r.Min, draw.Src)
	return c.fromPacked(c.rgba.Pix, c.rgba.Stride, 0, 0, w, h, 4, gocv.ColorRGBAToBGR)
}

// fromI420 stacks Y, Cb, Cr into OpenCV's I420 layout (h*3/2 rows).
func (c *converter) fromI420(im *image.YCbCr, w, h int) (gocv.Mat, error) {
	src, buf, err := c.staging(h*3/2, w, gocv.MatTypeCV8UC1)
	if err != nil {
		return gocv.Mat{}, err
	}
	y0 := im.YOffset(im.Rect.Min.X, im.Rect.Min.Y)
	c0 := im.COffset(im.Rect.Min.X, im.Rect.Min.Y)
	off := 0
	for row := 0; row < h; row++ {
		off += copy(buf[off:off+w], im.Y[y0+row*im.YStride:])
	}
	cw, ch := w/2, h/2
	for _, plane := range [][]byte{im.Cb, im.Cr} {
		for row := 0; row < ch; row++ {
			off += copy(buf[off:off+cw], plane[c0+row*im.CStride:])
		}
	}
	dst := gocv.NewMat()
	gocv.CvtColor(src, &dst, gocv.ColorYUVToBGRIYUV)
	return dst, nil
}

// fromYUYV interleaves planar 4:2:2 (what pion's YUYV decoder and the
// videotest driver produce) back into YUYV, which OpenCV converts in one
// pass; OpenCV has no planar 4:2:2 input.
func (c *converter) fromYUYV(im *image.YCbCr, w, h int) (gocv.Mat, error) {
	src, buf, err := c.staging(h, w, gocv.MatTypeCV8UC2)
	if err != nil {
		return gocv.Mat{}, err
	}
	y0 := im.YOffset(im.Rect.Min.X, im.Rect.Min.Y)
	c0 := im.COffset(im.Rect.Min.X, im.Rect.Min.Y)
	cw := w / 2
	for row := 0; row < h; row++ {
		ys := im.Y[y0+row*im.YStride : y0+row*im.YStride+w]
		cb := im.Cb[c0+row*im.CStride : c0+row*im.CStride+cw]
		cr := im.Cr[c0+row*im.CStride : c0+row*im.CStride+cw]
		out := buf[row*w*2 : (row+1)*w*2]
		// Re-slicing lets the compiler drop bounds checks; one 64-bit
		// store writes two pixel pairs.
		for len(ys) >= 4 && len(cb) >= 2 && len(cr) >= 2 && len(out) >= 8 {
			binary.LittleEndian.PutUint64(out, uint64(ys[0])|uint64(cb[0])<<8|uint64(ys[1])<<16|uint64(cr[0])<<24|
				uint64(ys[2])<<32|uint64(cb[1])<<40|uint64(ys[3])<<48|uint64(cr[1])<<56)
			ys, cb, cr, out = ys[4:], cb[2:], cr[2:], out[8:]
		}
		if len(ys) >= 2 && len(cb) >= 1 && len(cr) >= 1 && len(out) >= 4 { // odd number of pairs
			out[0], out[1], out[2], out[3] = ys[0], cb[0], ys[1], cr[0]
		}
	}
	dst := gocv.NewMat()
	gocv.CvtColor(src, &dst, gocv.ColorYUVToBGRYUY2)
	return dst, nil
}

// fromPacked copies rows of a packed image (bpp bytes per pixel) starting
// at byte x0 of row y0, then converts with code.
func (c *converter) fromPacked(pix []byte, stride, x0, y0, w, h, bpp int, code gocv.ColorConversionCode) (gocv.Mat, error) {
	t := gocv.MatTypeCV8UC4
	if bpp == 1 {
		t = gocv.MatTypeCV8UC1
	}
	src, buf, err := c.staging(h, w, t)
	if err != nil {
		return gocv.Mat{}, err
	}
	rowBytes := w * bpp
	for row := 0; row < h; row++ {
		start := (y0+row)*stride + x0
		copy(buf[row*rowBytes:(row+1)*rowBytes], pix[start:start+rowBytes])
	}
	dst := gocv.NewMat()
	gocv.CvtColor(src, &dst, code)
	return dst, nil
}
