// Package facetest opens the face engine once per test binary for packages
// whose tests run the real models (loading them takes about a second).
package facetest

import (
	"sync"
	"testing"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/internal/testenv"
)

var shared = sync.OnceValues(func() (*face.Engine, error) {
	return face.New(face.Config{ModelsDir: testenv.ModelsDir(), Workers: 2})
})

// Engine returns the shared two-worker engine. Without models the test
// skips, unless BWSAGENT_REQUIRE_MODELS=1 (make test, CI) makes that a failure.
func Engine(tb testing.TB) *face.Engine {
	tb.Helper()
	e, err := shared()
	if err != nil {
		testenv.MissingModels(tb, err)
	}
	return e
}
