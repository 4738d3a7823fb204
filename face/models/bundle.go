package models

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A bundle carries cached model files to devices without registry access
// (and in the Debian package): a tar.gz with
//
//	bwsagent-models/manifest.json   the manifest of the bundled packages
//	bwsagent-models/SHA256SUMS      for 'sha256sum -c' after a manual extraction
//	bwsagent-models/<pkg>/<file>    each file, as laid out in the cache
//
// Install never trusts the bundle's own manifest or sums: every file is
// checked against the manifest built into the installing binary.
const bundleRoot = "bwsagent-models/"

// Bundle entry names besides the package files.
const (
	bundleManifest = bundleRoot + "manifest.json"
	bundleSums     = bundleRoot + "SHA256SUMS"
	maxBundleMeta  = 1 << 20 // manifest.json and SHA256SUMS are a few KiB
)

// ErrBundle is returned (wrapped) when a bundle is malformed, incomplete,
// tampered with or made for other models.
var ErrBundle = errors.New("model bundle rejected")

// entryName is a package file's name in the bundle.
func entryName(p Package, file string) string {
	return bundleRoot + p.dirName() + "/" + file
}

// bundleTime is every entry's modification time, so that the same models
// give the same bytes (a reproducible Debian package).
func bundleTime() time.Time { return time.Unix(0, 0).UTC() }

// Bundle writes the cached files of pkgs to w as a bundle. Each file is
// hashed while it is copied and must match the manifest, so a corrupt cache
// is never bundled.
func (c Cache) Bundle(ctx context.Context, w io.Writer, pkgs []Package) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	meta, err := json.MarshalIndent(Manifest{Packages: pkgs}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeEntry(tw, bundleManifest, append(meta, '\n')); err != nil {
		return err
	}
	var sums strings.Builder
	for _, p := range pkgs {
		for _, f := range p.Files {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := entryName(p, f.Path)
			if err := c.bundleFile(tw, name, c.Path(p, f.Path), f); err != nil {
				return err
			}
			fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, strings.TrimPrefix(name, bundleRoot))
		}
	}
	if err := writeEntry(tw, bundleSums, []byte(sums.String())); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

func (c Cache) bundleFile(tw *tar.Writer, name, src string, f File) error {
	fh, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s (run 'bwsagent models fetch' first)", ErrMissing, src)
	}
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer fh.Close()
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: f.Size, ModTime: bundleTime(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	h := sha256.New()
	// The header promised f.Size bytes: a shorter or longer file fails here.
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(fh, f.Size+1))
	if err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
		return fmt.Errorf("bundle %s: %w", src, err)
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("%w: %s does not match the manifest (run 'bwsagent models fetch' to repair)", ErrCorrupt, src)
	}
	return nil
}

