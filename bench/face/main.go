// Command face measures the face engine's paths on one core against OpenCV's
// Haar cascade run in the same process, and reports memory with all models
// loaded. Ratios, not absolute times, are what to compare across machines.
//
//	go run ./bench/face [-n 200] [-image FILE] [-models-dir DIR] [-json]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/face/models"
)

type result struct {
	Name      string  `json:"name"`
	MedianMS  float64 `json:"median_ms"`
	P95MS     float64 `json:"p95_ms"`
	VsHaar    float64 `json:"speedup_vs_haar"`
	BarMS     float64 `json:"bar_ms,omitempty"`
	BarPassed bool    `json:"bar_passed"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 200, "iterations per path")
	imagePath := flag.String("image", "", "a 640×480 frame with one face (default gocv's images/face.jpg)")
	modelsDir := flag.String("models-dir", "", "model cache directory")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()

	if *modelsDir == "" {
		d, err := models.DefaultDir()
		if err != nil {
			return err
		}
		*modelsDir = d
	}
	if *imagePath == "" {
		*imagePath = filepath.Join(gomodcache(), "gocv.io", "x", "gocv@v0.31.0", "images", "face.jpg")
	}
	img, err := imgio.ReadFile(*imagePath, imgio.Limits{})
	if err != nil {
		return err
	}
	frame, err := face.MatFromImage(img)
	if err != nil {
		return err
	}
	defer frame.Close()

	rssBefore := rssMB()
	face.SetThreads(1) // per-core figures
	e, err := face.New(face.Config{ModelsDir: *modelsDir, Workers: 1})
	if err != nil {
		return err
	}
	defer e.Close()
	haar, err := face.NewHaarBaseline()
	if err != nil {
		return err
	}
	defer haar.Close()
	ctx := context.Background()
	tr := e.NewTracker()
	// Warm up every path once: the first inference allocates buffers.
	if _, err := e.Analyze(ctx, frame, face.Options{Embed: true, PAD: true}); err != nil {
		return err
	}
	rssLoaded := rssMB()

	paths := []struct {
		name string
		bar  float64
		fn   func() error
	}{
		{"haar-frontalface (baseline)", 0, func() error { haar.Detect(frame); return nil }},
		{"track: blazeface+landmarks+pnp", 10, func() error { _, _, err := tr.Track(ctx, frame); return err }},
		{"analyze: detect+landmarks+pose+quality", 0, func() error { _, err := e.Analyze(ctx, frame, face.Options{}); return err }},
		{"analyze full: +embedding+PAD", 60, func() error {
			_, err := e.Analyze(ctx, frame, face.Options{Embed: true, PAD: true})
			return err
		}},
	}
	var results []result
	var haarMS float64
	for _, p := range paths {
		med, p95, err := measure(*n, p.fn)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if haarMS == 0 {
			haarMS = med
		}
		results = append(results, result{Name: p.name, MedianMS: med, P95MS: p95, VsHaar: haarMS / med, BarMS: p.bar, BarPassed: p.bar == 0 || med <= p.bar})
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{
			"frame": fmt.Sprintf("%dx%d", frame.Cols(), frame.Rows()), "threads": face.Threads(),
			"rss_mb_before_models": rssBefore, "rss_mb_models_loaded": rssLoaded, "paths": results,
		})
	}
	fmt.Printf("frame %dx%d, %d OpenCV thread(s), %d iterations per path\n", frame.Cols(), frame.Rows(), face.Threads(), *n)
	fmt.Printf("%-42s %9s %9s %12s %s\n", "path", "median", "p95", "vs Haar", "bar")
	for _, r := range results {
		bar := ""
		if r.BarMS > 0 {
			bar = fmt.Sprintf("≤ %.0f ms: %s", r.BarMS, map[bool]string{true: "pass", false: "FAIL"}[r.BarPassed])
		}
		fmt.Printf("%-42s %7.2fms %7.2fms %11.1f× %s\n", r.Name, r.MedianMS, r.P95MS, r.VsHaar, bar)
	}
	fmt.Printf("RSS: %.0f MB before models, %.0f MB with all models loaded (1 worker)\n", rssBefore, rssLoaded)
	return nil
}

func measure(n int, fn func() error) (median, p95 float64, err error) {
	ts := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		t := time.Now()
		if err := fn(); err != nil {
			return 0, 0, err
		}
		ts = append(ts, float64(time.Since(t).Microseconds())/1000)
	}
	sort.Float64s(ts)
	return ts[len(ts)/2], ts[len(ts)*95/100], nil
}

func rssMB() float64 {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func gomodcache() string {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "pkg", "mod")
}
