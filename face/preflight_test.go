package face

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

// preflightChildEnv turns the test binary into Preflight's child: it runs
// TestPreflightChild, which loads the file named in the environment.
const preflightChildEnv = "BWSAGENT_TEST_PREFLIGHT_CHILD"

// TestPreflightChild is the child process of the preflight tests, not a
// test of its own.
func TestPreflightChild(t *testing.T) {
	file := os.Getenv(preflightChildEnv)
	if file == "" {
		t.Skip("only runs as the preflight tests' child process")
	}
	if err := LoadCheck(file); err != nil {
		t.Fatal(err)
	}
}

// testPreflight runs the test binary as the child. The file is passed in
// the environment because a test binary takes no positional arguments: the
// command is a shell that moves its last argument there.
func testPreflight(t *testing.T) Preflight {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Preflight{
		Command:   []string{"/bin/sh", "-c", `export ` + preflightChildEnv + `="$1"; exec "$0" -test.run='^TestPreflightChild$' -test.count=1`, exe},
		StateFile: filepath.Join(t.TempDir(), "preflight.json"),
	}
}

func TestPreflightRefusesBadModels(t *testing.T) {
	dir := t.TempDir()
	good, err := ModelFiles(testenv.ModelsDir())
	if err != nil {
		testenv.MissingModels(t, err)
	}
	real, err := os.ReadFile(good[fileDetect])
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file string
		want       string // in the error
	}{
		{"garbage", write("garbage.onnx", []byte(strings.Repeat("not a network\n", 400))), "Failed to parse ONNX model"},
		{"truncated", write("truncated.onnx", real[:len(real)/3]), "ONNX"},
		{"empty", write("empty.onnx", nil), "empty"},
		{"missing", filepath.Join(dir, "missing.onnx"), "no such file"},
	}
	p := testPreflight(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(context.Background(), []string{good[fileDetect], tt.file})
			if err == nil {
				t.Fatal("bad model passed the preflight")
			}
			if !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name %s and say %q", err, tt.file, tt.want)
			}
			if tt.name != "missing" && !errors.Is(err, ErrModelLoad) {
				t.Errorf("error %v is not ErrModelLoad", err)
			}
		})
	}
	// This process is still alive, which is the point; and a good file
	// that loaded is remembered, so a second check runs no child.
	state, err := os.ReadFile(p.StateFile)
	if err != nil || !strings.Contains(string(state), sha(t, good[fileDetect])) {
		t.Fatalf("state %s, %v: the good file should be remembered", state, err)
	}
	p.Command = []string{"/bin/false"}
	if err := p.Check(context.Background(), []string{good[fileDetect]}); err != nil {
		t.Errorf("known-good file re-checked: %v", err)
	}
}

func TestPreflightCheckModels(t *testing.T) {
	testenv.RequireModels(t)
	p := testPreflight(t)
	if err := p.CheckModels(context.Background(), testenv.ModelsDir()); err != nil {
		t.Fatal(err)
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	s, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
