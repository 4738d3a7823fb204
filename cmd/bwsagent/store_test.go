package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreCheck(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := run(t, "store", "check", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "first start") {
		t.Errorf("no store: %v", err)
	}
	if _, _, err := run(t, "apps", "add", "--data-dir", dir, "--id", "kiosk", "--storage", "bws", "--partition", "1"); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "store", "check", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "bwsagent.db: ok") {
		t.Errorf("healthy store: %q, %v", out, err)
	}
	// Another key cannot open the sealed records: the check says so.
	key := filepath.Join(dir, "template.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "store", "check", "--data-dir", dir); err == nil {
		t.Error("store check passed with the wrong template key")
	}
}
