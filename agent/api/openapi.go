package api

import (
	_ "embed"
	"encoding/json"
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
