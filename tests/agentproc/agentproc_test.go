package agentproc

import (
	"os"
	"path/filepath"
	"testing"
)

// The raw-sample scan must find a sample stored raw or as base64, or the
// crash harness's "no sample on disk" proves nothing.
func TestContainsAnyFindsSamples(t *testing.T) {
	raw := make([]byte, 4096)
	for i := range raw {
		raw[i] = byte(i*7 + i/13)
	}
	u := "data:image/jpeg;base64,"
	dir := t.TempDir()
	if f, err := ContainsAny(dir, Needles(raw)); err != nil || f != "" {
		t.Fatalf("empty dir: %q, %v", f, err)
	}
	for name, body := range map[string][]byte{
		"raw.bin":  append([]byte("header"), raw...),
		"b64.json": []byte(`{"sample":"` + u + string(Needles(raw)[1]) + `"}`),
	} {
		sub := t.TempDir()
		if err := os.WriteFile(filepath.Join(sub, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
		if f, err := ContainsAny(sub, Needles(raw)); err != nil || filepath.Base(f) != name {
			t.Errorf("%s: found %q, %v", name, f, err)
		}
	}
}
