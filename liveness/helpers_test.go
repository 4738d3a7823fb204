package liveness

import (
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/facetest"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/face/models"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

func testModelsDir() string { return testenv.ModelsDir() }

func engine(t testing.TB) *face.Engine { return facetest.Engine(t) }

func checker(t testing.TB) *Checker {
	t.Helper()
	c, err := New(engine(t), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sampleImage returns the path of a photo shipped in a registry package:
// gocv's module images or the @vladmandic/face-api demo photos.
func sampleImage(t testing.TB, name string) string {
	t.Helper()
	var path string
	switch name {
	case "face.jpg", "face-detect.jpg":
		path = filepath.Join(gocvDir(), "images", name)
	default:
		m, _ := models.Default()
		p, _ := m.Lookup("@vladmandic/face-api")
		path = models.Cache{Dir: testModelsDir()}.Path(p, "demo/"+name)
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("BWSAGENT_REQUIRE_MODELS") == "1" {
			t.Fatalf("test image %s missing (run 'make models'): %v", name, err)
		}
		t.Skipf("test image %s missing (run 'make models'): %v", name, err)
	}
	return path
}

func gocvDir() string {
	// The module cache path of gocv v0.31.0; go.mod pins it.
	d := os.Getenv("GOMODCACHE")
	if d == "" {
		d = filepath.Join(os.Getenv("HOME"), "go", "pkg", "mod")
		if gp := os.Getenv("GOPATH"); gp != "" {
			d = filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
		}
	}
	return filepath.Join(d, "gocv.io", "x", "gocv@v0.31.0")
}

func readMat(t testing.TB, path string) gocv.Mat {
	t.Helper()
	img, err := imgio.ReadFile(path, imgio.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := face.MatFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// realData returns a folder of ../shared/data, or skips.
func realData(t testing.TB, sub ...string) string {
	t.Helper()
	dir := os.Getenv("BWSAGENT_TESTDATA")
	if dir == "" {
		dir = findShared()
	}
	p := filepath.Join(append([]string{dir}, sub...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real test data not found at %s (set BWSAGENT_TESTDATA to the shared data folder): %v", p, err)
	}
	return p
}

// findShared walks up from the package to go.mod and returns ../shared/data
// beside the module root.
func findShared() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "data")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Join("..", "shared", "data")
		}
		dir = parent
	}
}
