package face

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

// The observer hears every model an analysis and a track run, once each
// for one face, with a plausible duration.
func TestObserver(t *testing.T) {
	engine(t) // skips without models
	var mu sync.Mutex
	seen := map[string][]time.Duration{}
	e, err := New(Config{ModelsDir: testenv.ModelsDir(), Observe: func(model string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen[model] = append(seen[model], d)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img := readMat(t, sampleImage(t, "face.jpg"))
	defer img.Close()
	ctx := context.Background()
	if _, err := e.Analyze(ctx, img, Options{Embed: true, PAD: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.NewTracker().Track(ctx, img); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range []string{ModelDetect, ModelLandmarks, ModelEmbed, ModelPAD, ModelTrack} {
		ds := seen[m]
		if len(ds) == 0 || slices.ContainsFunc(ds, func(d time.Duration) bool { return d <= 0 || d > 10*time.Second }) {
			t.Errorf("%s: durations %v", m, ds)
		}
	}
	if len(seen) != 5 {
		t.Errorf("models observed: %v", seen)
	}
}
