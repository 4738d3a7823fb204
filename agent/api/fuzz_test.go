package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bwsagent/bwsagent/agent/bws"
)

// fuzzCall sends one request straight to the handler (no network) and
// checks the answer is never a server fault and always well formed.
func fuzzCall(t *testing.T, h http.Handler, method, route, rawQuery string, hdr http.Header, body []byte) {
	r := httptest.NewRequest(method, "/extension/"+route, io.NopCloser(bytes.NewReader(body)))
	r.URL.RawQuery = rawQuery
	r.Host = "127.0.0.1:8080"
	r.ContentLength = int64(len(body))
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code >= 500 {
		t.Fatalf("%s %s?%q: %d %s", method, route, rawQuery, w.Code, w.Body)
	}
	switch {
	case w.Code == http.StatusOK && route == "token", w.Code == http.StatusNoContent, w.Body.Len() == 0:
	default:
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s?%q: %d, body is not JSON: %q", method, route, rawQuery, w.Code, w.Body)
		}
	}
}

// FuzzUpload throws arbitrary bodies and queries at /upload with a valid
// token, whatever the Content-Type: never a 500, never a panic.
func FuzzUpload(f *testing.F) {
	// Mutated headers may declare any size up to the pixel limit, and the
	// decoder then really decodes; a small limit keeps executions fast (the
	// limit itself is tested in TestUploadLimits).
	fx := newFixture(f, func(c *Config) { c.MaxPixels, c.MaxUploadBytes = 1_000_000, 1<<20 })
	face := fileDataURL(f, gocvImage(f, "face.jpg"))
	for _, seed := range []struct {
		query string
		body  string
		ct    string
	}{
		{"tag=any&index=1", face, "application/x-www-form-urlencoded"},
		{"tag=left&index=2&trait=Face", face, "text/plain"},
		{"", "", ""},
		{"index=-1", "data:image/png;base64,", ""},
		{"tag=%zz", "data:image/png;base64,iVBORw0KGgo=", "application/json"},
		{"index=99999999999999999999", string(dataURL("png", bombPNG(20000, 20000))), ""},
		{"trait=Face,Periocular", "data:image/jpeg;base64,/9j/4AAQ+SkZJRg==", ""},
		{"TAG=UP&Index=3", "liveimage1=data:x&liveimage2=data:y", "application/x-www-form-urlencoded"},
	} {
		f.Add(seed.query, []byte(seed.body), seed.ct)
	}
	h := fx.srv.Handler()
	f.Fuzz(func(t *testing.T, query string, body []byte, ct string) {
		tok, err := fx.srv.IssueToken(context.Background(), "app1", bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}, bws.OpEnroll, DefaultTokenOptions())
		if err != nil {
			t.Fatal(err)
		}
		hdr := http.Header{"Authorization": {"Bearer " + tok}}
		if ct != "" {
			hdr.Set("Content-Type", ct)
		}
		fuzzCall(t, h, http.MethodPost, "upload", query, hdr, body)
		fuzzCall(t, h, http.MethodGet, "enroll", query, hdr, nil)
	})
}

// FuzzQuery throws arbitrary query strings and Authorization headers at
// every route: never a 500, never a panic.
func FuzzQuery(f *testing.F) {
	fx := newFixture(f)
	routes := []struct{ method, name string }{
		{"GET", "token"}, {"GET", "status"}, {"GET", "isenrolled"}, {"DELETE", "deleteclass"}, {"GET", "result"},
		{"GET", "verify"}, {"GET", "identify"}, {"GET", "enroll"}, {"GET", "livenessdetection"},
		{"POST", "livedetection"}, {"POST", "qualitycheck"},
	}
	for _, q := range []string{
		"id=app1&bcid=bws.12.1&task=enroll&maxtries=15&livedetection=false&challenge=true&challenges=7&autoenroll=true&traits=Face",
		"id=app1&task=livenessdetection&challenge=1",
		"bcid=bws/12/1&trait=Face,Periocular",
		"access_token=a.b.c",
		"maxResults=1000&livedetection=TRUE",
		"bcid=bws.4294967296.1",
		"id=app1&bcid=bws.12.9223372036854775808",
		"%", "a=%00&b=\x00", "bcid=;bcid=x",
	} {
		f.Add(uint8(0), q, "basic")
		f.Add(uint8(5), q, "Bearer x.y.z")
	}
	h := fx.srv.Handler()
	basic := func() string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth("app1", fx.secrets["app1"])
		return r.Header.Get("Authorization")
	}()
	f.Fuzz(func(t *testing.T, route uint8, query, auth string) {
		rt := routes[int(route)%len(routes)]
		if auth == "basic" {
			auth = basic
		}
		fuzzCall(t, h, rt.method, rt.name, query, http.Header{"Authorization": {auth}}, nil)
	})
}
