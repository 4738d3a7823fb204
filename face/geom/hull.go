package geom

import (
	"cmp"
	"slices"
)

// ConvexHull returns the corners of the convex hull of pts, counter-
// clockwise for a y-up frame (clockwise on an image); collinear points
// are not corners. Fewer than 3 corners give none.
func ConvexHull(pts []Point) []Point {
	p := slices.Clone(pts)
	slices.SortFunc(p, func(a, b Point) int {
		if a.X != b.X {
			return cmp.Compare(a.X, b.X)
		}
		return cmp.Compare(a.Y, b.Y)
	})
	// Andrew's monotone chain: the lower chain left to right, then the
	// upper one back.
	var h []Point
	for pass := 0; pass < 2 && len(p) > 0; pass++ {
		start := len(h)
		for _, q := range p {
			for len(h) >= start+2 && orient(h[len(h)-2], h[len(h)-1], q) <= 0 {
				h = h[:len(h)-1]
			}
			h = append(h, q)
		}
		h = h[:len(h)-1] // the last point starts the other chain
		slices.Reverse(p)
	}
	if len(h) < 3 {
		return nil
	}
	return h
}

// InsideConvex reports whether q lies inside or on the convex polygon
// hull, in either orientation.
func InsideConvex(hull []Point, q Point) bool {
	if len(hull) < 3 {
		return false
	}
	var pos, neg bool
	for i, a := range hull {
		switch o := orient(a, hull[(i+1)%len(hull)], q); {
		case o > 0:
			pos = true
		case o < 0:
			neg = true
		}
		if pos && neg {
			return false
		}
	}
	return true
}
