package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/agent/token"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/facetest"
	"github.com/bwsagent/bwsagent/face/models"
	"github.com/bwsagent/bwsagent/internal/testenv"
	"github.com/bwsagent/bwsagent/liveness"
	"github.com/bwsagent/bwsagent/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func testModelsDir() string { return testenv.ModelsDir() }

func engine(t testing.TB) *face.Engine { return facetest.Engine(t) }

// clock is a fake clock; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// testPublicURL is the agents' audience in tests; requests reach the
// httptest server on 127.0.0.1 with any port, which AllowedHosts allows.
const testPublicURL = "http://127.0.0.1:8080"

// fixture is a running agent API on a temp store with three apps:
// app1 owns bws/12, app2 owns bws/13, app3 owns acme/12.
type fixture struct {
	t       testing.TB
	clk     *clock
	path    string
	cfg     Config
	db      *store.DB
	srv     *Server
	ts      *httptest.Server
	secrets map[string]string
	reg     prometheus.Registerer // metrics registry for the next open
	sync    Syncer                // sync sender for the next open; nil: sync off
}

func storeOptions(clk *clock) store.Options {
	return store.Options{
		Timeout:       2 * time.Second,
		EncryptionKey: bytes.Repeat([]byte{7}, store.KeySize),
		SecretHash:    store.HashParams{Time: 1, MemoryKiB: 64, Threads: 1},
		NoSync:        true,
		Now:           clk.Now,
	}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.PublicURL = testPublicURL
	cfg.AllowedHosts = []string{"127.0.0.1", "localhost"}
	cfg.CORSOrigins = []string{"https://ui.bioid.example"}
	cfg.Version = "test"
	return cfg
}

