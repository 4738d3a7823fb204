package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/token"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/store"
	"github.com/golang-jwt/jwt/v5"
)

// TestTokenAttacks: every forged, stale or foreign token is a 401 on the
// token routes; a genuine token of the wrong task a 403.
func TestTokenAttacks(t *testing.T) {
	f := newFixture(t)
	face := fileDataURL(t, gocvImage(t, "face.jpg"))
	good := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	parts := strings.Split(good, ".")

	ks, err := f.db.SigningKeys(context.Background(), "token")
	if err != nil {
		t.Fatal(err)
	}
	key := token.Key{ID: ks.Current.ID, Secret: ks.Current.Secret}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c jwt.MapClaims
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		mod(c)
		return c
	}
	sign := func(m jwt.SigningMethod, k any, c jwt.MapClaims) string {
		tk := jwt.NewWithClaims(m, c)
		tk.Header["kid"] = key.ID
		s, err := tk.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherAud, err := token.New(token.Config{Audience: "http://evil.example", Now: f.clk.Now}, key)
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, _, err := otherAud.Issue(token.Request{App: "app1", BCID: bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}, Task: bws.TaskEnroll | 3})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := token.New(token.Config{Audience: testPublicURL, Now: f.clk.Now}, token.Key{ID: key.ID, Secret: bytes.Repeat([]byte{9}, 32)})
	wrongKey, _, _ := otherKey.Issue(token.Request{App: "app1", BCID: bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}, Task: bws.TaskEnroll | 3})

	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(mustDecode(t, parts[1]), `"bws/12/1"`, `"bws/13/1"`, 1))) + "." + parts[2]
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(func(jwt.MapClaims) {}))
	hs512 := sign(jwt.SigningMethodHS512, key.Secret, claims(func(jwt.MapClaims) {}))
	noKid := func() string {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(func(jwt.MapClaims) {}))
		s, _ := tk.SignedString(key.Secret)
		return s
	}()
	wrongIss := sign(jwt.SigningMethodHS256, key.Secret, claims(func(c jwt.MapClaims) { c["iss"] = "ACME" }))
	future := sign(jwt.SigningMethodHS256, key.Secret, claims(func(c jwt.MapClaims) {
		c["nbf"], c["iat"] = f.clk.Now().Add(time.Hour).Unix(), f.clk.Now().Add(time.Hour).Unix()
		c["exp"] = f.clk.Now().Add(2 * time.Hour).Unix()
	}))
	// A token of a removed app dies with the app.
	removedApp := func() string {
		if _, err := f.db.AddApp(context.Background(), store.App{ID: "gone", Storage: "bws", Partitions: []int{12}}); err != nil {
			t.Fatal(err)
		}
		tok, err := f.srv.IssueToken(context.Background(), "gone", bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}, bws.OpEnroll, DefaultTokenOptions())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.DeleteApp(context.Background(), "gone"); err != nil {
			t.Fatal(err)
		}
		return tok
	}()

	tests := []struct {
		name string
		tok  string
		want int
	}{
		{"tampered payload", tampered, 401},
		{"alg none", none, 401},
		{"alg none unsigned", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", 401},
		{"HS512", hs512, 401},
		{"no kid", noKid, 401},
		{"wrong audience", wrongAud, 401},
		{"wrong key", wrongKey, 401},
		{"wrong issuer", wrongIss, 401},
		{"not yet valid", future, 401},
		{"garbage", "not-a-token", 401},
		{"removed app", removedApp, 401},
		{"verify route", good, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := "enroll"
			if tt.want == 403 {
				route = "verify"
			}
			if r := f.do(req{method: http.MethodPost, path: "upload", bearer: tt.tok, body: face}); r.Code != tt.want && tt.want == 401 {
				t.Errorf("upload: %v, want %d", r, tt.want)
			}
			if r := f.do(req{path: route, bearer: tt.tok}); r.Code != tt.want {
				t.Errorf("%s: %v, want %d", route, r, tt.want)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		tok := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
		f.uploadAll(tok, []string{face})
		f.clk.Add(token.DefaultLifetime + token.DefaultLeeway + time.Second)
		defer f.clk.Add(-(token.DefaultLifetime + token.DefaultLeeway + time.Second))
		for _, r := range []*resp{
			f.do(req{method: http.MethodPost, path: "upload", bearer: tok, body: face}),
			f.do(req{path: "enroll", bearer: tok}),
		} {
			if r.Code != 401 {
				t.Errorf("expired token: %v, want 401", r)
			}
		}
		f.srv.Sweep()
		if n := f.srv.HeldSamples(); n != 0 {
			t.Errorf("%d samples held past the token's expiry", n)
		}
	})
}

func mustDecode(t *testing.T, s string) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSampleIsolation: samples belong to the token they were uploaded
// with; another token (of the same app and class) cannot use them, and a
// call consumes them all.
func TestSampleIsolation(t *testing.T) {
	f := newFixture(t)
	face := fileDataURL(t, gocvImage(t, "face.jpg"))
	t1 := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	t2 := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	f.uploadAll(t1, []string{face, face})
	if r := f.do(req{path: "enroll", bearer: t2}); r.Code != http.StatusBadRequest {
		t.Fatalf("enroll with another token: %v, want 400", r)
	}
	if f.srv.HeldSamples() != 2 {
		t.Fatalf("the other token's call touched the samples: %d held", f.srv.HeldSamples())
	}
	if res := f.perform(t1, "enroll"); !res.Success {
		t.Fatalf("enroll with the uploading token: %+v", res)
	}
	if f.srv.HeldSamples() != 0 {
		t.Fatalf("%d samples held after the call consumed them", f.srv.HeldSamples())
	}
	if r := f.do(req{path: "enroll", bearer: t1}); r.Code != http.StatusBadRequest {
		t.Fatalf("samples reused: %v, want 400", r)
	}
	// Close drops everything held.
	f.uploadAll(t2, []string{face})
	f.srv.Close()
	if f.srv.HeldSamples() != 0 {
		t.Fatal("Close kept samples")
	}
	if r := f.do(req{path: "enroll", bearer: t2}); r.Code != http.StatusServiceUnavailable {
		t.Fatalf("call after Close: %v, want 503", r)
	}
}

// TestPartitionIsolation: an app touches only its own storage and
// partitions, whatever route it tries.
func TestPartitionIsolation(t *testing.T) {
	f := newFixture(t)
	face := fileDataURL(t, gocvImage(t, "face.jpg"))
	tok := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	f.uploadAll(tok, []string{face})
	f.perform(tok, "enroll")

	for _, r := range []req{
		{path: "token?id=app2&bcid=bws.12.1", app: "app2"},
		{path: "token?id=app3&bcid=bws.12.1&task=identify", app: "app3"},
		{path: "isenrolled?bcid=bws.12.1", app: "app2"},
		{method: http.MethodDelete, path: "deleteclass?bcid=bws.12.1", app: "app3"},
		{path: "result?access_token=" + tok, app: "app2"},
	} {
		if got := f.do(r); got.Code != http.StatusForbidden {
			t.Errorf("%s as %s: %v, want 403", r.path, r.app, got)
		}
	}
	if ok, _ := f.srv.IsEnrolled(context.Background(), bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}); !ok {
		t.Fatal("another app's delete removed the class")
	}
	if _, err := f.srv.IssueToken(context.Background(), "app2", bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}, bws.OpVerify, DefaultTokenOptions()); !errors.Is(err, ErrPartition) {
		t.Errorf("IssueToken for another partition: %v", err)
	}
	// An app narrowed after issuing a token loses the partition at once.
	tok = f.token("app1", "bcid=bws.12.1&livedetection=false")
	app, _ := f.db.App(context.Background(), "app1")
	app.Partitions = []int{14}
	if err := f.db.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	if r := f.do(req{method: http.MethodPost, path: "upload", bearer: tok, body: face}); r.Code != http.StatusForbidden {
		t.Errorf("upload after the app lost the partition: %v, want 403", r)
	}
}

