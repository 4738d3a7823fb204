package enroll

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/bwsagent/bwsagent/face"
)

func randomUnit(r *rand.Rand, dim int) face.Embedding {
	v := make(face.Embedding, dim)
	var n float64
	for i := range v {
		x := r.NormFloat64()
		v[i] = float32(x)
		n += x * x
	}
	n = math.Sqrt(n)
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
	return v
}

// near returns a unit vector with cosine ≈ cos to v.
func near(r *rand.Rand, v face.Embedding, cos float64) face.Embedding {
	o := randomUnit(r, len(v))
	// Remove the component along v, then mix.
	var d float64
	for i := range v {
		d += float64(v[i]) * float64(o[i])
	}
	out := make(face.Embedding, len(v))
	var n float64
	for i := range v {
		x := float64(o[i]) - d*float64(v[i])
		out[i] = float32(x)
		n += x * x
	}
	s := math.Sqrt(1 - cos*cos)
	for i := range out {
		out[i] = float32(cos*float64(v[i]) + s*float64(out[i])/math.Sqrt(n))
	}
	return out
}

func TestFuse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	id := randomUnit(r, 512)
	samples := []Sample{{near(r, id, 0.7), 0.9}, {near(r, id, 0.7), 0.8}, {near(r, id, 0.7), 0.2}}
	tpl, err := Fuse(samples)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Model != face.EmbeddingModel || tpl.Quality != 0.9 {
		t.Errorf("template model %q quality %v", tpl.Model, tpl.Quality)
	}
	fused, _ := face.Similarity(tpl.Vector, id)
	// Equal weights would give 0.7/√(0.49+0.51/3) ≈ 0.86; the low-quality
	// sample counts less, so ≈ 0.84.
	if fused < 0.8 {
		t.Errorf("fused template scores %.3f against the identity, single samples 0.7: fusion must help", fused)
	}
	if _, err := Fuse(nil); !errors.Is(err, ErrNoSamples) {
		t.Errorf("Fuse(nil) = %v", err)
	}
	if _, err := Fuse([]Sample{{randomUnit(r, 4), 1}, {randomUnit(r, 5), 1}}); !errors.Is(err, ErrDimensionChange) {
		t.Errorf("Fuse of mixed dimensions = %v", err)
	}
}

func TestVerify(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	id := randomUnit(r, 512)
	ts := []Template{
		{Model: face.EmbeddingModel, Vector: near(r, id, 0.5), Quality: 0.5},
		{Model: face.EmbeddingModel, Vector: near(r, id, 0.8), Quality: 0.9},
		{Model: "old-model", Vector: id, Quality: 1},
	}
	s, err := Verify(id, ts)
	if err != nil || math.Abs(s-0.8) > 1e-3 {
		t.Errorf("Verify = %.3f, %v; want the best current-model score 0.8", s, err)
	}
	if _, err := Verify(id, ts[2:]); !errors.Is(err, ErrNoTemplates) {
		t.Errorf("Verify against stale templates only = %v, want ErrNoTemplates", err)
	}
	best := KeepBest(ts, 2)
	if len(best) != 2 || best[0].Quality != 1 || best[1].Quality != 0.9 {
		t.Errorf("KeepBest = %+v", best)
	}
}

