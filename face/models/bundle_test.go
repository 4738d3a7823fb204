package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testManifest returns a manifest of two small packages (one of each kind)
// and a cache holding their files.
func testManifest(t *testing.T) (Manifest, Cache) {
	t.Helper()
	c := Cache{Dir: filepath.Join(t.TempDir(), "models")}
	mk := func(name, version, kind string, files ...string) Package {
		p := Package{Name: name, Version: version, Kind: kind}
		for i := 0; i < len(files); i += 2 {
			path, body := files[i], files[i+1]
			sum := sha256.Sum256([]byte(body))
			p.Files = append(p.Files, File{Path: path, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))})
			dst := c.Path(p, path)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	m := Manifest{Packages: []Package{
		mk("detector", "1.0.0", KindModel, "model/det.onnx", strings.Repeat("weights", 100), "LICENSE", "MIT"),
		mk("@scope/photos", "2.0.0", KindTestdata, "demo/a.jpg", "jpeg"),
	}}
	return m, c
}

func bundle(t *testing.T, c Cache, pkgs []Package) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Bundle(context.Background(), &buf, pkgs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type entry struct {
	hdr  tar.Header
	body []byte
}

// rewrite decodes a bundle, lets edit change its entries and encodes it again.
func rewrite(t *testing.T, b []byte, edit func([]entry) []entry) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var es []entry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{*hdr, body})
	}
	es = edit(es)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for _, e := range es {
		h := e.hdr
		h.Size = int64(len(e.body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestBundleInstallRoundTrip(t *testing.T) {
	m, c := testManifest(t)
	b := bundle(t, c, m.Packages)
	if !bytes.Equal(b, bundle(t, c, m.Packages)) {
		t.Error("bundling twice gave different bytes (the .deb would not be reproducible)")
	}

	dst := Cache{Dir: filepath.Join(t.TempDir(), "cache", "models")}
	got, err := dst.Install(context.Background(), bytes.NewReader(b), m, KindModel)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Packages) != 2 {
		t.Fatalf("installed %d packages, want 2", len(got.Packages))
	}
	for _, p := range m.Packages {
		if err := dst.Verify(p); err != nil {
			t.Error(err)
		}
		fi, err := os.Stat(dst.Path(p, p.Files[0].Path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s installed with mode %v, want 0644 (the service user reads it)", fi.Name(), fi.Mode().Perm())
		}
	}
	// No staging directory is left behind.
	leftovers, _ := filepath.Glob(filepath.Join(dst.Dir, ".install-*"))
	if len(leftovers) > 0 {
		t.Errorf("staging left behind: %v", leftovers)
	}

	// Installing again over an intact cache is fine (idempotent).
	if _, err := dst.Install(context.Background(), bytes.NewReader(b), m, KindModel); err != nil {
		t.Fatal(err)
	}
}

func TestInstallRepairsCorruptCache(t *testing.T) {
	m, c := testManifest(t)
	b := bundle(t, c, m.Packages[:1])
	dst := Cache{Dir: t.TempDir()}
	p := m.Packages[0]
	bad := dst.Path(p, p.Files[0].Path)
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dst.Verify(p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("setup: %v", err)
	}
	if _, err := dst.Install(context.Background(), bytes.NewReader(b), m, KindModel); err != nil {
		t.Fatal(err)
	}
	if err := dst.Verify(p); err != nil {
		t.Fatal(err)
	}
}

func TestInstallRejects(t *testing.T) {
	m, c := testManifest(t)
	good := bundle(t, c, m.Packages)
	model := m.Packages[0]
	modelEntry := entryName(model, model.Files[0].Path)
	edit := func(f func([]entry) []entry) []byte { return rewrite(t, good, f) }

	foreignBundle := edit(func(es []entry) []entry {
		for i := range es {
			if es[i].hdr.Name == bundleManifest {
				es[i].body = bytes.ReplaceAll(es[i].body, []byte(`"1.0.0"`), []byte(`"9.9.9"`))
			}
		}
		return es
	})

	for _, tc := range []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"tampered file, same size", edit(func(es []entry) []entry {
			for i := range es {
				if es[i].hdr.Name == modelEntry {
					es[i].body = bytes.Clone(es[i].body)
					es[i].body[0] ^= 1
				}
			}
			return es
		}), "sha256 differs"},
		{"tampered file with forged manifest and sums", edit(func(es []entry) []entry {
			evil := []byte(strings.Repeat("WEIGHTS", 100))
			sum := sha256.Sum256(evil)
			for i := range es {
				switch es[i].hdr.Name {
				case modelEntry:
					es[i].body = evil
				case bundleManifest, bundleSums:
					es[i].body = bytes.ReplaceAll(es[i].body, []byte(model.Files[0].SHA256), []byte(hex.EncodeToString(sum[:])))
				}
			}
			return es
		}), "sha256 differs"},
		{"resized file", edit(func(es []entry) []entry {
			for i := range es {
				if es[i].hdr.Name == modelEntry {
					es[i].body = append(es[i].body, 0)
				}
			}
			return es
		}), "bytes, the manifest says"},
		{"extra file", edit(func(es []entry) []entry {
			return append(es, entry{tar.Header{Name: bundleRoot + "detector@1.0.0/model/evil.so", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("x")})
		}), "not a file of this binary's model manifest"},
		{"path traversal", edit(func(es []entry) []entry {
			return append(es, entry{tar.Header{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("x")})
		}), "not a file of this binary's model manifest"},
		{"symlink", edit(func(es []entry) []entry {
			return append(es, entry{tar.Header{Name: modelEntry + ".lnk", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}, nil})
		}), "not a regular file"},
		{"duplicate", edit(func(es []entry) []entry {
			for _, e := range es {
				if e.hdr.Name == modelEntry {
					return append(es, e)
				}
			}
			return es
		}), "appears twice"},
		{"missing model file", edit(func(es []entry) []entry {
			var out []entry
			for _, e := range es {
				if e.hdr.Name != modelEntry {
					out = append(out, e)
				}
			}
			return out
		}), "has 1 of its 2 files"},
		{"no manifest", edit(func(es []entry) []entry { return es[1:] }), "not a bwsagent model bundle"},
		{"other models", foreignBundle, "detector@9.9.9"},
		{"not gzip", []byte("PK\x03\x04 a zip"), "not a gzip file"},
		{"truncated", good[:len(good)/2], "model bundle rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := Cache{Dir: t.TempDir()}
			_, err := dst.Install(context.Background(), bytes.NewReader(tc.bundle), m, KindModel)
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrBundle containing %q", err, tc.want)
			}
			// Nothing at all is installed from a rejected bundle.
			var files []string
			filepath.WalkDir(dst.Dir, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					files = append(files, path)
				}
				return nil
			})
			if len(files) > 0 {
				t.Errorf("rejected bundle left files: %v", files)
			}
		})
	}
}

