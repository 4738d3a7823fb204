package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileCreateAndLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "template.key")
	kf := KeyFile{Path: p}
	if _, err := kf.Load(false); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing file without create: %v", err)
	}
	k1, err := kf.Load(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1.Current) != KeySize || len(k1.Previous) != 0 {
		t.Fatalf("new key: %d bytes, %d previous", len(k1.Current), len(k1.Previous))
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := kf.Load(true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.Current, k2.Current) {
		t.Error("second load made a new key")
	}

	// Rotation state: two keys, current first.
	k3, _ := kf.NewKey()
	if err := kf.Write(Keys{Current: k3, Previous: [][]byte{k1.Current}}); err != nil {
		t.Fatal(err)
	}
	got, err := kf.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Current, k3) || len(got.Previous) != 1 || !bytes.Equal(got.Previous[0], k1.Current) {
		t.Errorf("after write: %x %x", got.Current, got.Previous)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten key file mode %v", fi.Mode().Perm())
	}
}

func TestKeyFileFormats(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, KeySize)
	tests := []struct {
		name, body, wantErr string
	}{
		{"hex", hex.EncodeToString(key) + "\n", ""},
		{"hex without newline, comment", "# key\n" + hex.EncodeToString(key), ""},
		{"base64 (systemd-creds style)", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n", ""},
		{"short", "abcd\n", "line 1"},
		{"empty", "\n", "no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(p, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			keys, err := KeyFile{Path: p}.Load(false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(keys.Current, key) {
				t.Errorf("key %x", keys.Current)
			}
		})
	}
}

func TestKeyFileRefusesOpenMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(p, []byte(strings.Repeat("ab", KeySize)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := KeyFile{Path: p}.Load(false)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("error %v should say to chmod", err)
	}
}
