package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/store"
)

type authKind int

const (
	authNone authKind = iota
	authBasic
	authBearer
)

// route is one BWS endpoint under BasePath.
type route struct {
	name   string // path under BasePath, lower case
	method string
	auth   authKind
	body   int64 // body limit in bytes
	sample bool  // the body carries samples: an oversized one is InvalidSampleData
	serve  func(w http.ResponseWriter, r *http.Request, q query)
}

// maxQueryLen bounds the query string (a token in access_token is the
// longest value, ~1.5 KiB).
const maxQueryLen = 8 << 10

// maxLiveImages is how many liveimageN fields /livedetection takes.
const maxLiveImages = 4

func (s *Server) routeTable() map[string]*route {
	sampleBody := maxEncodedLen(s.cfg.MaxUploadBytes)
	rs := []*route{
		{name: "token", method: http.MethodGet, auth: authBasic, serve: s.handleToken},
		{name: "upload", method: http.MethodPost, auth: authBearer, body: sampleBody, sample: true, serve: s.handleUpload},
		{name: "enroll", method: http.MethodGet, auth: authBearer, serve: s.handlePerform(bws.OpEnroll)},
		{name: "verify", method: http.MethodGet, auth: authBearer, serve: s.handlePerform(bws.OpVerify)},
		{name: "identify", method: http.MethodGet, auth: authBearer, serve: s.handlePerform(bws.OpIdentify)},
		{name: "livenessdetection", method: http.MethodGet, auth: authBearer, serve: s.handlePerform(bws.OpLivenessDetection)},
		{name: "result", method: http.MethodGet, auth: authBasic, serve: s.handleResult},
		{name: "status", method: http.MethodGet, auth: authBasic, serve: s.handleStatus},
		{name: "isenrolled", method: http.MethodGet, auth: authBasic, serve: s.handleIsEnrolled},
		{name: "deleteclass", method: http.MethodDelete, auth: authBasic, serve: s.handleDeleteClass},
		{name: "livedetection", method: http.MethodPost, auth: authBasic, body: maxLiveImages*sampleBody + 1024, sample: true, serve: s.handleLiveDetection},
		{name: "qualitycheck", method: http.MethodPost, auth: authBasic, body: sampleBody, sample: true, serve: s.handleQualityCheck},
	}
	m := make(map[string]*route, len(rs))
	for _, r := range rs {
		m[r.name] = r
	}
	return m
}

func routeAuth(routes map[string]*route, name string) authKind {
	if r := routes[name]; r != nil {
		return r.auth
	}
	return authNone
}

// maxEncodedLen is the longest body that can hold a sample of n bytes as a
// data URL (as bws.ReadDataURL reckons: base64, MIME line breaks, header).
func maxEncodedLen(n int64) int64 {
	e := int64(base64.StdEncoding.EncodedLen(int(n)))
	return e + 2*(e/76+1) + 256
}

// Routes lists the BWS route paths (under BasePath) and their methods,
// for the daemon's documentation and tests.
func (s *Server) Routes() map[string]string {
	out := make(map[string]string, len(s.routes))
	for n, r := range s.routes {
		out[n] = r.method
	}
	return out
}

// serveRoute dispatches to the BWS routes and /openapi.json. Paths are
// matched without regard to case, as BWS (ASP.NET) does.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	name := "other"
	defer func() { s.metrics.request(name, rec.status(), time.Since(start)) }()

	path := strings.ToLower(r.URL.Path)
	base := strings.ToLower(s.cfg.BasePath)
	if path == "/openapi.json" {
		name = "openapi"
		s.handleOpenAPI(rec, r)
		return
	}
	rt := s.routes[strings.TrimPrefix(path, base)]
	if !strings.HasPrefix(path, base) || rt == nil {
		writeMessage(rec, http.StatusNotFound, msgRoute)
		return
	}
	name = rt.name
	if r.Method == http.MethodOptions {
		rec.Header().Set("Allow", rt.method+", OPTIONS")
		rec.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != rt.method {
		rec.Header().Set("Allow", rt.method+", OPTIONS")
		writeMessage(rec, http.StatusMethodNotAllowed, msgMethod)
		return
	}
	limit := rt.body
	if limit == 0 {
		limit = 4 << 10 // routes without a body never read it
	}
	if r.ContentLength > limit {
		s.writeError(rec, r, name, tooLarge(rt))
		return
	}
	r.Body = http.MaxBytesReader(rec, r.Body, limit)
	if len(r.URL.RawQuery) > maxQueryLen {
		s.writeError(rec, r, name, newError(ErrBadRequest, "query too long", nil))
		return
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(rec, r, name, err)
		return
	}
	rt.serve(rec, r, q)
}

