package face

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestDetectCounts pins detection on registry photos: a portrait and group
// photos whose faces were counted by eye.
func TestDetectCounts(t *testing.T) {
	e := engine(t)
	tests := []struct {
		image string
		faces int
	}{
		{"face.jpg", 1}, {"face-detect.jpg", 1},
		{"sample1.jpg", 3}, {"sample2.jpg", 3}, {"sample3.jpg", 3},
		{"sample4.jpg", 4}, {"sample5.jpg", 5}, {"sample6.jpg", 4},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			m := readMat(t, sampleImage(t, tt.image))
			defer m.Close()
			faces, err := e.Detect(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) != tt.faces {
				t.Fatalf("%d faces, want %d", len(faces), tt.faces)
			}
			for _, f := range faces {
				if f.Score < 0.9 || f.Box.W < 100 {
					t.Errorf("weak or tiny face: %+v", f.Box)
				}
				if f.Warnings == nil {
					t.Error("Warnings is nil; callers serialise it as an array")
				}
				if (len(faces) > 1) != contains(f.Warnings, WarnMultipleFaces) {
					t.Errorf("MultipleFacesFound warning = %v with %d faces", f.Warnings, len(faces))
				}
				// Every landmark lies near the face box.
				for i, p := range f.Landmarks {
					if p.X < f.Box.X-0.2*f.Box.W || p.X > f.Box.X+1.2*f.Box.W || p.Y < f.Box.Y-0.2*f.Box.H || p.Y > f.Box.Y+1.2*f.Box.H {
						t.Fatalf("landmark %d at %+v is outside face box %+v", i, p, f.Box)
					}
				}
			}
		})
	}
}

// TestNoFaceInBackground: an image without a face gives no face, not an error.
func TestNoFaceInBackground(t *testing.T) {
	e := engine(t)
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 160, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer m.Close()
	s, err := e.Analyze(context.Background(), m, Options{Embed: true, PAD: true})
	if err != nil || len(s.Faces) != 0 || s.Primary != -1 || s.Embedding != nil {
		t.Fatalf("Analyze(plain image) = %d faces, primary %d, err %v", len(s.Faces), s.Primary, err)
	}
}

// TestMirrorFlipsYaw: the engine reports pose in the image as it is, so a
// mirrored image has the opposite yaw and roll and the same pitch.
func TestMirrorFlipsYaw(t *testing.T) {
	e := engine(t)
	for _, name := range []string{"face.jpg", "face-detect.jpg"} {
		m := readMat(t, sampleImage(t, name))
		flipped := gocv.NewMat()
		gocv.Flip(m, &flipped, 1)
		a := primary(t, e, m)
		b := primary(t, e, flipped)
		m.Close()
		flipped.Close()
		if math.Abs(a.Pose.Yaw+b.Pose.Yaw) > 4 || math.Abs(a.Pose.Pitch-b.Pose.Pitch) > 4 || math.Abs(a.Pose.Roll+b.Pose.Roll) > 4 {
			t.Errorf("%s: pose %+v, mirrored %+v: want yaw and roll negated, pitch kept", name, a.Pose, b.Pose)
		}
	}
}

