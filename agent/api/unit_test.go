package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/liveness"
	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		key string
		mod func(*Config)
	}{
		{"BasePath", func(c *Config) { c.BasePath = "extension" }},
		{"BasePath", func(c *Config) { c.BasePath = "/ext?x/" }},
		{"PublicURL", func(c *Config) { c.PublicURL = "" }},
		{"PublicURL", func(c *Config) { c.PublicURL = "ftp://host" }},
		{"AllowedHosts", func(c *Config) { c.AllowedHosts = []string{"http://host"} }},
		{"CORSOrigins", func(c *Config) { c.CORSOrigins = []string{"https://ui.example/path"} }},
		{"CORSOrigins", func(c *Config) { c.CORSOrigins = []string{"*"} }},
		{"MaxUploadBytes", func(c *Config) { c.MaxUploadBytes = 0 }},
		{"MaxPixels", func(c *Config) { c.MaxPixels = -1 }},
		{"MaxSamplesPerToken", func(c *Config) { c.MaxSamplesPerToken = 1 }},
		{"MaxHeldSamples", func(c *Config) { c.MaxHeldSamples = 3 }},
		{"JobTimeout", func(c *Config) { c.JobTimeout = 0 }},
		{"VerifyThreshold", func(c *Config) { c.VerifyThreshold = 1.5 }},
		{"IdentifyThreshold", func(c *Config) { c.IdentifyThreshold = 0 }},
		{"MaxTemplatesPerClass", func(c *Config) { c.MaxTemplatesPerClass = 0 }},
		{"LockoutFailures", func(c *Config) { c.LockoutFailures = 0 }},
		{"LockoutWindow", func(c *Config) { c.LockoutWindow = -time.Second }},
		{"AuthFailures", func(c *Config) { c.AuthFailures = 0 }},
		{"AuthWindow", func(c *Config) { c.AuthWindow = 0 }},
		{"MaxAuthLockout", func(c *Config) { c.MaxAuthLockout = time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), "'"+tt.key+"'") {
				t.Errorf("error %v does not name '%s'", err, tt.key)
			}
		})
	}
}