func tooLarge(rt *route) error {
	if rt.sample {
		return newError(ErrBadRequest, bws.ErrInvalidSampleData.Error(), bws.ErrSampleTooLarge)
	}
	return newError(ErrBadRequest, msgBodyTooLarge, nil)
}

// readBody reads a bounded body; too long is a 400.
func readBody(r *http.Request, rt *route) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge(rt)
	}
	if err != nil {
		return nil, newError(ErrBadRequest, "could not read the body", err)
	}
	return b, nil
}

// statusWriter remembers the status for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// query holds the first value of each parameter under its lower-case name:
// ASP.NET, which BWS runs on, binds parameters without regard to case.
type query map[string]string

func parseQuery(raw string) (query, error) {
	vs, err := url.ParseQuery(raw)
	if err != nil {
		return nil, newError(ErrBadRequest, "invalid query", err)
	}
	keys := make([]string, 0, len(vs))
	for k := range vs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic when two spellings of one name collide
	q := make(query, len(vs))
	for _, k := range keys {
		lk := strings.ToLower(k)
		if _, dup := q[lk]; !dup && len(vs[k]) > 0 {
			q[lk] = vs[k][0]
		}
	}
	return q, nil
}

// boolean parses true/false (any case) or 1/0, def when absent.
func (q query) boolean(name string, def bool) (bool, error) {
	v, ok := q[name]
	if !ok || v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, newError(ErrBadRequest, "invalid "+name, nil)
}

// integer parses a decimal in [lo, hi], def when absent.
func (q query) integer(name string, def, lo, hi int) (int, error) {
	v, ok := q[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, newError(ErrBadRequest, "invalid "+name, err)
	}
	return n, nil
}

func (q query) bcid(name string) (bws.BCID, error) {
	v, ok := q[name]
	if !ok || v == "" {
		return bws.BCID{}, newError(ErrBadRequest, "missing "+name, nil)
	}
	c, err := bws.ParseBCID(v)
	if err != nil {
		return bws.BCID{}, newError(ErrBadRequest, "invalid BCID", err)
	}
	return c, nil
}

func (q query) traits(name string) (bws.Traits, error) {
	v, ok := q[name]
	if !ok || v == "" {
		return 0, nil
	}
	t, err := bws.ParseTraits(v)
	if err != nil {
		return 0, newError(ErrBadRequest, "invalid "+name, err)
	}
	return t, nil
}

func (s *Server) basic(w http.ResponseWriter, r *http.Request, route string) (store.App, bool) {
	if err := s.open(); err != nil {
		s.writeError(w, r, route, err)
		return store.App{}, false
	}
	app, err := s.auth.basic(r.Context(), r)
	if err != nil {
		s.writeError(w, r, route, err)
		return store.App{}, false
	}
	return app, true
}

