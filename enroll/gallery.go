package enroll

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/bwsagent/bwsagent/face"
)

// Gallery is an in-memory 1:N index over the templates of one storage and
// partition. Vectors are stored as int8 in one contiguous slice, each row
// scaled so its largest component is ±127: a quarter of float32's memory
// traffic, which is what a 1:N scan is bound by, with a score error below
// 0.005 (measured in tests), far inside the gap between genuine and impostor
// scores. The dot product runs in AVX2 where the CPU has it.
//
// A Gallery is safe for concurrent use; Add and Remove take a write lock.
type Gallery struct {
	mu      sync.RWMutex
	dim     int
	vecs    []int8    // len(ids) × dim
	scales  []float32 // per row: the float value of one int8 step
	ids     []int64
	workers int
}

// NewGallery makes an empty gallery for dim-dimensional templates.
func NewGallery(dim int) *Gallery {
	return &Gallery{dim: dim, workers: runtime.GOMAXPROCS(0)}
}

// quantize stores v in dst with the largest |component| at ±127 and returns
// the value of one step. NaN components count as 0.
func quantize(dst []int8, v face.Embedding) float32 {
	var m float64
	for _, x := range v {
		if a := math.Abs(float64(x)); a > m && !math.IsInf(a, 0) {
			m = a
		}
	}
	if m == 0 {
		clear(dst)
		return 0
	}
	step := m / 127
	for i, x := range v {
		q := math.Round(float64(x) / step)
		if math.IsNaN(q) {
			q = 0
		}
		dst[i] = int8(math.Max(-127, math.Min(127, q)))
	}
	return float32(step)
}

// Add appends a template of class id (a class may have several).
func (g *Gallery) Add(id int64, v face.Embedding) error {
	if len(v) != g.dim {
		return fmt.Errorf("gallery: %w: %d, want %d", ErrDimensionChange, len(v), g.dim)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.ids)
	g.vecs = append(g.vecs, make([]int8, g.dim)...)
	g.scales = append(g.scales, quantize(g.vecs[n*g.dim:], v))
	g.ids = append(g.ids, id)
	return nil
}

// Remove deletes every template of class id.
func (g *Gallery) Remove(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := 0
	for r, cid := range g.ids {
		if cid == id {
			continue
		}
		if w != r {
			g.ids[w], g.scales[w] = cid, g.scales[r]
			copy(g.vecs[w*g.dim:(w+1)*g.dim], g.vecs[r*g.dim:(r+1)*g.dim])
		}
		w++
	}
	g.ids, g.scales = g.ids[:w], g.scales[:w]
	g.vecs = g.vecs[:w*g.dim]
}

// Len is the number of templates.
func (g *Gallery) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.ids)
}

// Match is one identification candidate.
type Match struct {
	ClassID int64
	Score   float64 // cosine similarity
}

// Identify returns up to k classes whose best template scores above
// threshold, best first.
func (g *Gallery) Identify(probe face.Embedding, k int, threshold float64) ([]Match, error) {
	if len(probe) != g.dim {
		return nil, fmt.Errorf("identify: %w: %d, want %d", ErrDimensionChange, len(probe), g.dim)
	}
	if k <= 0 {
		return nil, nil
	}
	q := make([]int8, g.dim)
	qstep := quantize(q, probe)

	g.mu.RLock()
	defer g.mu.RUnlock()
	n := len(g.ids)
	parts := min(g.workers, max(1, n/4096)) // small galleries: no goroutines
	results := make([][]Match, parts)
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := p*n/parts, (p+1)*n/parts
		scan := func(p int) {
			results[p] = g.scan(q, qstep, lo, hi, threshold)
		}
		if parts == 1 {
			scan(p)
			continue
		}
		wg.Add(1)
		go func(p int) { defer wg.Done(); scan(p) }(p)
	}
	wg.Wait()

	best := map[int64]float64{}
	for _, rs := range results {
		for _, m := range rs {
			if s, ok := best[m.ClassID]; !ok || m.Score > s {
				best[m.ClassID] = m.Score
			}
		}
	}
	out := make([]Match, 0, len(best))
	for id, s := range best {
		out = append(out, Match{ClassID: id, Score: s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ClassID < out[j].ClassID
	})
	if len(out) > k {
		out = out[:k]
	}
	return out, nil
}

// scan scores rows [lo,hi) and returns those above threshold.
func (g *Gallery) scan(q []int8, qstep float32, lo, hi int, threshold float64) []Match {
	var out []Match
	d := g.dim
	for r := lo; r < hi; r++ {
		score := float64(float32(dotInt8(q, g.vecs[r*d:(r+1)*d])) * qstep * g.scales[r])
		if score > threshold {
			out = append(out, Match{ClassID: g.ids[r], Score: score})
		}
	}
	return out
}

// dotInt8Go is the portable inner loop; four accumulators let the CPU
// overlap the multiply-adds.
func dotInt8Go(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += int32(a[i]) * int32(b[i])
		s1 += int32(a[i+1]) * int32(b[i+1])
		s2 += int32(a[i+2]) * int32(b[i+2])
		s3 += int32(a[i+3]) * int32(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}