// TestPoseSignsOnLabelledPhotos uses real photos of one person labelled by
// eye (../shared/data/headpose): every labelled turn must have the right sign.
func TestPoseSignsOnLabelledPhotos(t *testing.T) {
	e := engine(t)
	dir := realData(t, "headpose", "aws_headpose_testIMs")
	tests := []struct {
		file       string
		yaw, pitch int // expected sign; 0 = not labelled
	}{
		{"IMG_1233.JPG", +1, 0}, {"IMG_1234.JPG", -1, 0}, {"IMG_1235.JPG", -1, 0},
		{"IMG_1236.JPG", 0, +1}, {"IMG_1237.JPG", +1, +1}, {"IMG_1238.JPG", -1, +1},
		{"IMG_1240.JPG", +1, 0}, {"IMG_1241.JPG", -1, 0}, {"IMG_1242.JPG", +1, +1},
		{"IMG_1242.jpeg", +1, +1}, // stored rotated 180° with an EXIF orientation tag
		{"IMG_1243.JPG", -1, +1}, {"IMG_1244.JPG", 0, +1}, {"IMG_1245.JPG", +1, -1},
		{"IMG_1246.JPG", -1, -1}, {"IMG_1247.JPG", 0, -1},
	}
	for _, tt := range tests {
		m := readMat(t, filepath.Join(dir, tt.file))
		f := primary(t, e, m)
		m.Close()
		if tt.yaw != 0 && (f.Pose.Yaw*float64(tt.yaw) < 5) {
			t.Errorf("%s: yaw %+.1f, want sign %+d", tt.file, f.Pose.Yaw, tt.yaw)
		}
		if tt.pitch != 0 && (f.Pose.Pitch*float64(tt.pitch) < 5) {
			t.Errorf("%s: pitch %+.1f, want sign %+d", tt.file, f.Pose.Pitch, tt.pitch)
		}
	}
}

