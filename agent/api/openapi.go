package api

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// openAPISpec is the hand-written OpenAPI 3 description of the routes;
// TestOpenAPI calls every route it documents on the real handler and checks
// the statuses and shapes agree.
//
//go:embed openapi.json
var openAPISpec []byte

// openAPIDocument returns the document with its server URL set to the
// configured base path.
func openAPIDocument(basePath string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPISpec, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	doc["servers"] = []any{map[string]any{
		"url":         strings.TrimSuffix(basePath, "/"),
		"description": "the agent itself; paths are relative to the base path",
	}}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	return b, nil
}

// MergeOpenAPI adds a fragment ({"paths": …, "components": {"schemas": …}})
// documenting routes that the daemon serves next to the API on the same
// listener, outside the base path (the capture sessions), to the document
// /openapi.json serves. The fragment's paths are absolute: each gets the
// server "/" and, unless an operation says otherwise, no security (the BWS
// schemes do not apply). Paths or schemas already documented are an error.
// Call it before serving.
func (s *Server) MergeOpenAPI(fragment []byte) error {
	var doc, frag map[string]any
	if err := json.Unmarshal(s.openapi, &doc); err != nil {
		return fmt.Errorf("openapi.json: %w", err)
	}
	if err := json.Unmarshal(fragment, &frag); err != nil {
		return fmt.Errorf("openapi fragment: %w", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	fpaths, _ := frag["paths"].(map[string]any)
	if paths == nil || len(fpaths) == 0 {
		return errors.New("openapi fragment: no paths")
	}
	for p, v := range fpaths {
		item, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("openapi fragment: path %s is not an object", p)
		}
		if _, dup := paths[p]; dup {
			return fmt.Errorf("openapi fragment: path %s is already documented", p)
		}
		item["servers"] = []any{map[string]any{"url": "/", "description": "the agent itself; this path is absolute"}}
		for _, op := range item {
			if o, ok := op.(map[string]any); ok && o["responses"] != nil && o["security"] == nil {
				o["security"] = []any{}
			}
		}
		paths[p] = item
	}
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	fcomps, _ := frag["components"].(map[string]any)
	fschemas, _ := fcomps["schemas"].(map[string]any)
	if schemas == nil && len(fschemas) > 0 {
		return errors.New("openapi.json: no components.schemas to merge into")
	}
	for name, v := range fschemas {
		if _, dup := schemas[name]; dup {
			return fmt.Errorf("openapi fragment: schema %s is already documented", name)
		}
		schemas[name] = v
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("openapi.json: %w", err)
	}
	s.openapi = b
	return nil
}
