package synth

import (
	"image"
	"math"

	"github.com/bwsagent/bwsagent/face/geom"
)

// drawTriangle fills the screen triangle s of dst (0-origin RGBA) with the
// texture triangle uv of tex, mapped affinely (per-triangle affine texture
// mapping: exact for the planar pieces of the mesh up to perspective
// foreshortening inside one triangle, which is sub-pixel for meshes this
// fine) with bilinear sampling. Both orientations are drawn; culling is the
// caller's business. Spans use inclusive pixel-centre coverage so
// neighbouring triangles leave no gaps.
func drawTriangle(dst *image.RGBA, tex *texture, s, uv [3]geom.Point) {
	for k := 0; k < 3; k++ {
		if !finitePt(s[k]) || !finitePt(uv[k]) {
			return
		}
	}
	e1x, e1y := s[1].X-s[0].X, s[1].Y-s[0].Y
	e2x, e2y := s[2].X-s[0].X, s[2].Y-s[0].Y
	det := e1x*e2y - e1y*e2x
	if math.Abs(det) < 1e-9 {
		return
	}
	// Screen → texture affine map: uv = A·(x, y) + c.
	bx, by := e2y/det, -e2x/det
	gx, gy := -e1y/det, e1x/det
	du1, du2 := uv[1].X-uv[0].X, uv[2].X-uv[0].X
	dv1, dv2 := uv[1].Y-uv[0].Y, uv[2].Y-uv[0].Y
	dudx, dudy := du1*bx+du2*gx, du1*by+du2*gy
	dvdx, dvdy := dv1*bx+dv2*gx, dv1*by+dv2*gy
	u0 := uv[0].X - dudx*s[0].X - dudy*s[0].Y
	v0 := uv[0].Y - dvdx*s[0].X - dvdy*s[0].Y

	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	const eps = 1e-7
	minY := math.Min(s[0].Y, math.Min(s[1].Y, s[2].Y))
	maxY := math.Max(s[0].Y, math.Max(s[1].Y, s[2].Y))
	// Clamp in floating point first: converting a huge float to int is
	// implementation-defined.
	y0 := int(math.Ceil(math.Max(minY-eps, 0)))
	y1 := int(math.Floor(math.Min(maxY+eps, float64(h-1))))
	if maxY < 0 || minY > float64(h-1) {
		return
	}
	for y := y0; y <= y1; y++ {
		fy := float64(y)
		xl, xr := math.Inf(1), math.Inf(-1)
		for k := 0; k < 3; k++ {
			a, b := s[k], s[(k+1)%3]
			lo, hi := math.Min(a.Y, b.Y), math.Max(a.Y, b.Y)
			if fy < lo-eps || fy > hi+eps {
				continue
			}
			if hi-lo < 1e-12 {
				xl, xr = math.Min(xl, math.Min(a.X, b.X)), math.Max(xr, math.Max(a.X, b.X))
				continue
			}
			t := math.Max(0, math.Min(1, (fy-a.Y)/(b.Y-a.Y)))
			x := a.X + t*(b.X-a.X)
			xl, xr = math.Min(xl, x), math.Max(xr, x)
		}
		if !(xl <= xr) || xr < 0 || xl > float64(w-1) {
			continue
		}
		xa := int(math.Ceil(math.Max(xl-eps, 0)))
		xb := int(math.Floor(math.Min(xr+eps, float64(w-1))))
		if xa > xb {
			continue
		}
		u := u0 + dudx*float64(xa) + dudy*fy
		v := v0 + dvdx*float64(xa) + dvdy*fy
		row := dst.Pix[y*dst.Stride:]
		for x := xa; x <= xb; x++ {
			tex.sampleTo(row[4*x:4*x+4], u, v)
			u += dudx
			v += dvdx
		}
	}
}

func finitePt(p geom.Point) bool {
	return !math.IsNaN(p.X) && !math.IsNaN(p.Y) && !math.IsInf(p.X, 0) && !math.IsInf(p.Y, 0)
}
