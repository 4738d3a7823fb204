package api

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPI walks the served OpenAPI document: it must describe exactly
// the handler's routes, and every documented operation is called on the
// real handler, its answers checked against the documented statuses and
// schemas. Every documented status but 500 and 503 must be produced.
func TestOpenAPI(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LockoutFailures = 1 })
	r := f.do(req{path: "/openapi.json"})
	if r.Code != 200 || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("GET /openapi.json: %v", r)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	if url := at(doc, "servers").([]any)[0].(map[string]any)["url"]; url != "/extension" {
		t.Fatalf("server url %v", url)
	}

	// The document and the route table agree, both ways.
	paths := at(doc, "paths").(map[string]any)
	routes := f.srv.Routes()
	for p, item := range paths {
		name := strings.TrimPrefix(p, "/")
		method, ok := routes[name]
		if !ok {
			t.Errorf("documented path %s is not served", p)
			continue
		}
		for m := range item.(map[string]any) {
			if !strings.EqualFold(m, method) {
				t.Errorf("%s documents %s, the handler serves %s", p, m, method)
			}
		}
	}
	for name := range routes {
		if _, ok := paths["/"+name]; !ok {
			t.Errorf("route %s is not documented", name)
		}
	}

	scenarios := openAPIScenarios(t, f)
	covered := map[string]map[string]bool{}
	for p, item := range paths {
		for method, opAny := range item.(map[string]any) {
			op := opAny.(map[string]any)
			id := op["operationId"].(string)
			responses := op["responses"].(map[string]any)
			covered[id] = map[string]bool{}
			list := scenarios[id]
			for scheme := range at(op, "security").([]any)[0].(map[string]any) {
				list = append(list, genericScenarios(scheme, strings.ToUpper(method), strings.TrimPrefix(p, "/"))...)
			}
			if len(scenarios[id]) == 0 {
				t.Errorf("%s: no scenario", id)
			}
			for _, sc := range list {
				t.Run(id+"/"+sc.name, func(t *testing.T) {
					rq := sc.build()
					if rq.method == "" {
						rq.method = strings.ToUpper(method)
					}
					if rq.path == "" {
						rq.path = strings.TrimPrefix(p, "/")
					}
					got := f.do(rq)
					code := strconv.Itoa(got.Code)
					spec, ok := responses[code]
					if !ok {
						t.Fatalf("status %s not documented for %s (%s)", code, id, got.Body)
					}
					covered[id][code] = true
					if err := checkResponse(doc, resolve(doc, spec), got); err != nil {
						t.Errorf("%s %s: %v\n%s", id, code, err, got.Body)
					}
				})
			}
			for code := range responses {
				if code != "500" && code != "503" && !covered[id][code] {
					t.Errorf("%s: documented status %s never produced", id, code)
				}
			}
		}
	}
}

type scenario struct {
	name  string
	build func() req
}

// genericScenarios are the authentication failures every route of a
// scheme documents.
func genericScenarios(scheme, method, path string) []scenario {
	switch scheme {
	case "basicAuth":
		return []scenario{
			{"no auth", func() req { return req{} }},
			// One unknown id per route, so the failures lock nobody.
			{"wrong secret", func() req { return req{app: "nobody-" + path, secret: "x"} }},
			{"locked out", func() req { return req{app: "locked", secret: "x"} }},
		}
	case "bwsToken":
		return []scenario{{"no token", func() req { return req{} }}}
	}
	return nil
}