// TestBruteForce: wrong Basic secrets lock the app id out with growing
// backoff; the right secret does not get through a lockout.
func TestBruteForce(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AuthFailures, c.AuthWindow, c.MaxAuthLockout = 3, time.Minute, 10*time.Minute })
	guess := func() *resp { return f.do(req{path: "status", app: "app2", secret: "guess"}) }
	right := func() *resp { return f.do(req{path: "status", app: "app2"}) }
	for i := 0; i < 2; i++ {
		if r := guess(); r.Code != http.StatusForbidden {
			t.Fatalf("guess %d: %v, want 403", i+1, r)
		}
	}
	if r := guess(); r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "60" {
		t.Fatalf("third guess: %v %v, want 429 Retry-After 60", r, r.Header)
	}
	if r := right(); r.Code != http.StatusTooManyRequests {
		t.Fatalf("right secret while locked: %v, want 429", r)
	}
	if r := f.do(req{path: "status", app: "app1"}); r.Code != 200 {
		t.Fatalf("another app is locked too: %v", r)
	}
	f.clk.Add(61 * time.Second)
	for i := 0; i < 3; i++ {
		guess()
	}
	if r := right(); r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "120" {
		t.Fatalf("second lockout: %v %v, want Retry-After 120", r, r.Header)
	}
	f.clk.Add(121 * time.Second)
	if r := right(); r.Code != 200 {
		t.Fatalf("right secret after the lockout: %v", r)
	}
	// Unknown app ids are locked the same way, and get the same answers.
	for i := 0; i < 3; i++ {
		f.do(req{path: "status", app: "nobody", secret: "x"})
	}
	if r := f.do(req{path: "status", app: "nobody", secret: "x"}); r.Code != http.StatusTooManyRequests {
		t.Fatalf("unknown app: %v", r)
	}
}