// GET /token?id=&bcid=&task=&maxtries=&livedetection=&challenge=&challenges=&autoenroll=&traits=
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, q query) {
	app, ok := s.basic(w, r, "token")
	if !ok {
		return
	}
	fail := func(err error) { s.writeError(w, r, "token", err) }
	id := q["id"]
	if id == "" {
		fail(newError(ErrBadRequest, "missing id", nil))
		return
	}
	if id != app.ID {
		fail(newError(ErrBadCredentials, msgBadCredentials, fmt.Errorf("id %q is not the authenticated app %q", shorten(id, 64), app.ID)))
		return
	}
	op, err := bws.ParseOperation(q["task"])
	if err != nil {
		fail(newError(ErrBadRequest, "invalid task", err))
		return
	}
	var bcid bws.BCID
	if op != bws.OpLivenessDetection || q["bcid"] != "" {
		if bcid, err = q.bcid("bcid"); err != nil {
			fail(err)
			return
		}
	}
	opts := DefaultTokenOptions()
	if opts.MaxTries, err = q.integer("maxtries", bws.DefaultTries, bws.MinTries, bws.MaxTries); err != nil {
		fail(err)
		return
	}
	if opts.LiveDetection, err = q.boolean("livedetection", true); err != nil {
		fail(err)
		return
	}
	if opts.Challenge, err = q.boolean("challenge", false); err != nil {
		fail(err)
		return
	}
	if opts.Challenges, err = q.integer("challenges", bws.DefaultChallengeLen, bws.MinChallengeLen, bws.MaxChallengeLen); err != nil {
		fail(err)
		return
	}
	if opts.AutoEnroll, err = q.boolean("autoenroll", false); err != nil {
		fail(err)
		return
	}
	if t, err := q.traits("traits"); err != nil {
		fail(err)
		return
	} else if t != 0 {
		opts.Traits = t
	}
	raw, err := s.issueToken(app, bcid, op, opts)
	if err != nil {
		fail(err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, raw)
}

// POST /upload?tag=&index=&trait= with a data URL as the raw body,
// whatever the Content-Type: never form-decoded, so '+' stays '+'.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, q query) {
	fail := func(err error) { s.writeError(w, r, "upload", err) }
	raw, err := bearer(r)
	if err != nil {
		fail(err)
		return
	}
	c, err := s.authorize(r.Context(), raw)
	if err != nil {
		fail(err)
		return
	}
	index, err := q.integer("index", 0, 0, maxIndex)
	if err != nil {
		fail(err)
		return
	}
	trait, err := q.traits("trait")
	if err != nil {
		fail(err)
		return
	}
	release, err := s.bodySlot(r.Context())
	if err != nil {
		fail(err)
		return
	}
	defer release()
	body, err := readBody(r, s.routes["upload"])
	if err != nil {
		fail(err)
		return
	}
	res, err := s.upload(r.Context(), c, body, q["tag"], index, trait)
	if err != nil {
		fail(err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// GET /enroll, /verify, /identify, /livenessdetection [?livedetection=&maxResults=]
func (s *Server) handlePerform(op bws.Operation) func(http.ResponseWriter, *http.Request, query) {
	name := map[bws.Operation]string{bws.OpEnroll: "enroll", bws.OpVerify: "verify", bws.OpIdentify: "identify", bws.OpLivenessDetection: "livenessdetection"}[op]
	return func(w http.ResponseWriter, r *http.Request, q query) {
		fail := func(err error) { s.writeError(w, r, name, err) }
		raw, err := bearer(r)
		if err != nil {
			fail(err)
			return
		}
		var opts PerformOptions
		if opts.LiveDetection, err = q.boolean("livedetection", false); err != nil {
			fail(err)
			return
		}
		if op == bws.OpIdentify {
			if opts.MaxResults, err = q.integer("maxresults", DefaultMaxResults, 1, MaxMaxResults); err != nil {
				fail(err)
				return
			}
		}
		res, err := s.PerformWith(r.Context(), raw, op, opts)
		if err != nil {
			fail(err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// GET /result?access_token=
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request, q query) {
	app, ok := s.basic(w, r, "result")
	if !ok {
		return
	}
	raw := q["access_token"]
	if raw == "" {
		s.writeError(w, r, "result", newError(ErrBadRequest, "missing access_token", nil))
		return
	}
	res, err := s.jobResultOf(r.Context(), app, raw)
	if err != nil {
		s.writeError(w, r, "result", err)
		return
	}
	if res == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(res)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res)
}

// GET /status
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, _ query) {
	app, ok := s.basic(w, r, "status")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.status(app))
}

// classOf parses ?bcid= and checks the app owns its partition.
func (s *Server) classOf(app store.App, q query) (bws.BCID, error) {
	c, err := q.bcid("bcid")
	if err != nil {
		return c, err
	}
	if _, err := q.traits("trait"); err != nil {
		return c, err
	}
	if !app.Allows(c) {
		return c, newError(ErrPartition, msgPartition, nil)
	}
	return c, nil
}

// GET /isenrolled?bcid=&trait= — 200 or 404, no body.
func (s *Server) handleIsEnrolled(w http.ResponseWriter, r *http.Request, q query) {
	app, ok := s.basic(w, r, "isenrolled")
	if !ok {
		return
	}
	c, err := s.classOf(app, q)
	if err != nil {
		s.writeError(w, r, "isenrolled", err)
		return
	}
	enrolled, err := s.IsEnrolled(r.Context(), c)
	if err != nil {
		s.writeError(w, r, "isenrolled", err)
		return
	}
	w.Header().Set("Content-Length", "0")
	if enrolled {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusNotFound)
	}
}

// DELETE /deleteclass?bcid= — 200 also when there was nothing to delete.
func (s *Server) handleDeleteClass(w http.ResponseWriter, r *http.Request, q query) {
	app, ok := s.basic(w, r, "deleteclass")
	if !ok {
		return
	}
	c, err := s.classOf(app, q)
	if err == nil {
		err = s.deleteClass(r.Context(), app.ID, c)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.writeError(w, r, "deleteclass", err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// POST /livedetection with {"liveimage1":"data:…","liveimage2":"data:…"}
// as JSON or as a form — 200 body true or false.
func (s *Server) handleLiveDetection(w http.ResponseWriter, r *http.Request, _ query) {
	app, ok := s.basic(w, r, "livedetection")
	if !ok {
		return
	}
	fail := func(err error) { s.writeError(w, r, "livedetection", err) }
	release, err := s.bodySlot(r.Context())
	if err != nil {
		fail(err)
		return
	}
	defer release()
	body, err := readBody(r, s.routes["livedetection"])
	if err != nil {
		fail(err)
		return
	}
	urls, err := liveImages(body)
	if err != nil {
		fail(err)
		return
	}
	images := make([][]byte, len(urls))
	for i, u := range urls {
		smp, err := bws.ParseDataURL([]byte(u), int(s.cfg.MaxUploadBytes))
		if err != nil {
			fail(err)
			return
		}
		images[i] = smp.Data
	}
	live, err := s.liveDetection(r.Context(), app, images)
	if err != nil {
		fail(err)
		return
	}
	writeJSON(w, http.StatusOK, live)
}

// liveImages returns liveimage1, liveimage2, … (consecutive, at least two)
// from a JSON object or a form body.
func liveImages(body []byte) ([]string, error) {
	missing := newError(ErrBadRequest, bws.ErrMissingData.Error(), nil)
	fields := map[string]string{}
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, missing
	case trimmed[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return nil, newError(ErrBadRequest, bws.ErrInvalidSampleData.Error(), err)
		}
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				fields[strings.ToLower(k)] = str
			}
		}
	default:
		for k, v := range formFields(string(trimmed)) {
			fields[k] = v
		}
	}
	var out []string
	for i := 1; i <= maxLiveImages; i++ {
		v, ok := fields["liveimage"+strconv.Itoa(i)]
		if !ok || v == "" {
			break
		}
		out = append(out, v)
	}
	if len(out) < 2 {
		return nil, missing
	}
	return out, nil
}

// formFields parses a form body leniently. Clients post data URLs both
// properly encoded and raw: url.ParseQuery refuses a raw one (the ';' of
// ";base64") and would turn its '+' into spaces. A value with '%' is
// decoded; one without is taken as is. Spaces never occur in a data URL,
// so any left after decoding were '+' and are put back.
func formFields(body string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(body, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if strings.Contains(v, "%") {
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
		}
		k = strings.ToLower(k)
		if _, dup := out[k]; !dup {
			out[k] = strings.ReplaceAll(v, " ", "+")
		}
	}
	return out
}

// POST /qualitycheck with a data URL as the raw body.
func (s *Server) handleQualityCheck(w http.ResponseWriter, r *http.Request, _ query) {
	if _, ok := s.basic(w, r, "qualitycheck"); !ok {
		return
	}
	fail := func(err error) { s.writeError(w, r, "qualitycheck", err) }
	release, err := s.bodySlot(r.Context())
	if err != nil {
		fail(err)
		return
	}
	defer release()
	body, err := readBody(r, s.routes["qualitycheck"])
	if err != nil {
		fail(err)
		return
	}
	smp, err := bws.ParseDataURL(body, int(s.cfg.MaxUploadBytes))
	if err != nil {
		fail(err)
		return
	}
	res, err := s.qualityCheck(r.Context(), smp.Data)
	if err != nil {
		fail(err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// GET /openapi.json
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeMessage(w, http.StatusMethodNotAllowed, msgMethod)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.openapi)))
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(s.openapi)
	}
}
