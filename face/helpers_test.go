package face

import (
	"sync"
	"testing"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

// testEngine opens one engine for the package's tests.
var testEngine = sync.OnceValues(func() (*Engine, error) {
	return New(Config{ModelsDir: testenv.ModelsDir(), Workers: 2})
})

func testModelsDir() string { return testenv.ModelsDir() }

func engine(t testing.TB) *Engine {
	t.Helper()
	e, err := testEngine()
	if err != nil {
		testenv.MissingModels(t, err)
	}
	return e
}

// sampleImage returns the path of a photo shipped in a registry package.
func sampleImage(t testing.TB, name string) string {
	t.Helper()
	if name == "face.jpg" || name == "face-detect.jpg" {
		return testenv.GocvImage(t, name)
	}
	return testenv.SampleImage(t, name)
}

func readMat(t testing.TB, path string) gocv.Mat {
	t.Helper()
	m, err := ReadImageFile(path, imgio.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// realData returns a folder of ../shared/data, or skips.
func realData(t testing.TB, sub ...string) string {
	t.Helper()
	return testenv.DataDir(t, sub...)
}
