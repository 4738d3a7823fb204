package session

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bwsagent/bwsagent/agent/bws"
)

func TestMotionPercent(t *testing.T) {
	const w, h = 213, 160
	rng := rand.New(rand.NewPCG(1, 2))
	base := make([]uint8, (w+80)*(h+80))
	// A smooth random texture (noise box-blurred twice), like a camera
	// image: the coarse search relies on neighbouring pixels correlating.
	bw, bh := w+80, h+80
	noise := make([]float64, bw*bh)
	for i := range noise {
		noise[i] = float64(rng.IntN(256))
	}
	for range 2 {
		next := make([]float64, len(noise))
		for y := range bh {
			for x := range bw {
				s, n := 0.0, 0.0
				for j := max(0, y-2); j <= min(bh-1, y+2); j++ {
					for i := max(0, x-2); i <= min(bw-1, x+2); i++ {
						s += noise[j*bw+i]
						n++
					}
				}
				next[y*bw+x] = s / n
			}
		}
		noise = next
	}
	for i := range base {
		base[i] = uint8(min(255, max(0, (noise[i]-128)*4+128)))
	}
	// view returns the w×h window of base shifted by (dx, dy): the scene
	// moved by (-dx, -dy).
	view := func(dx, dy int) []uint8 {
		out := make([]uint8, w*h)
		for y := range h {
			copy(out[y*w:(y+1)*w], base[(y+40+dy)*(w+80)+40+dx:])
		}
		return out
	}
	maxShift := func(dx, dy float64) float64 { return 100 * hypot(dx, dy) / hypot(w/4, h/4) }
	ref := view(0, 0)
	for _, tc := range []struct {
		name   string
		dx, dy int
	}{{"still", 0, 0}, {"right 10", 10, 0}, {"down 7", 0, 7}, {"diag odd", -13, 9}, {"far", 30, -25}} {
		t.Run(tc.name, func(t *testing.T) {
			got := MotionPercent(ref, view(tc.dx, tc.dy), w, h)
			want := maxShift(float64(tc.dx), float64(tc.dy))
			if d := got - want; d < -0.5 || d > 0.5 {
				t.Errorf("MotionPercent = %.2f, want %.2f", got, want)
			}
		})
	}
	if got := MotionPercent(ref, ref[:10], w, h); got != 0 {
		t.Errorf("size mismatch: %g", got)
	}
}

func hypot(a, b float64) float64 {
	return sqrt(a*a + b*b)
}

func sqrt(x float64) float64 {
	z := x
	for range 50 {
		if z == 0 {
			return 0
		}
		z -= (z*z - x) / (2 * z)
	}
	return z
}

func TestParseClaims(t *testing.T) {
	enc := func(payload string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	for _, tc := range []struct {
		name, tok string
		wantTries int
		wantCh    int // arrays
		wantErr   bool
	}{
		{"verify liveness", enc(`{"task":259}`), 3, 0, false},
		{"enroll challenge", enc(`{"task":803,"challenge":"[[\"left\",\"right\",\"down\"],[\"up\",\"down\",\"left\"]]"}`), 3, 2, false},
		{"task as string", enc(`{"task":"291"}`), 3, 0, false},
		{"bad challenge", enc(`{"task":803,"challenge":"[[\"sideways\"]]"}`), 0, 0, true},
		{"no task", enc(`{}`), 0, 0, true},
		{"two parts", "a.b", 0, 0, true},
		{"not base64", "a.!!!.c", 0, 0, true},
		{"huge", strings.Repeat("a", maxTokenLen+1), 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseClaims(tc.tok)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				return
			}
			if c.Task.MaxTries() != tc.wantTries || len(c.Challenge) != tc.wantCh {
				t.Errorf("claims %+v", c)
			}
			if tc.wantCh > 0 && c.Challenge[0][0] != bws.Left {
				t.Errorf("challenge %v", c.Challenge)
			}
		})
	}
}

func FuzzParseClaims(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJ0YXNrIjoyNTl9.sig")
	f.Fuzz(func(t *testing.T, s string) { _, _ = parseClaims(s) })
}