// TestMatching: a face matches a resized and slightly rotated copy of itself
// and no face of another person in the sample photos.
func TestMatching(t *testing.T) {
	e := engine(t)
	m := readMat(t, sampleImage(t, "face.jpg"))
	defer m.Close()
	a := embedding(t, e, m)

	rot := gocv.GetRotationMatrix2D(image.Pt(m.Cols()/2, m.Rows()/2), 8, 0.8)
	defer rot.Close()
	moved := gocv.NewMat()
	defer moved.Close()
	gocv.WarpAffine(m, &moved, rot, image.Pt(m.Cols(), m.Rows()))
	if s, _ := Similarity(a, embedding(t, e, moved)); s < 0.7 {
		t.Errorf("same face rotated and scaled: similarity %.3f, want ≥ 0.7", s)
	}
	for _, name := range []string{"sample1.jpg", "sample2.jpg", "sample3.jpg", "sample4.jpg", "sample5.jpg", "sample6.jpg"} {
		g := readMat(t, sampleImage(t, name))
		s, err := e.Analyze(context.Background(), g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range s.Faces {
			b, err := e.Embed(context.Background(), g, f)
			if err != nil {
				t.Fatal(err)
			}
			if sim, _ := Similarity(a, b); sim > ThresholdFMR01 {
				t.Errorf("%s: another person scores %.3f, above the threshold %.3f", name, sim, ThresholdFMR01)
			}
		}
		g.Close()
	}
}

// TestMatchingRealIdentities: two photos of the same LFW person match, photos
// of two different people do not.
func TestMatchingRealIdentities(t *testing.T) {
	e := engine(t)
	dir := realData(t, "identities", "lfw_deepfunneled_min10")
	emb := func(person, file string) Embedding {
		m := readMat(t, filepath.Join(dir, person, file))
		defer m.Close()
		return embedding(t, e, m)
	}
	a1 := emb("Tony_Blair", "Tony_Blair_0001.jpg")
	a2 := emb("Tony_Blair", "Tony_Blair_0002.jpg")
	b := emb("George_W_Bush", "George_W_Bush_0001.jpg")
	if s, _ := Similarity(a1, a2); s < ThresholdFMR01 {
		t.Errorf("same person: %.3f below threshold", s)
	}
	if s, _ := Similarity(a1, b); s > ThresholdFMR1 {
		t.Errorf("different people: %.3f above threshold", s)
	}
}

// golden pins the exact outputs on one image: if channel order,
// normalisation, crop geometry or alignment of any model changes, these move
// far beyond the tolerance (each of those changes moves FNMR by up to an order
// of magnitude). Rewrite with -update only for an intended model change.
type golden struct {
	Box          [4]float64   `json:"box"`
	Landmarks    [][2]float64 `json:"landmarks_0_30_36_45_48_54"`
	Pose         [3]float64   `json:"pose"`
	EmbeddingTop []float64    `json:"embedding_first8"`
	PAD          float64      `json:"pad"`
	TrackBox     [4]float64   `json:"track_box"`
}

func TestPreprocessingGolden(t *testing.T) {
	e := engine(t)
	m := readMat(t, sampleImage(t, "face.jpg"))
	defer m.Close()
	s, err := e.Analyze(context.Background(), m, Options{Embed: true, PAD: true})
	if err != nil || s.Primary < 0 {
		t.Fatalf("Analyze: %v, primary %d", err, s.Primary)
	}
	f := s.Faces[s.Primary]
	tf, ok, err := e.NewTracker().Track(context.Background(), m)
	if err != nil || !ok {
		t.Fatalf("Track: %v %v", ok, err)
	}
	got := golden{
		Box:      [4]float64{f.Box.X, f.Box.Y, f.Box.W, f.Box.H},
		Pose:     [3]float64{f.Pose.Yaw, f.Pose.Pitch, f.Pose.Roll},
		PAD:      s.PAD,
		TrackBox: [4]float64{tf.Box.X, tf.Box.Y, tf.Box.W, tf.Box.H},
	}
	for _, i := range []int{0, 30, 36, 45, 48, 54} {
		got.Landmarks = append(got.Landmarks, [2]float64{f.Landmarks[i].X, f.Landmarks[i].Y})
	}
	for _, v := range s.Embedding[:8] {
		got.EmbeddingTop = append(got.EmbeddingTop, float64(v))
	}
	path := filepath.Join("testdata", "golden_face_jpg.json")
	if *update {
		data, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want golden
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	near := func(what string, a, b []float64, tol float64) {
		for i := range a {
			if math.Abs(a[i]-b[i]) > tol {
				t.Errorf("%s[%d] = %.5f, golden %.5f (±%g)", what, i, a[i], b[i], tol)
			}
		}
	}
	near("box", got.Box[:], want.Box[:], 0.5)
	near("track box", got.TrackBox[:], want.TrackBox[:], 0.5)
	for i := range got.Landmarks {
		near("landmark", got.Landmarks[i][:], want.Landmarks[i][:], 0.5)
	}
	near("pose", got.Pose[:], want.Pose[:], 0.5)
	near("embedding", got.EmbeddingTop, want.EmbeddingTop, 1e-3)
	near("pad", []float64{got.PAD}, []float64{want.PAD}, 1e-3)
}

// TestPreprocessingMatters proves the golden test would notice: the wrong
// channel order or a tight PAD crop changes the outputs a lot.
func TestPreprocessingMatters(t *testing.T) {
	e := engine(t)
	m := readMat(t, sampleImage(t, "face.jpg"))
	defer m.Close()
	rgb := gocv.NewMat()
	defer rgb.Close()
	gocv.CvtColor(m, &rgb, gocv.ColorBGRToRGB)
	a := embedding(t, e, m)
	b := embedding(t, e, rgb)
	if s, _ := Similarity(a, b); s > 0.995 {
		t.Errorf("swapping channels changed the template only to similarity %.4f: the channel-order pin is blind", s)
	}
}

func TestPADCropGeometry(t *testing.T) {
	tests := []struct {
		box  Rect
		w, h int
		want Rect
	}{
		// Fits: the box grows 2.7× about its centre.
		{Rect{300, 200, 40, 40}, 640, 480, Rect{266, 166, 108, 108}},
		// Near the left edge: shifted inside the image, size kept.
		{Rect{10, 200, 40, 40}, 640, 480, Rect{0, 166, 108, 108}},
		// Too large: the scale is capped so the crop fits the image.
		{Rect{200, 100, 300, 300}, 640, 480, Rect{200 + 150 - 479.0/2, 0, 479, 479}},
	}
	for _, tt := range tests {
		got := padCrop(tt.box, tt.w, tt.h, padScale)
		if math.Abs(got.X-tt.want.X) > 1e-6 || math.Abs(got.Y-tt.want.Y) > 1e-6 || math.Abs(got.W-tt.want.W) > 1e-6 || math.Abs(got.H-tt.want.H) > 1e-6 {
			t.Errorf("padCrop(%+v) = %+v, want %+v", tt.box, got, tt.want)
		}
	}
}

func TestLetterbox(t *testing.T) {
	tests := []struct{ w, h, aw, ah, pw, ph int }{
		{640, 480, 320, 240, 640, 480},
		{250, 250, 320, 240, 334, 250},
		{400, 800, 320, 240, 1067, 800},
		{640, 480, 1, 1, 640, 640},
	}
	for _, tt := range tests {
		m := gocv.NewMatWithSize(tt.h, tt.w, gocv.MatTypeCV8UC3)
		out, pw, ph := letterbox(m, tt.aw, tt.ah)
		if pw != tt.pw || ph != tt.ph || out.Cols() != pw || out.Rows() != ph {
			t.Errorf("letterbox(%d×%d to %d:%d) = %d×%d (Mat %d×%d), want %d×%d", tt.w, tt.h, tt.aw, tt.ah, pw, ph, out.Cols(), out.Rows(), tt.pw, tt.ph)
		}
		m.Close()
		out.Close()
	}
}

func TestBadInput(t *testing.T) {
	e := engine(t)
	grey := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8UC1)
	defer grey.Close()
	tiny := gocv.NewMatWithSize(2, 2, gocv.MatTypeCV8UC3)
	defer tiny.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	for name, m := range map[string]gocv.Mat{"grey": grey, "tiny": tiny, "empty": empty} {
		if _, err := e.Analyze(context.Background(), m, Options{Embed: true}); err == nil {
			t.Errorf("Analyze(%s) succeeded", name)
		}
		if _, _, err := e.NewTracker().Track(context.Background(), m); err == nil {
			t.Errorf("Track(%s) succeeded", name)
		}
	}
}

// TestConcurrentAnalyze runs many goroutines on a 2-worker engine (under
// -race in make test): results equal the sequential ones.
func TestConcurrentAnalyze(t *testing.T) {
	e := engine(t)
	m := readMat(t, sampleImage(t, "face-detect.jpg"))
	defer m.Close()
	want := embedding(t, e, m)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.Analyze(context.Background(), m, Options{Embed: true, PAD: true})
			if err != nil {
				errs <- err
				return
			}
			if sim, _ := Similarity(want, s.Embedding); sim < 0.9999 {
				errs <- errors.New("concurrent result differs")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCancelWhileWaiting: a call waiting for a busy worker returns when its
// context ends.
func TestCancelWhileWaiting(t *testing.T) {
	e := engine(t)
	var held []*worker
	for range e.workers {
		w, err := e.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, w)
	}
	defer func() {
		for _, w := range held {
			e.release(w)
		}
	}()
	m := readMat(t, sampleImage(t, "face.jpg"))
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.Analyze(ctx, m, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Analyze with all workers busy = %v, want deadline exceeded", err)
	}
}

func TestClosedEngine(t *testing.T) {
	e, err := New(Config{ModelsDir: testModelsDir(), Workers: 1})
	if err != nil {
		engine(t) // skips or fails as the shared engine does
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	m := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8UC3)
	defer m.Close()
	if _, err := e.Analyze(context.Background(), m, Options{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Analyze after Close = %v, want ErrClosed", err)
	}
}

func TestMissingModelsSayWhatToDo(t *testing.T) {
	_, err := New(Config{ModelsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "bwsagent models fetch") {
		t.Fatalf("New with an empty model dir = %v; want an error naming 'bwsagent models fetch'", err)
	}
}

func primary(t *testing.T, e *Engine, m gocv.Mat) Face {
	t.Helper()
	s, err := e.Analyze(context.Background(), m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := s.PrimaryFace()
	if !ok {
		t.Fatal("no face")
	}
	return f
}

func embedding(t *testing.T, e *Engine, m gocv.Mat) Embedding {
	t.Helper()
	s, err := e.Analyze(context.Background(), m, Options{Embed: true})
	if err != nil || s.Embedding == nil {
		t.Fatalf("no embedding: %v", err)
	}
	return s.Embedding
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