// openAPIScenarios are the route-specific calls; they prepare their state
// through the same API.
func openAPIScenarios(t *testing.T, f *fixture) map[string][]scenario {
	face := fileDataURL(t, gocvImage(t, "face.jpg"))
	still := staticSeq(t)
	noFace := pngDataURL(t, greyImage(120, 100))
	for i := 0; i < f.cfg.AuthFailures; i++ {
		f.do(req{path: "status", app: "locked", secret: "x"})
	}
	enrolled := func(class string) {
		tok := f.token("app1", "bcid="+class+"&task=enroll&livedetection=false")
		f.uploadAll(tok, []string{face})
		if res := f.perform(tok, "enroll"); !res.Success {
			t.Fatalf("setup: enroll %s: %+v", class, res)
		}
	}
	enrolled("bws.12.1")
	withSamples := func(query string, urls ...string) string {
		tok := f.token("app1", query)
		f.uploadAll(tok, urls)
		return tok
	}
	body := func(u string) func() req { return func() req { return req{app: "app1", body: u} } }
	return map[string][]scenario{
		"token": {
			{"ok", func() req { return req{path: "token?id=app1&bcid=bws.12.1", app: "app1"} }},
			{"bad bcid", func() req { return req{path: "token?id=app1&bcid=x", app: "app1"} }},
			{"other partition", func() req { return req{path: "token?id=app1&bcid=bws.13.1", app: "app1"} }},
		},
		"upload": {
			{"accepted", func() req { return req{bearer: f.token("app1", "bcid=bws.12.1"), body: face} }},
			{"no face", func() req { return req{bearer: f.token("app1", "bcid=bws.12.1"), body: noFace} }},
			{"empty", func() req { return req{bearer: f.token("app1", "bcid=bws.12.1")} }},
			{"partition lost", func() req {
				tok := f.token("app3", "bcid=acme.12.1")
				app, _ := f.db.App(t.Context(), "app3")
				app.Partitions = []int{99}
				if err := f.db.PutApp(t.Context(), app); err != nil {
					t.Fatal(err)
				}
				return req{bearer: tok, body: face}
			}},
		},
		"enroll": {
			{"ok", func() req { return req{bearer: withSamples("bcid=bws.12.2&task=enroll&livedetection=false", face)} }},
			{"not live", func() req { return req{bearer: withSamples("bcid=bws.12.2&task=enroll", still...)} }},
			{"no samples", func() req { return req{bearer: f.token("app1", "bcid=bws.12.2&task=enroll")} }},
			{"verify token", func() req { return req{bearer: f.token("app1", "bcid=bws.12.2")} }},
		},
		"verify": {
			{"ok", func() req { return req{bearer: withSamples("bcid=bws.12.1&livedetection=false", face)} }},
			{"no template", func() req { return req{bearer: withSamples("bcid=bws.12.50&livedetection=false", face)} }},
			{"no samples", func() req { return req{bearer: f.token("app1", "bcid=bws.12.1")} }},
			{"enroll token", func() req { return req{bearer: f.token("app1", "bcid=bws.12.1&task=enroll")} }},
			// LockoutFailures is 1: one failed attempt locks the class.
			{"not live", func() req { return req{bearer: withSamples("bcid=bws.12.60", still...)} }},
			{"locked", func() req { return req{bearer: withSamples("bcid=bws.12.60", still...)} }},
		},
		"identify": {
			{"ok", func() req {
				return req{path: "identify?maxResults=3", bearer: withSamples("bcid=bws.12.0&task=identify&livedetection=false", face)}
			}},
			{"bad maxResults", func() req {
				return req{path: "identify?maxResults=x", bearer: f.token("app1", "bcid=bws.12.0&task=identify")}
			}},
			{"verify token", func() req { return req{bearer: f.token("app1", "bcid=bws.12.0")} }},
		},
		"livenessdetection": {
			{"not live", func() req { return req{bearer: withSamples("task=livenessdetection", still...)} }},
			{"no samples", func() req { return req{bearer: f.token("app1", "task=livenessdetection")} }},
			{"verify token", func() req { return req{bearer: f.token("app1", "bcid=bws.12.0")} }},
		},
		"result": {
			{"done", func() req {
				tok := withSamples("bcid=bws.12.1&livedetection=false", face)
				f.perform(tok, "verify")
				return req{path: "result?access_token=" + tok, app: "app1"}
			}},
			{"identify done", func() req {
				tok := withSamples("bcid=bws.12.0&task=identify&livedetection=false", face)
				f.perform(tok, "identify")
				return req{path: "result?access_token=" + tok, app: "app1"}
			}},
			{"no call yet", func() req { return req{path: "result?access_token=" + f.token("app1", "bcid=bws.12.1"), app: "app1"} }},
			{"missing token", func() req { return req{path: "result", app: "app1"} }},
			{"other app", func() req { return req{path: "result?access_token=" + f.token("app1", "bcid=bws.12.1"), app: "app2"} }},
		},
		"status":     {{"ok", func() req { return req{app: "app1"} }}},
		"isenrolled": {{"yes", func() req { return req{path: "isenrolled?bcid=bws.12.1", app: "app1"} }}, {"no", func() req { return req{path: "isenrolled?bcid=bws.12.9", app: "app1"} }}, {"bad", func() req { return req{path: "isenrolled?bcid=b", app: "app1"} }}},
		"deleteclass": {
			{"ok", func() req { return req{path: "deleteclass?bcid=bws.12.2", app: "app1"} }},
			{"bad", func() req { return req{path: "deleteclass", app: "app1"} }},
		},
		"livedetection": {
			{"still", body(`{"liveimage1":"` + still[0] + `","liveimage2":"` + still[1] + `"}`)},
			{"missing", body(`{}`)},
		},
		"qualitycheck": {
			{"face", body(face)},
			{"no face", body(noFace)},
			{"corrupt", body("data:image/png;base64,AAAA")},
		},
	}
}

