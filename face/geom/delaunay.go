package geom

import (
	"cmp"
	"math"
	"slices"
)

// Delaunay triangulates pts with the Bowyer–Watson algorithm and returns
// triangles as indices into pts. Every triangle is counter-clockwise in
// the mathematical sense of its coordinates (positive signed area
// (b−a)×(c−a) > 0; on screen, with Y down, that looks clockwise), starts
// at its smallest index, and the list is sorted, so the output is
// deterministic.
//
// Duplicate (or nearly coincident) points and non-finite points are
// skipped: they appear in no triangle. Fewer than three distinct
// non-collinear points give no triangles.
//
// Robustness: the cavity of each insertion is grown from the triangle
// containing the new point through neighbours whose circumcircle contains
// it, and then further until every new triangle has a strictly positive
// orientation, so cocircular inputs (grids) never produce overlapping or
// inverted triangles.
func Delaunay(pts []Point) [][3]int {
	n := len(pts)
	if n < 3 {
		return nil
	}
	// Normalise to a unit box around the origin for numerical headroom.
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		if !finite(p.X) || !finite(p.Y) {
			continue
		}
		minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
		minY, maxY = math.Min(minY, p.Y), math.Max(maxY, p.Y)
	}
	ext := math.Max(maxX-minX, maxY-minY)
	if !(ext > 0) || !finite(ext) {
		return nil
	}
	cx, cy := (minX+maxX)/2, (minY+maxY)/2

	d := &delaunay{pts: make([]Point, 0, n+3)}
	for _, p := range pts {
		d.pts = append(d.pts, Point{(p.X - cx) / ext, (p.Y - cy) / ext})
	}
	// Super-triangle well outside the unit box.
	const big = 100.0
	d.pts = append(d.pts, Point{-3 * big, -3 * big}, Point{3 * big, 0}, Point{0, 3 * big})
	d.tris = append(d.tris, tri{v: [3]int{n, n + 1, n + 2}, nb: [3]int{-1, -1, -1}})

	// Near-duplicate threshold in normalised units.
	const dupEps = 1e-10
	// Exact duplicates keep their first index; then insert in a serpentine
	// row order so each point is located by a short walk from the last
	// insertion (a Bowyer–Watson classic; the order is deterministic).
	seen := make(map[Point]struct{}, n)
	order := make([]int, 0, n)
	for i, p := range pts {
		if !finite(p.X) || !finite(p.Y) {
			continue
		}
		if _, dup := seen[p]; dup {
			continue
		}
		seen[p] = struct{}{}
		order = append(order, i)
	}
	rows := max(1, int(math.Sqrt(float64(len(order))/2)))
	row := func(i int) int { return min(rows-1, int((d.pts[i].Y+0.5)*float64(rows))) }
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := row(a), row(b)
		if ra != rb {
			return ra - rb
		}
		if ra%2 == 1 {
			return cmp.Compare(d.pts[b].X, d.pts[a].X)
		}
		return cmp.Compare(d.pts[a].X, d.pts[b].X)
	})
	for _, i := range order {
		d.insert(i, dupEps)
	}

	var out [][3]int
	for _, t := range d.tris {
		if t.dead || t.v[0] >= n || t.v[1] >= n || t.v[2] >= n {
			continue
		}
		v := t.v
		// Rotate so the smallest index comes first (keeps orientation).
		for v[0] > v[1] || v[0] > v[2] {
			v = [3]int{v[1], v[2], v[0]}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b [3]int) int {
		for k := 0; k < 3; k++ {
			if a[k] != b[k] {
				return a[k] - b[k]
			}
		}
		return 0
	})
	return out
}

// tri is a triangle with counter-clockwise vertices; nb[k] is the triangle
// across the edge opposite v[k] (from v[k+1] to v[k+2]), or -1.
type tri struct {
	v, nb [3]int
	dead  bool
}

type delaunay struct {
	pts  []Point
	tris []tri
	last int // a live triangle to start point location from

	// Scratch reused between insertions. badMark[t] == stamp marks a
	// cavity triangle, startMark[v] == stamp says byStart[v] is valid; the
	// stamp changes per insertion so nothing needs clearing.
	stamp     int
	bad       []int
	badMark   []int
	queue     []int
	edges     []cavityEdge
	newIdx    []int
	byStart   []int
	startMark []int
}

func (d *delaunay) isBad(t int) bool { return t < len(d.badMark) && d.badMark[t] == d.stamp }

func (d *delaunay) markBad(t int) {
	for len(d.badMark) <= t {
		d.badMark = append(d.badMark, 0)
	}
	d.badMark[t] = d.stamp
	d.bad = append(d.bad, t)
}

type cavityEdge struct {
	a, b  int // directed edge, counter-clockwise around the cavity
	outer int // triangle outside the cavity across a→b, or -1
}

func orient(a, b, c Point) float64 {
	return (b.X-a.X)*(c.Y-a.Y) - (b.Y-a.Y)*(c.X-a.X)
}

// inCircle > 0 when d is strictly inside the circumcircle of the
// counter-clockwise triangle abc.
func inCircle(a, b, c, d Point) float64 {
	adx, ady := a.X-d.X, a.Y-d.Y
	bdx, bdy := b.X-d.X, b.Y-d.Y
	cdx, cdy := c.X-d.X, c.Y-d.Y
	ad := adx*adx + ady*ady
	bd := bdx*bdx + bdy*bdy
	cd := cdx*cdx + cdy*cdy
	return adx*(bdy*cd-bd*cdy) - ady*(bdx*cd-bd*cdx) + ad*(bdx*cdy-bdy*cdx)
}