func TestInstallWithoutRequiredKind(t *testing.T) {
	m, c := testManifest(t)
	b := bundle(t, c, m.Packages[1:]) // test photos only
	dst := Cache{Dir: t.TempDir()}
	if _, err := dst.Install(context.Background(), bytes.NewReader(b), m, KindModel); !errors.Is(err, ErrBundle) {
		t.Fatalf("a bundle without the models was accepted: %v", err)
	}
	if _, err := dst.Install(context.Background(), bytes.NewReader(b), m, ""); err != nil {
		t.Fatalf("nothing required: %v", err)
	}
}

func TestBundleRefusesCorruptCache(t *testing.T) {
	m, c := testManifest(t)
	p := m.Packages[0]
	if err := os.WriteFile(c.Path(p, p.Files[0].Path), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := c.Bundle(context.Background(), io.Discard, m.Packages)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	os.Remove(c.Path(p, p.Files[0].Path))
	if err := c.Bundle(context.Background(), io.Discard, m.Packages); !errors.Is(err, ErrMissing) {
		t.Fatalf("got %v, want ErrMissing", err)
	}
}

func TestBundleFileIsAtomic(t *testing.T) {
	m, c := testManifest(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "models.tar.gz")
	if err := c.BundleFile(context.Background(), dst, m.Packages); err != nil {
		t.Fatal(err)
	}
	p := m.Packages[0]
	os.Remove(c.Path(p, p.Files[0].Path))
	if err := c.BundleFile(context.Background(), dst, m.Packages); err == nil {
		t.Fatal("bundled a cache with a missing file")
	}
	// The earlier bundle is intact and no temporary file is left.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("dir holds %d entries, want 1", len(ents))
	}
	dst2 := Cache{Dir: t.TempDir()}
	if _, err := dst2.InstallFile(context.Background(), dst, m, KindModel); err != nil {
		t.Fatal(err)
	}
}

// TestBundleSums checks SHA256SUMS matches the files for a manual
// 'sha256sum -c'.
func TestBundleSums(t *testing.T) {
	m, c := testManifest(t)
	b := bundle(t, c, m.Packages)
	var sums string
	rewrite(t, b, func(es []entry) []entry {
		for _, e := range es {
			if e.hdr.Name == bundleSums {
				sums = string(e.body)
			}
		}
		return es
	})
	p := m.Packages[0]
	want := p.Files[0].SHA256 + "  " + p.dirName() + "/" + p.Files[0].Path + "\n"
	if !strings.Contains(sums, want) {
		t.Fatalf("SHA256SUMS lacks %q:\n%s", want, sums)
	}
}
