package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// KeySize is the template key's size (AES-256).
const KeySize = 32

// ErrNoKey: the key file does not exist (and was not to be created).
var ErrNoKey = errors.New("template key file does not exist")

// KeyFile is the template key file: one key per line, 64 hex digits (or
// 44 base64 characters); the first line is the current key, the next lines
// keys still accepted for reading. Several lines exist only during a key
// rotation, so that a crash halfway leaves a store that opens. '#' starts
// a comment line.
type KeyFile struct {
	Path string
	// Rand is the randomness for new keys; nil means crypto/rand.
	Rand io.Reader
}

// Keys are the contents of a key file.
type Keys struct {
	Current  []byte
	Previous [][]byte
}

// Load reads the keys. With create, a missing file is created with a new
// random key (mode 0600, its directory 0700) — the first start.
func (f KeyFile) Load(create bool) (Keys, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return Keys{}, fmt.Errorf("template key %s: %w", f.Path, ErrNoKey)
		}
		k, err := f.newKey()
		if err != nil {
			return Keys{}, err
		}
		keys := Keys{Current: k}
		if err := f.write(keys, true); err != nil {
			return Keys{}, err
		}
		return keys, nil
	}
	if err != nil {
		return Keys{}, fmt.Errorf("template key: %w", err)
	}
	if fi, err := os.Stat(f.Path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return Keys{}, fmt.Errorf("template key %s has mode %v: others can read it; run 'chmod 600 %s'", f.Path, fi.Mode().Perm(), f.Path)
	}
	keys, err := parseKeys(b)
	if err != nil {
		return Keys{}, fmt.Errorf("template key %s: %w", f.Path, err)
	}
	return keys, nil
}

func parseKeys(b []byte) (Keys, error) {
	var keys Keys
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := decodeKey(line)
		if err != nil {
			return Keys{}, fmt.Errorf("line %d: %w", i+1, err)
		}
		if keys.Current == nil {
			keys.Current = k
		} else {
			keys.Previous = append(keys.Previous, k)
		}
	}
	if keys.Current == nil {
		return Keys{}, fmt.Errorf("no key in the file (want %d bytes as 64 hex digits)", KeySize)
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	if k, err := hex.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	return nil, fmt.Errorf("not a %d-byte key as 64 hex digits or base64 (generate one with 'openssl rand -hex 32')", KeySize)
}

func (f KeyFile) newKey() ([]byte, error) {
	r := f.Rand
	if r == nil {
		r = rand.Reader
	}
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, fmt.Errorf("template key: %w", err)
	}
	return k, nil
}

// NewKey returns a new random key for a rotation.
func (f KeyFile) NewKey() ([]byte, error) { return f.newKey() }

// Write replaces the file atomically (a temporary file renamed over it,
// fsynced) with keys, mode 0600.
func (f KeyFile) Write(keys Keys) error {
	err := f.write(keys, false)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
		// Typically a systemd credential (/run/credentials/…), read-only.
		return fmt.Errorf("%w (a systemd credential cannot be rewritten: set 'templateKeyFile' to a writable file, "+
			"or stop the agent and rotate against a writable copy of the key)", err)
	}
	return err
}

func (f KeyFile) write(keys Keys, exclusive bool) error {
	var b strings.Builder
	b.WriteString("# bwsagent template key (AES-256). Keep it secret and back it up apart from the store:\n")
	b.WriteString("# without it, templates and signing keys cannot be read. The first key is current.\n")
	for _, k := range append([][]byte{keys.Current}, keys.Previous...) {
		b.WriteString(hex.EncodeToString(k))
		b.WriteByte('\n')
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("template key: %w", err)
	}
	if exclusive {
		// First start: never overwrite a key another process just made.
		fd, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("template key: %w", err)
		}
		_, err = fd.WriteString(b.String())
		if err == nil {
			err = fd.Sync()
		}
		if cerr := fd.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Path)
			return fmt.Errorf("template key: %w", err)
		}
		return syncDir(dir)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("template key: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.WriteString(b.String())
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path)
	}
	if err != nil {
		return fmt.Errorf("template key: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