func newFixture(t testing.TB, mods ...func(*Config)) *fixture {
	t.Helper()
	engine(t)
	f := &fixture{t: t, clk: &clock{t: t0}, path: filepath.Join(t.TempDir(), "agent.db"), cfg: testConfig(), secrets: map[string]string{}}
	for _, m := range mods {
		m(&f.cfg)
	}
	f.open()
	ctx := context.Background()
	for _, a := range []store.App{
		{ID: "app1", Name: "App One", Storage: "bws", Partitions: []int{12}},
		{ID: "app2", Name: "App Two", Storage: "bws", Partitions: []int{13}},
		{ID: "app3", Name: "App Three", Storage: "acme", Partitions: []int{12}},
	} {
		secret, err := f.db.AddApp(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		f.secrets[a.ID] = secret
	}
	t.Cleanup(f.close)
	return f
}

// open opens the store and starts a Server and its HTTP listener.
func (f *fixture) open() {
	t := f.t
	t.Helper()
	var err error
	if f.db, err = store.Open(f.path, storeOptions(f.clk)); err != nil {
		t.Fatal(err)
	}
	ks, err := f.db.SigningKeys(context.Background(), "token")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := token.New(token.Config{Audience: f.cfg.PublicURL, Now: f.clk.Now}, token.Key{ID: ks.Current.ID, Secret: ks.Current.Secret})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := liveness.New(engine(t), liveness.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.srv, err = New(f.cfg, Deps{Store: f.db, Engine: engine(t), Liveness: lc, Tokens: tm, Logger: testLogger(t), Now: f.clk.Now, Metrics: f.reg, Sync: f.sync})
	if err != nil {
		t.Fatal(err)
	}
	f.ts = httptest.NewServer(f.srv.Handler())
}

func (f *fixture) close() {
	if f.ts == nil {
		return
	}
	f.ts.Close()
	f.srv.Close()
	if err := f.db.Check(context.Background()); err != nil {
		f.t.Errorf("store consistency check: %v", err)
	}
	f.db.Close()
	f.ts = nil
}

// restart stops the agent and starts it again on the same store.
func (f *fixture) restart() {
	f.t.Helper()
	f.close()
	f.open()
}

// testLogger writes to the test log with BWSAGENT_TEST_LOG=1.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("BWSAGENT_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// req is one request to the agent; path is relative to the base path
// ("token?id=app1…") unless it starts with '/'.
type req struct {
	method string
	path   string
	app    string // Basic auth as this app
	secret string // overrides the app's secret
	bearer string
	body   string
	header map[string]string
}

type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r *resp) String() string { return fmt.Sprintf("%d %s", r.Code, r.Body) }

func (f *fixture) url(path string) string {
	if strings.HasPrefix(path, "/") {
		return f.ts.URL + path
	}
	return f.ts.URL + f.cfg.BasePath + path
}

func (f *fixture) do(r req) *resp {
	f.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, f.url(r.path), body)
	if err != nil {
		f.t.Fatal(err)
	}
	if r.app != "" {
		secret := r.secret
		if secret == "" {
			secret = f.secrets[r.app]
		}
		hr.SetBasicAuth(r.app, secret)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.header {
		if k == "Host" {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	res, err := f.ts.Client().Do(hr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return &resp{Code: res.StatusCode, Header: res.Header, Body: b}
}

// token issues a token for app with the given /token query.
func (f *fixture) token(app, query string) string {
	f.t.Helper()
	r := f.do(req{path: "token?id=" + app + "&" + query, app: app})
	if r.Code != http.StatusOK {
		f.t.Fatalf("token %s: %v", query, r)
	}
	return string(r.Body)
}

// upload uploads a sample and decodes the UploadResult.
func (f *fixture) upload(tok, dataURL, query string) UploadResult {
	f.t.Helper()
	r := f.do(req{method: http.MethodPost, path: "upload?" + query, bearer: tok, body: dataURL, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	if r.Code != http.StatusOK {
		f.t.Fatalf("upload %s: %v", query, r)
	}
	var u UploadResult
	if err := json.Unmarshal(r.Body, &u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

// uploadAll uploads samples with index 1, 2, … and requires them accepted.
func (f *fixture) uploadAll(tok string, urls []string, tags ...string) {
	f.t.Helper()
	for i, u := range urls {
		q := fmt.Sprintf("index=%d", i+1)
		if i < len(tags) {
			q += "&tag=" + tags[i]
		}
		if res := f.upload(tok, u, q); !res.Accepted {
			f.t.Fatalf("sample %d not accepted: %+v", i+1, res)
		}
	}
}

// perform calls a biometric route and decodes the Result.
func (f *fixture) perform(tok, route string) Result {
	f.t.Helper()
	r := f.do(req{path: route, bearer: tok})
	if r.Code != http.StatusOK {
		f.t.Fatalf("%s: %v", route, r)
	}
	var res Result
	if err := json.Unmarshal(r.Body, &res); err != nil {
		f.t.Fatal(err)
	}
	return res
}

// dataURL encodes image file bytes as a data URL.
func dataURL(kind string, b []byte) string {
	return "data:image/" + kind + ";base64," + base64.StdEncoding.EncodeToString(b)
}

func fileDataURL(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kind := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	return dataURL(kind, b)
}

func pngDataURL(t testing.TB, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return dataURL("png", buf.Bytes())
}

// greyImage has no face.
func greyImage(w, h int) image.Image {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(100 + i%7)
	}
	return img
}

// gocvImage returns a photo of gocv's module (on every machine that builds
// this module): "face.jpg" is one frontal face.
func gocvImage(t testing.TB, name string) string {
	t.Helper()
	d := os.Getenv("GOMODCACHE")
	if d == "" {
		d = filepath.Join(os.Getenv("HOME"), "go", "pkg", "mod")
		if gp := os.Getenv("GOPATH"); gp != "" {
			d = filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
		}
	}
	p := filepath.Join(d, "gocv.io", "x", "gocv@v0.31.0", "images", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("gocv test image %s missing: %v", name, err)
	}
	return p
}

// faceAPIImage returns one of @vladmandic/face-api's demo photos (fetched
// with the models by 'bwsagent models fetch --testdata').
func faceAPIImage(t testing.TB, name string) string {
	t.Helper()
	m, err := models.Default()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.Lookup("@vladmandic/face-api")
	path := models.Cache{Dir: testModelsDir()}.Path(p, "demo/"+name)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("BWSAGENT_REQUIRE_MODELS") == "1" {
			t.Fatalf("test image %s missing (run 'make models'): %v", name, err)
		}
		t.Skipf("test image %s missing: %v", name, err)
	}
	return path
}

// sharedDataPath returns a path in ../shared/data (BWSAGENT_TESTDATA) and
// whether it exists.
func sharedDataPath(sub ...string) (string, bool) {
	dir := os.Getenv("BWSAGENT_TESTDATA")
	if dir == "" {
		wd, _ := os.Getwd()
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "..", "shared", "data")
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	p := filepath.Join(append([]string{dir}, sub...)...)
	_, err := os.Stat(p)
	return p, err == nil
}

// sharedData returns a folder of ../shared/data, or skips with a message.
func sharedData(t testing.TB, sub ...string) string {
	t.Helper()
	p, ok := sharedDataPath(sub...)
	if !ok {
		t.Skipf("real test data not found at %s (set BWSAGENT_TESTDATA to the shared data folder)", p)
	}
	return p
}

// lfw returns data URLs of photos 1..n of a person in LFW.
func lfw(t testing.TB, person string, numbers ...int) []string {
	t.Helper()
	dir := sharedData(t, "identities", "lfw_deepfunneled_min10", person)
	var out []string
	for _, n := range numbers {
		out = append(out, fileDataURL(t, filepath.Join(dir, fmt.Sprintf("%s_%04d.jpg", person, n))))
	}
	return out
}

// videoFrames returns the frames of a clip at the given seconds as JPEG
// data URLs, as a camera client would upload them.
func videoFrames(t testing.TB, clip string, seconds ...float64) []string {
	t.Helper()
	path := filepath.Join(sharedData(t, "videos", "headmotion"), clip)
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", clip, err)
	}
	defer vc.Close()
	fps := vc.Get(gocv.VideoCaptureFPS)
	m := gocv.NewMat()
	defer m.Close()
	want := map[int]int{}
	for i, s := range seconds {
		want[int(s*fps+0.5)] = i
	}
	out := make([]string, len(seconds))
	found := 0
	for i := 0; found < len(seconds) && vc.Read(&m); i++ {
		k, ok := want[i]
		if !ok {
			continue
		}
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 92})
		if err != nil {
			t.Fatal(err)
		}
		out[k] = dataURL("jpeg", bytes.Clone(buf.GetBytes()))
		buf.Close()
		found++
	}
	if found != len(seconds) {
		t.Fatalf("%s: found %d of %d frames", clip, found, len(seconds))
	}
	return out
}

// Live and still sequences used across tests.
const liveClip = "lp_d3_woman_lab.mp4"

// liveSeq is a bona-fide head turn toward image-left (yaw −2° → −9°,
// about 1 s); every consecutive pair shows 3-D motion with margin.
func liveSeq(t testing.TB) []string { return videoFrames(t, liveClip, 6.53, 6.77, 7.0, 7.47) }

// staticSeq is one photo uploaded three times: no motion at all.
func staticSeq(t testing.TB) []string {
	u := fileDataURL(t, gocvImage(t, "face.jpg"))
	return []string{u, u, u}
}

// golden compares got with testdata/name.golden, rewriting it with -update.
func golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./agent/api -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

// goldenResponse renders a response for a golden file: the status, the
// headers clients rely on, and the body byte for byte.
func goldenResponse(r *resp) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d\n", r.Code)
	for _, h := range []string{"Content-Type", "Retry-After", "WWW-Authenticate", "Allow",
		"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
		if v := r.Header.Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	b.WriteString("\n")
	b.Write(r.Body)
	b.WriteString("\n")
	return []byte(b.String())
}
