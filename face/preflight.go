package face

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gocv.io/x/gocv"
)

// ErrModelLoad marks a model file that OpenCV cannot load.
var ErrModelLoad = errors.New("model file does not load")

// Preflight loads model files in child processes before the daemon loads
// them itself. OpenCV reports a malformed network with a C++ exception that
// gocv does not catch, so loading a bad file in the daemon aborts it
// (SIGABRT) instead of returning an error; in a child only the child dies.
// Files that loaded are remembered by sha256 and OpenCV version, so each
// model version costs one child per file once.
type Preflight struct {
	// Command is the child's argv before the file: Command + [file] must
	// load the file with LoadCheck and exit 0 only if it loaded.
	Command []string
	// StateFile remembers the files that loaded; empty: check every time.
	StateFile string
	// Timeout bounds each child; zero: 2 minutes.
	Timeout time.Duration
}

// preflightState is the StateFile: the "opencv-version sha256" pairs that
// loaded.
type preflightState struct {
	Loaded []string `json:"loaded"`
}

// Check loads each file in its own child process, skipping files known to
// load. The error names the first file that does not load and wraps
// ErrModelLoad.
func (p Preflight) Check(ctx context.Context, files []string) error {
	if len(p.Command) == 0 {
		return errors.New("model preflight: no child command")
	}
	state := p.readState()
	known := map[string]bool{}
	for _, k := range state.Loaded {
		known[k] = true
	}
	added := false
	defer func() {
		if added && p.StateFile != "" {
			// Only a cache: failing to write it costs a re-check next start.
			_ = p.writeState(state)
		}
	}()
	for _, f := range files {
		sum, err := fileSHA256(f)
		if err != nil {
			return fmt.Errorf("model %s: %w", f, err)
		}
		key := gocv.OpenCVVersion() + " " + sum
		if known[key] {
			continue
		}
		if err := p.child(ctx, f); err != nil {
			return err
		}
		known[key] = true
		state.Loaded = append(state.Loaded, key)
		added = true
	}
	return nil
}

// CheckModels checks the engine's model files in modelsDir (verified
// against the manifest first, as New does).
func (p Preflight) CheckModels(ctx context.Context, modelsDir string) error {
	paths, err := ModelFiles(modelsDir)
	if err != nil {
		return err
	}
	files := make([]string, 0, len(paths))
	for _, f := range paths {
		files = append(files, f)
	}
	slices.Sort(files)
	return p.Check(ctx, files)
}

func (p Preflight) child(ctx context.Context, file string) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append(slices.Clone(p.Command[1:]), file)
	cmd := exec.CommandContext(ctx, p.Command[0], args...)
	cmd.Env = append(os.Environ(), "OPENCV_LOG_LEVEL=ERROR")
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("model %s: loading it in a child process: %w", file, ctx.Err())
	}
	return fmt.Errorf("%w: %s: OpenCV: %s (%v); run 'bwsagent models fetch' to repair the cache",
		ErrModelLoad, file, childReason(stderr.String()), err)
}

// childReason picks OpenCV's message out of the child's stderr: the
// "what():" line of an uncaught exception, else the last line.
func childReason(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if _, what, ok := strings.Cut(l, "what():"); ok {
			return strings.TrimSpace(what)
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "goroutine ") {
			return l
		}
	}
	return "no message"
}

// LoadCheck loads one ONNX file with OpenCV's DNN module and frees it: the
// child's side of Preflight. A malformed file may abort the process.
func LoadCheck(file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return fmt.Errorf("%w: %s: empty or not a regular file", ErrModelLoad, file)
	}
	n := gocv.ReadNetFromONNX(file)
	defer n.Close()
	if n.Empty() {
		return fmt.Errorf("%w: %s: OpenCV read an empty network", ErrModelLoad, file)
	}
	return nil
}

func (p Preflight) readState() preflightState {
	var s preflightState
	if p.StateFile == "" {
		return s
	}
	b, err := os.ReadFile(p.StateFile)
	if err != nil || json.Unmarshal(b, &s) != nil {
		return preflightState{}
	}
	return s
}

// writeState replaces the state file atomically, so a crash leaves the old
// one or the new one.
func (p Preflight) writeState(s preflightState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.StateFile), ".preflight-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p.StateFile)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// limitedWriter keeps the first n bytes and discards the rest, so a child
// that floods stderr cannot grow the daemon's memory.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	if l.n > 0 {
		k := min(len(b), l.n)
		if _, err := l.w.Write(b[:k]); err != nil {
			return 0, err
		}
		l.n -= k
	}
	return len(b), nil
}