// locate returns a live triangle containing p (on its boundary included).
func (d *delaunay) locate(p Point) int {
	t := d.last
	if t < 0 || t >= len(d.tris) || d.tris[t].dead {
		t = 0
		for d.tris[t].dead {
			t++
		}
	}
	// Visibility walk; it cannot cycle on a Delaunay triangulation, but the
	// step cap and the fallback scan guard against round-off.
	for steps := 0; steps < 4*len(d.tris)+16; steps++ {
		tr := &d.tris[t]
		moved := false
		for k := 0; k < 3; k++ {
			a, b := d.pts[tr.v[(k+1)%3]], d.pts[tr.v[(k+2)%3]]
			if orient(a, b, p) < 0 && tr.nb[k] >= 0 {
				t = tr.nb[k]
				moved = true
				break
			}
		}
		if !moved {
			return t
		}
	}
	best, bestScore := -1, math.Inf(-1)
	for i := range d.tris {
		tr := &d.tris[i]
		if tr.dead {
			continue
		}
		score := math.Inf(1)
		for k := 0; k < 3; k++ {
			score = math.Min(score, orient(d.pts[tr.v[(k+1)%3]], d.pts[tr.v[(k+2)%3]], p))
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

func (d *delaunay) insert(pi int, dupEps float64) {
	p := d.pts[pi]
	t0 := d.locate(p)
	if t0 < 0 {
		return
	}
	for _, v := range d.tris[t0].v {
		q := d.pts[v]
		if math.Abs(q.X-p.X) <= dupEps && math.Abs(q.Y-p.Y) <= dupEps {
			return // coincides with an inserted point
		}
	}

	d.stamp++
	d.bad = d.bad[:0]
	d.queue = append(d.queue[:0], t0)
	d.markBad(t0)
	for len(d.queue) > 0 {
		t := d.queue[len(d.queue)-1]
		d.queue = d.queue[:len(d.queue)-1]
		for _, nb := range d.tris[t].nb {
			if nb < 0 || d.isBad(nb) {
				continue
			}
			v := d.tris[nb].v
			if inCircle(d.pts[v[0]], d.pts[v[1]], d.pts[v[2]], p) > 0 {
				d.markBad(nb)
				d.queue = append(d.queue, nb)
			}
		}
	}

	// Grow the cavity until p sees every boundary edge strictly from inside;
	// this absorbs round-off in the in-circle tests on cocircular points.
	for {
		d.edges = d.edges[:0]
		grew := false
		for i := 0; i < len(d.bad); i++ {
			tr := &d.tris[d.bad[i]]
			for k := 0; k < 3; k++ {
				nb := tr.nb[k]
				if nb >= 0 && d.isBad(nb) {
					continue
				}
				a, b := tr.v[(k+1)%3], tr.v[(k+2)%3]
				if orient(d.pts[a], d.pts[b], p) <= 0 && nb >= 0 {
					d.markBad(nb)
					grew = true
					continue
				}
				d.edges = append(d.edges, cavityEdge{a, b, nb})
			}
		}
		if !grew {
			break
		}
	}
	for _, e := range d.edges {
		if orient(d.pts[e.a], d.pts[e.b], p) <= 0 {
			// Only possible on the super-triangle hull through round-off;
			// dropping the point is safer than a torn mesh.
			return
		}
	}

	// Replace the cavity by a fan around p, reusing dead slots.
	for _, t := range d.bad {
		d.tris[t].dead = true
	}
	free := d.bad
	if len(d.byStart) < len(d.pts) {
		d.byStart = make([]int, len(d.pts))
		d.startMark = make([]int, len(d.pts))
	}
	d.newIdx = d.newIdx[:0]
	for _, e := range d.edges {
		var idx int
		if len(free) > 0 {
			idx, free = free[0], free[1:]
		} else {
			idx = len(d.tris)
			d.tris = append(d.tris, tri{})
		}
		// Triangle (p, a, b): edge opposite p is a→b.
		d.tris[idx] = tri{v: [3]int{pi, e.a, e.b}, nb: [3]int{e.outer, -1, -1}}
		d.newIdx = append(d.newIdx, idx)
		d.byStart[e.a] = idx
		d.startMark[e.a] = d.stamp
		if e.outer >= 0 {
			o := &d.tris[e.outer]
			for k := 0; k < 3; k++ {
				if o.v[(k+1)%3] == e.b && o.v[(k+2)%3] == e.a {
					o.nb[k] = idx
				}
			}
		}
	}
	for i, e := range d.edges {
		// Edge opposite a is b→p, shared with the new triangle (p, b, c),
		// whose edge p→b is opposite its third vertex.
		if d.startMark[e.b] == d.stamp {
			nb := d.byStart[e.b]
			d.tris[d.newIdx[i]].nb[1] = nb
			d.tris[nb].nb[2] = d.newIdx[i]
		}
	}
	// Dead slots left over (cavity shrank by more than it created) stay
	// dead; they are skipped everywhere.
	if len(d.newIdx) > 0 {
		d.last = d.newIdx[0]
	}
}