func writeEntry(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: bundleTime(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

// BundleFile writes a bundle to path through a temporary file and a
// rename, so a failed run leaves no partial bundle behind.
func (c Cache) BundleFile(ctx context.Context, dst string, pkgs []Package) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".bundle-*")
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := c.Bundle(ctx, tmp, pkgs); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("bundle: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// Installed lists what Install put into the cache.
type Installed struct {
	Packages []Package
}

// Install reads a bundle from r and installs its files into the cache.
// Every file must be one the trusted manifest lists, with its exact size
// and sha256 — the bundle's own manifest and sums are not trusted — and
// every package of kind required must be complete. Nothing is installed
// unless the whole bundle verifies: files are staged in the cache
// directory, then each is renamed into place (never a half-written model).
func (c Cache) Install(ctx context.Context, r io.Reader, trusted Manifest, required string) (Installed, error) {
	want := map[string]struct {
		p Package
		f File
	}{}
	for _, p := range trusted.Packages {
		for _, f := range p.Files {
			want[entryName(p, f.Path)] = struct {
				p Package
				f File
			}{p, f}
		}
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return Installed{}, fmt.Errorf("install models: %w", err)
	}
	stage, err := os.MkdirTemp(c.Dir, ".install-*")
	if err != nil {
		return Installed{}, fmt.Errorf("install models: %w", err)
	}
	defer os.RemoveAll(stage)

	gz, err := gzip.NewReader(r)
	if err != nil {
		return Installed{}, fmt.Errorf("%w: not a gzip file: %v", ErrBundle, err)
	}
	tr := tar.NewReader(gz)
	staged := map[string]string{} // entry name → staged file
	sawManifest := false
	for {
		if err := ctx.Err(); err != nil {
			return Installed{}, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Installed{}, fmt.Errorf("%w: read: %v", ErrBundle, err)
		}
		switch {
		case hdr.Typeflag == tar.TypeDir && strings.HasPrefix(hdr.Name, bundleRoot):
			continue // directories are implied by the files
		case hdr.Typeflag != tar.TypeReg:
			return Installed{}, fmt.Errorf("%w: entry %q is not a regular file", ErrBundle, hdr.Name)
		case hdr.Name == bundleManifest:
			// Informative only; read it to say which models a foreign
			// bundle carries.
			if err := checkBundleManifest(tr, hdr.Size, trusted); err != nil {
				return Installed{}, err
			}
			sawManifest = true
			continue
		case hdr.Name == bundleSums:
			continue // for humans; we check against the trusted manifest
		}
		e, ok := want[hdr.Name]
		if !ok {
			return Installed{}, fmt.Errorf("%w: %q is not a file of this binary's model manifest", ErrBundle, hdr.Name)
		}
		if _, dup := staged[hdr.Name]; dup {
			return Installed{}, fmt.Errorf("%w: %q appears twice", ErrBundle, hdr.Name)
		}
		if hdr.Size != e.f.Size {
			return Installed{}, fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrBundle, hdr.Name, hdr.Size, e.f.Size)
		}
		dst := filepath.Join(stage, strings.NewReplacer("/", "_").Replace(strings.TrimPrefix(hdr.Name, bundleRoot)))
		if err := writeVerified(dst, io.LimitReader(tr, e.f.Size), e.f.SHA256); err != nil {
			if errors.Is(err, ErrCorrupt) {
				return Installed{}, fmt.Errorf("%w: %s: sha256 differs from the manifest (tampered or damaged)", ErrBundle, hdr.Name)
			}
			return Installed{}, fmt.Errorf("install models: %w", err)
		}
		// Models are not secret; the service user must read files root installed.
		if err := os.Chmod(dst, 0o644); err != nil {
			return Installed{}, fmt.Errorf("install models: %w", err)
		}
		staged[hdr.Name] = dst
	}
	if !sawManifest {
		return Installed{}, fmt.Errorf("%w: no %s (not a bwsagent model bundle)", ErrBundle, bundleManifest)
	}

	// Only complete packages are installed; the required kind must be there.
	var done Installed
	for _, p := range trusted.Packages {
		n := 0
		for _, f := range p.Files {
			if _, ok := staged[entryName(p, f.Path)]; ok {
				n++
			}
		}
		switch {
		case n == len(p.Files):
			done.Packages = append(done.Packages, p)
		case n > 0 || p.Kind == required:
			return Installed{}, fmt.Errorf("%w: %s has %d of its %d files", ErrBundle, p.Spec(), n, len(p.Files))
		}
	}
	for _, p := range done.Packages {
		for _, f := range p.Files {
			dst := c.Path(p, f.Path)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return Installed{}, fmt.Errorf("install models: %w", err)
			}
			if err := os.Rename(staged[entryName(p, f.Path)], dst); err != nil {
				return Installed{}, fmt.Errorf("install models: %w", err)
			}
		}
		if err := syncDir(filepath.Join(c.Dir, p.dirName())); err != nil {
			return Installed{}, err
		}
	}
	return done, nil
}

// checkBundleManifest reads the bundle's manifest and rejects one whose
// packages this binary does not pin (a bundle of another bwsagent version),
// naming them so the operator knows which bundle to get.
func checkBundleManifest(r io.Reader, size int64, trusted Manifest) error {
	if size > maxBundleMeta {
		return fmt.Errorf("%w: %s is %d bytes", ErrBundle, bundleManifest, size)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(r, size)).Decode(&m); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBundle, bundleManifest, err)
	}
	var foreign []string
	for _, p := range m.Packages {
		t, ok := trusted.Lookup(p.Name)
		if !ok || t.Version != p.Version {
			foreign = append(foreign, p.Spec())
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		var pinned []string
		for _, p := range trusted.Packages {
			pinned = append(pinned, p.Spec())
		}
		return fmt.Errorf("%w: it carries %s, this binary pins %s (make the bundle with the same bwsagent version)",
			ErrBundle, strings.Join(foreign, ", "), strings.Join(pinned, ", "))
	}
	return nil
}

// InstallFile installs the bundle at src (see Install).
func (c Cache) InstallFile(ctx context.Context, src string, trusted Manifest, required string) (Installed, error) {
	fh, err := os.Open(src)
	if err != nil {
		return Installed{}, fmt.Errorf("install models: %w", err)
	}
	defer fh.Close()
	return c.Install(ctx, fh, trusted, required)
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("install models: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("install models: sync %s: %w", dir, err)
	}
	return nil
}