func TestHostPolicy(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		host  string
		allow bool
	}{
		{"default 127.0.0.1 with port", nil, "127.0.0.1:8080", true},
		{"default localhost with port", nil, "LOCALHOST:8080", true},
		{"default ::1 with port", nil, "[::1]:8080", true},
		{"default other port", nil, "127.0.0.1:9999", false},
		{"default no port", nil, "127.0.0.1", false},
		{"rebinding", nil, "evil.example:8080", false},
		{"empty", nil, "", false},
		{"public host", func(c *Config) { c.PublicURL = "http://kiosk.lan:8080" }, "kiosk.lan:8080", true},
		{"default port 80 omitted", func(c *Config) { c.PublicURL = "http://127.0.0.1" }, "localhost", true},
		{"entry any port", func(c *Config) { c.AllowedHosts = []string{"kiosk.lan"} }, "kiosk.lan:1234", true},
		{"entry exact port", func(c *Config) { c.AllowedHosts = []string{"kiosk.lan:80"} }, "kiosk.lan:81", false},
		{"entries replace defaults", func(c *Config) { c.AllowedHosts = []string{"kiosk.lan"} }, "127.0.0.1:8080", false},
		{"ipv6 entry", func(c *Config) { c.AllowedHosts = []string{"[::1]"} }, "[::1]:5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := newHostPolicy(c).allows(tt.host); got != tt.allow {
				t.Errorf("allows(%q) = %v, want %v", tt.host, got, tt.allow)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	now := t0
	l := newLimiter(3, time.Minute, true, 10*time.Minute)
	fail := func() (time.Duration, bool) { return l.fail("k", now) }
	for i := 0; i < 2; i++ {
		if _, locked := fail(); locked {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	if d, locked := fail(); !locked || d != time.Minute {
		t.Fatalf("third failure: %v %v, want locked 1m", d, locked)
	}
	if d, locked := l.locked("k", now.Add(30*time.Second)); !locked || d != 30*time.Second {
		t.Fatalf("during lockout: %v %v", d, locked)
	}
	// Backoff: the next lockout soon after doubles.
	now = now.Add(61 * time.Second)
	fail()
	fail()
	if d, locked := fail(); !locked || d != 2*time.Minute {
		t.Fatalf("second lockout: %v %v, want 2m", d, locked)
	}
	// Failures spread wider than the window never lock.
	l2 := newLimiter(3, time.Minute, false, time.Minute)
	for i := 0; i < 10; i++ {
		if _, locked := l2.fail("k", t0.Add(time.Duration(i)*31*time.Second)); locked {
			t.Fatalf("locked by failure %d spread over %v", i, time.Duration(i)*31*time.Second)
		}
	}
	// A success resets.
	l.reset("k")
	if _, locked := l.locked("k", now); locked {
		t.Fatal("locked after reset")
	}
	// Bounded: many keys evict the idle ones.
	l3 := newLimiter(2, time.Minute, false, time.Minute)
	l3.maxKeys = 100
	for i := 0; i < 1000; i++ {
		l3.fail(strings.Repeat("x", i%50)+string(rune('a'+i%26))+time.Duration(i).String(), t0.Add(time.Duration(i)*time.Second))
	}
	if len(l3.keys) > 100 {
		t.Fatalf("limiter holds %d keys, bound 100", len(l3.keys))
	}
}

func TestHolder(t *testing.T) {
	clk := &clock{t: t0}
	h := newHolder(clk.Now, 3, 5)
	exp := t0.Add(10 * time.Minute)
	add := func(id string, index int, tag string) error {
		if err := h.reserve(id, exp, 0); err != nil {
			return err
		}
		if !h.commit(id, index, liveness.Sample{Tag: tag}, nil) {
			t.Fatalf("commit %s %d failed", id, index)
		}
		return nil
	}
	for _, s := range []struct {
		index int
		tag   string
	}{{3, "c"}, {1, "a"}, {3, "d"}} {
		if err := add("t1", s.index, s.tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := add("t1", 4, "e"); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("4th sample of a token: %v, want ErrTooManySamples", err)
	}
	add("t2", 0, "x")
	add("t2", 0, "y")
	if err := add("t3", 0, "z"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("6th sample overall: %v, want ErrUnavailable", err)
	}
	// Ordered by index, then arrival; taking removes.
	var tags []string
	taken, files := h.take("t1")
	if files != nil {
		t.Fatalf("files kept without sync: %v", files)
	}
	for _, s := range taken {
		tags = append(tags, s.Tag)
	}
	if strings.Join(tags, "") != "acd" {
		t.Fatalf("order %v, want a c d", tags)
	}
	if got, _ := h.take("t1"); got != nil {
		t.Fatalf("taken twice: %v", got)
	}
	// A reservation in flight survives a take and lands after it.
	if err := h.reserve("t1", exp, 0); err != nil {
		t.Fatal(err)
	}
	h.take("t1")
	h.commit("t1", 0, liveness.Sample{Tag: "late"}, nil)
	if got, _ := h.take("t1"); len(got) != 1 || got[0].Tag != "late" {
		t.Fatalf("late sample: %v", got)
	}
	// Expiry.
	clk.Add(10 * time.Minute)
	h.sweep()
	if n := h.count(); n != 0 {
		t.Fatalf("%d samples held after expiry", n)
	}
	if h.used != 0 {
		t.Fatalf("%d slots still booked", h.used)
	}
	// Close.
	h.close()
	if err := h.reserve("t9", exp.Add(time.Hour), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("reserve after close: %v", err)
	}
}

// In sync mode the holder keeps each sample's file, in the samples' order,
// bounded in bytes, and forgets the bytes with the samples.
func TestHolderFiles(t *testing.T) {
	clk := &clock{t: t0}
	h := newHolder(clk.Now, 5, 10)
	exp := t0.Add(10 * time.Minute)
	add := func(id string, index int, file []byte) error {
		if err := h.reserve(id, exp, len(file)); err != nil {
			return err
		}
		if !h.commit(id, index, liveness.Sample{Tag: string(file)}, file) {
			t.Fatalf("commit %s %d failed", id, index)
		}
		return nil
	}
	add("t1", 2, []byte("c"))
	add("t1", 1, []byte("ab"))
	samples, files := h.take("t1")
	if len(samples) != 2 || len(files) != 2 || string(files[0]) != "ab" || string(files[1]) != "c" {
		t.Fatalf("samples %v files %q", samples, files)
	}
	if h.fileBytes != 0 {
		t.Fatalf("%d file bytes booked after take", h.fileBytes)
	}
	if err := h.reserve("t2", exp, maxHeldFileBytes+1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("over the byte bound: %v", err)
	}
	// A cancelled reservation and a commit after expiry release their bytes;
	// so does the sweep.
	h.reserve("t2", exp, 100)
	h.cancel("t2", 100)
	h.reserve("t3", exp, 5)
	add("t4", 0, []byte("held"))
	clk.Add(10 * time.Minute)
	if h.commit("t3", 0, liveness.Sample{}, []byte("12345")) {
		t.Fatal("commit after expiry succeeded")
	}
	h.sweep()
	if h.fileBytes != 0 || h.used != 0 {
		t.Fatalf("%d file bytes, %d slots booked after expiry", h.fileBytes, h.used)
	}
}

func TestTagsFollow(t *testing.T) {
	ch := bws.Challenge{{bws.Left, bws.Right}, {bws.Up, bws.Down}}
	seq := func(tags ...string) []liveness.Sample {
		out := make([]liveness.Sample, len(tags))
		for i, tg := range tags {
			out[i].Tag = tg
		}
		return out
	}
	tests := []struct {
		tags []string
		try  int
		want bool
	}{
		{[]string{"any", "left", "right"}, 0, true},
		{[]string{"any", "left", "any", "right"}, 0, true},
		{[]string{"any", "up", "down"}, 1, true},
		{[]string{"any", "left", "right"}, 1, false}, // try 2 uses array 2
		{[]string{"any", "right", "left"}, 0, false},
		{[]string{"any", "left"}, 0, false},
		{[]string{"any", "left", "right", "up"}, 0, false},
		{[]string{"any", "left", "right"}, 2, false},
	}
	for _, tt := range tests {
		if got := tagsFollow(seq(tt.tags...), ch, tt.try); got != tt.want {
			t.Errorf("tagsFollow(%v, try %d) = %v, want %v", tt.tags, tt.try, got, tt.want)
		}
	}
}

func TestParseQuery(t *testing.T) {
	q, err := parseQuery("maxResults=5&BCID=bws.1.2&bcid=other&flag=TRUE&n=x")
	if err != nil {
		t.Fatal(err)
	}
	if q["maxresults"] != "5" || q["bcid"] != "bws.1.2" {
		t.Fatalf("case-insensitive names: %v", q)
	}
	if b, err := q.boolean("flag", false); err != nil || !b {
		t.Errorf("flag: %v %v", b, err)
	}
	if _, err := q.integer("n", 0, 0, 10); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad integer: %v", err)
	}
	if n, err := q.integer("absent", 7, 0, 10); err != nil || n != 7 {
		t.Errorf("default: %v %v", n, err)
	}
	if _, err := parseQuery("a=%zz"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad escape: %v", err)
	}
}

func TestLiveImages(t *testing.T) {
	const u = "data:image/png;base64,iVBO+w=="
	tests := []struct {
		name string
		body string
		want []string
		err  string
	}{
		{"json", `{"liveimage1":"` + u + `","liveimage2":"` + u + `"}`, []string{u, u}, ""},
		{"json case", `{"LiveImage1":"a","LIVEIMAGE2":"b"}`, []string{"a", "b"}, ""},
		{"json three", `{"liveimage1":"a","liveimage2":"b","liveimage3":"c"}`, []string{"a", "b", "c"}, ""},
		{"json gap", `{"liveimage1":"a","liveimage3":"c"}`, nil, "MissingData"},
		{"json one", `{"liveimage1":"a"}`, nil, "MissingData"},
		{"json broken", `{"liveimage1":`, nil, "InvalidSampleData"},
		{"form raw", "liveimage1=" + u + "&liveimage2=" + u, []string{u, u}, ""},
		{"form encoded", "liveimage1=data%3Aimage%2Fpng%3Bbase64%2CiVBO%2Bw%3D%3D&liveimage2=" + u, []string{u, u}, ""},
		{"form half encoded", "liveimage1=data:image/png%3Bbase64,iVBO+w%3D%3D&liveimage2=" + u, []string{u, u}, ""},
		{"empty", "  ", nil, "MissingData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := liveImages([]byte(tt.body))
			if tt.err != "" {
				if _, msg := statusOf(err); msg != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %v %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{newError(ErrNoSamples, msgNoSamples, nil), 400},
		{newError(ErrTriesExhausted, msgTries, nil), 403},
		{&Error{Kind: ErrLockedOut, Message: msgVerifyLocked, RetryAfter: time.Second}, 429},
		{newError(ErrClosed, msgClosed, nil), 503},
		{&bws.SampleError{Err: bws.ErrMissingData}, 400},
		{errors.New("disk on fire"), 500},
	}
	for _, tt := range tests {
		if code, _ := statusOf(tt.err); code != tt.code {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, code, tt.code)
		}
	}
}

// TestRecover: a panic below the middleware is a 500 with {"Message":…},
// not a dead connection or daemon.
func TestRecover(t *testing.T) {
	s := &Server{log: testLogger(t)}
	s.tuned.Store(s.newTunables(testConfig()))
	h := s.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	r := httptest.NewRequest(http.MethodGet, "/extension/status", nil)
	r.Host = "127.0.0.1:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusInternalServerError || w.Body.String() != `{"Message":"internal server error"}` {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
}

// TestMetrics: the API's series are registered and move with requests.
func TestMetrics(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	f.reg = reg
	f.restart()
	face := fileDataURL(t, gocvImage(t, "face.jpg"))
	tok := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	f.uploadAll(tok, []string{face})
	f.perform(tok, "enroll")
	want := map[string]bool{
		"bwsagent_api_requests_total": false, "bwsagent_api_request_duration_seconds": false,
		"bwsagent_api_uploads_total": false, "bwsagent_api_sample_analysis_seconds": false,
		"bwsagent_api_decisions_total": false, "bwsagent_api_decision_seconds": false, "bwsagent_api_samples_held": false,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		want[mf.GetName()] = true
		if mf.GetName() == "bwsagent_api_decisions_total" {
			m := mf.GetMetric()[0]
			if m.GetCounter().GetValue() != 1 || len(m.GetLabel()) != 2 || m.GetLabel()[1].GetValue() != "success" {
				t.Errorf("decisions: %v", m)
			}
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("series %s missing", name)
		}
	}
	// One Server per registry: a second one is refused, not half-registered.
	_, err = New(f.cfg, Deps{Store: f.db, Engine: f.srv.engine, Liveness: f.srv.live, Tokens: f.srv.tokens, Metrics: reg})
	if err == nil {
		t.Fatal("second Server on one registry")
	}
}