// TestVerifyLockout: repeated failed verifications of one class lock the
// class (429 with Retry-After) for the window; other classes are not.
func TestVerifyLockout(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LockoutFailures, c.LockoutWindow = 3, 3*time.Minute })
	a := lfw(t, personA, 1, 2)
	b := lfw(t, personB, 1)
	tok := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	f.uploadAll(tok, a[:1])
	f.perform(tok, "enroll")

	verify := func(url string) *resp {
		tok := f.token("app1", "bcid=bws.12.1&livedetection=false")
		f.uploadAll(tok, []string{url})
		return f.do(req{path: "verify", bearer: tok})
	}
	for i := 0; i < 3; i++ {
		if r := verify(b[0]); string(r.Body) != `{"Success":false}` {
			t.Fatalf("impostor %d: %v", i+1, r)
		}
	}
	r := verify(a[1])
	if r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "180" || !strings.HasPrefix(string(r.Body), `{"Message":`) {
		t.Fatalf("after 3 failures: %v %v, want 429 Retry-After 180", r, r.Header)
	}
	f.clk.Add(3*time.Minute + time.Second)
	if r := verify(a[1]); string(r.Body) != `{"Success":true}` {
		t.Fatalf("after the window: %v", r)
	}
}

// TestUploadLimits: oversized bodies and pixel bombs are refused before
// anything is decoded; a '+' in base64 survives a form Content-Type.
func TestUploadLimits(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUploadBytes = 256 << 10 })
	tok := f.token("app1", "bcid=bws.12.1")

	t.Run("content-length over the limit", func(t *testing.T) {
		// The server answers from the header alone.
		body := strings.Repeat("A", int(maxEncodedLen(f.cfg.MaxUploadBytes))+1)
		r := f.do(req{method: http.MethodPost, path: "upload", bearer: tok, body: body})
		if r.Code != 400 || string(r.Body) != `{"Message":"InvalidSampleData"}` {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("pixel bomb", func(t *testing.T) {
		bomb := bombPNG(20000, 20000)
		if len(bomb) > 100 {
			t.Fatalf("bomb is %d bytes", len(bomb))
		}
		start := time.Now()
		_, err := f.srv.analyze(context.Background(), bomb, "any")
		if !errors.Is(err, imgio.ErrTooLarge) {
			t.Fatalf("analyze: %v, want ErrTooLarge", err)
		}
		if d := time.Since(start); d > time.Second { // decoding 400 Mpx takes far longer
			t.Errorf("refusing the bomb took %v: it was decoded", d)
		}
		r := f.do(req{method: http.MethodPost, path: "upload", bearer: tok, body: dataURL("png", bomb)})
		if r.Code != 400 {
			t.Fatalf("upload: %v", r)
		}
	})
	t.Run("plus survives form content type", func(t *testing.T) {
		u := fileDataURL(t, gocvImage(t, "face.jpg"))
		if !strings.Contains(u, "+") {
			t.Fatal("test image's base64 has no '+'")
		}
		for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "", "multipart/form-data; boundary=x"} {
			r := f.do(req{method: http.MethodPost, path: "upload", bearer: tok, body: u, header: map[string]string{"Content-Type": ct}})
			if string(r.Body) != `{"Accepted":true,"Warnings":[]}` {
				t.Errorf("Content-Type %q: %v", ct, r)
			}
		}
	})
	t.Run("held samples bounded", func(t *testing.T) {
		g := newFixture(t, func(c *Config) { c.MaxSamplesPerToken, c.MaxHeldSamples = 2, 3 })
		u := fileDataURL(t, gocvImage(t, "face.jpg"))
		t1, t2 := g.token("app1", "bcid=bws.12.1"), g.token("app1", "bcid=bws.12.1")
		g.uploadAll(t1, []string{u, u})
		g.uploadAll(t2, []string{u})
		if r := g.do(req{method: http.MethodPost, path: "upload", bearer: t2, body: u}); r.Code != http.StatusServiceUnavailable {
			t.Fatalf("upload over the total bound: %v, want 503", r)
		}
	})
}

// TestCORS: listed origins get CORS headers on preflight and requests; the
// agent's own origin always does; others get none and are refused.
func TestCORS(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{"https://ui.bioid.example", true}, {testPublicURL, true}, {"https://evil.example", false}, {"null", false}} {
		pre := f.do(req{method: http.MethodOptions, path: "verify", header: map[string]string{
			"Origin": tc.origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}})
		allowed := pre.Header.Get("Access-Control-Allow-Origin") == tc.origin &&
			strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization")
		if allowed != tc.ok {
			t.Errorf("preflight from %s: %v %v", tc.origin, pre.Code, pre.Header)
		}
		if !tc.ok && (pre.Header.Get("Access-Control-Allow-Origin") != "" || pre.Header.Get("Access-Control-Allow-Methods") != "") {
			t.Errorf("preflight from %s got allow headers: %v", tc.origin, pre.Header)
		}
		r := f.do(req{path: "status", app: "app1", header: map[string]string{"Origin": tc.origin}})
		if (r.Code == 200) != tc.ok || (r.Header.Get("Access-Control-Allow-Origin") != "") != tc.ok {
			t.Errorf("request from %s: %v %v", tc.origin, r, r.Header)
		}
	}
	// A page of the agent opened under another allowed host name posts
	// with its own origin.
	host := strings.TrimPrefix(f.ts.URL, "http://")
	for _, tc := range []struct {
		host, origin string
		code         int
	}{
		{host, "http://" + host, 200},
		{strings.Replace(host, "127.0.0.1", "localhost", 1), "http://" + strings.Replace(host, "127.0.0.1", "localhost", 1), 200},
		{host, "http://localhost:1", 403},
		{"evil.example", "http://evil.example", 403},
	} {
		r := f.do(req{path: "status", app: "app1", header: map[string]string{"Host": tc.host, "Origin": tc.origin}})
		if r.Code != tc.code {
			t.Errorf("Host %s Origin %s: %v, want %d", tc.host, tc.origin, r, tc.code)
		}
	}
}

// TestMiddlewareTwice: the daemon wraps the API handler in the Middleware
// again for its other routes; that must change nothing.
func TestMiddlewareTwice(t *testing.T) {
	f := newFixture(t)
	f.ts.Config.Handler = f.srv.Middleware(f.srv.Handler())
	r := f.do(req{path: "status", app: "app1", header: map[string]string{"Origin": "https://ui.bioid.example"}})
	if r.Code != 200 || len(r.Header.Values("Vary")) != 1 {
		t.Fatalf("got %v %v", r, r.Header)
	}
	if r := f.do(req{path: "status", app: "app1", header: map[string]string{"Host": "evil.example"}}); r.Code != 403 {
		t.Fatalf("foreign host: %v", r)
	}
}