func TestGalleryIdentify(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	g := NewGallery(512)
	ids := map[int64]face.Embedding{}
	for i := int64(1); i <= 10000; i++ { // enough rows for the parallel scan
		ids[i] = randomUnit(r, 512)
		if err := g.Add(i, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	probe := near(r, ids[4711], 0.6)
	ms, err := g.Identify(probe, 5, 0.375)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ClassID != 4711 || math.Abs(ms[0].Score-0.6) > 0.01 {
		t.Fatalf("Identify = %+v, want class 4711 at ≈0.6 and no impostor above 0.375", ms)
	}
	// A second template of the same class: the class appears once, with its best score.
	if err := g.Add(4711, near(r, ids[4711], 0.99)); err != nil {
		t.Fatal(err)
	}
	ms, _ = g.Identify(probe, 5, 0.1)
	seen := map[int64]bool{}
	for i, m := range ms {
		if seen[m.ClassID] || (i > 0 && m.Score > ms[i-1].Score) {
			t.Fatalf("duplicate or unsorted matches: %+v", ms)
		}
		seen[m.ClassID] = true
	}
	g.Remove(4711)
	if g.Len() != 9999 {
		t.Fatalf("Len after Remove = %d", g.Len())
	}
	if ms, _ := g.Identify(probe, 5, 0.375); len(ms) != 0 {
		t.Fatalf("removed class still identified: %+v", ms)
	}
	if _, err := g.Identify(randomUnit(r, 3), 1, 0); !errors.Is(err, ErrDimensionChange) {
		t.Errorf("wrong probe dimension = %v", err)
	}
}

// TestQuantizationError bounds the int8 score error against float32 cosine.
func TestQuantizationError(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	g := NewGallery(512)
	var vs []face.Embedding
	for i := 0; i < 2000; i++ {
		v := randomUnit(r, 512)
		vs = append(vs, v)
		_ = g.Add(int64(i), v)
	}
	worst := 0.0
	for trial := 0; trial < 20; trial++ {
		target := vs[r.IntN(len(vs))]
		probe := near(r, target, 0.2+0.7*r.Float64())
		ms, _ := g.Identify(probe, len(vs), -1)
		for _, m := range ms {
			exact, _ := face.Similarity(probe, vs[m.ClassID])
			worst = math.Max(worst, math.Abs(exact-m.Score))
		}
	}
	if worst > 0.005 {
		t.Fatalf("int8 score error %.4f, want ≤ 0.005", worst)
	}
	t.Logf("worst int8 score error %.4f", worst)
}

func FuzzGallery(f *testing.F) {
	f.Add(int64(1), float32(0.5), 3)
	f.Fuzz(func(t *testing.T, id int64, x float32, k int) {
		g := NewGallery(4)
		v := face.Embedding{x, -x, x * 2, float32(math.NaN())}
		_ = g.Add(id, v)
		if _, err := g.Identify(v, k, 0); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkMemoryRead is the memory-bandwidth ceiling for BenchmarkIdentify:
// the runtime's vectorised byte search over a buffer the size of the 1M
// gallery, split over as many goroutines as Identify uses. Identify's MB/s
// divided by this is the fraction of the limit reached.
func BenchmarkMemoryRead(b *testing.B) {
	buf := make([]byte, 1_000_000*512)
	for i := range buf {
		buf[i] = 1
	}
	parts := runtime.GOMAXPROCS(0)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for p := 0; p < parts; p++ {
			wg.Add(1)
			go func(part []byte) {
				defer wg.Done()
				if bytes.IndexByte(part, 0) != -1 {
					panic("zero byte")
				}
			}(buf[p*len(buf)/parts : (p+1)*len(buf)/parts])
		}
		wg.Wait()
	}
}

func TestDotInt8MatchesPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{32, 64, 512, 1024, 17, 3} {
		a, b := make([]int8, n), make([]int8, n)
		for i := range a {
			a[i], b[i] = int8(r.IntN(255)-127), int8(r.IntN(255)-127)
		}
		a[0], b[0] = -127, -127 // extremes
		if got, want := dotInt8(a, b), dotInt8Go(a, b); got != want {
			t.Errorf("n=%d: dotInt8 = %d, portable %d", n, got, want)
		}
	}
}

func FuzzDotInt8(f *testing.F) {
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) / 2
		a, b := make([]int8, n), make([]int8, n)
		for i := 0; i < n; i++ {
			a[i], b[i] = int8(data[i]), int8(data[n+i])
		}
		if got, want := dotInt8(a, b), dotInt8Go(a, b); got != want {
			t.Fatalf("dotInt8 = %d, portable %d", got, want)
		}
	})
}

// BenchmarkIdentify measures a 1:N search over n 512-d templates and reports
// the memory bandwidth reached (bytes of templates scanned per second).
func BenchmarkIdentify(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(9, 10))
			g := NewGallery(512)
			base := randomUnit(r, 512)
			g.vecs = make([]int8, 0, n*512)
			g.scales = make([]float32, 0, n)
			for i := 0; i < n; i++ {
				// Quantizing a fresh random vector per row dominates set-up
				// time; rotate one vector's values instead.
				row := make(face.Embedding, 512)
				for j := range row {
					row[j] = base[(j+i)%512]
				}
				_ = g.Add(int64(i), row)
			}
			probe := randomUnit(r, 512)
			b.SetBytes(int64(n) * 512)
			b.ResetTimer()
			for b.Loop() {
				if _, err := g.Identify(probe, 20, 0.375); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