// checkResponse checks an answer against a documented response.
func checkResponse(doc, spec map[string]any, got *resp) error {
	content, _ := spec["content"].(map[string]any)
	if len(content) == 0 {
		if len(got.Body) != 0 {
			return fmt.Errorf("documented without body, got %d bytes", len(got.Body))
		}
		return nil
	}
	ct, _, _ := strings.Cut(got.Header.Get("Content-Type"), ";")
	media, ok := content[ct].(map[string]any)
	if !ok {
		return fmt.Errorf("content type %q not documented", ct)
	}
	schema := media["schema"].(map[string]any)
	var v any = string(got.Body)
	if ct == "application/json" {
		if err := json.Unmarshal(got.Body, &v); err != nil {
			return err
		}
	}
	return validate(doc, schema, v, "$")
}

// validate is the subset of JSON Schema the document uses: $ref, type,
// properties, required, additionalProperties false, items, enum,
// minimum/maximum.
func validate(doc, schema map[string]any, v any, path string) error {
	if ref, ok := schema["$ref"].(string); ok {
		return validate(doc, resolve(doc, map[string]any{"$ref": ref}), v, path)
	}
	switch schema["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want object, got %T", path, v)
		}
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asList(schema["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: missing required %s", path, r)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					return fmt.Errorf("%s: undocumented property %s", path, k)
				}
				continue
			}
			if err := validate(doc, ps, m[k], path+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want array, got %T", path, v)
		}
		for i, e := range a {
			if err := validate(doc, schema["items"].(map[string]any), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want string, got %T", path, v)
		}
		if enum := asList(schema["enum"]); enum != nil && !slices.Contains(enum, any(s)) {
			return fmt.Errorf("%s: %q not in %v", path, s, enum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want boolean, got %T", path, v)
		}
	case "number", "integer":
		n, ok := v.(float64)
		if !ok {
			return fmt.Errorf("%s: want number, got %T", path, v)
		}
		if schema["type"] == "integer" && n != math.Trunc(n) {
			return fmt.Errorf("%s: %v is not an integer", path, n)
		}
	default:
		return fmt.Errorf("%s: schema without type", path)
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

// resolve follows a local $ref ("#/components/…").
func resolve(doc map[string]any, v any) map[string]any {
	m := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	cur := any(doc)
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		cur = cur.(map[string]any)[part]
	}
	return resolve(doc, cur)
}

func at(doc map[string]any, key string) any { return doc[key] }
