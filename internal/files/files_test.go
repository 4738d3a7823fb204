package files

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadLimited(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		size    int   // bytes written; -1: no file
		limit   int64 // bytes allowed
		wantErr string
	}{
		{"empty", 0, 4, ""},
		{"under the limit", 3, 4, ""},
		{"at the limit", 4, 4, ""},
		{"one byte over", 5, 4, "larger than 4 bytes"},
		{"missing", -1, 4, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			want := []byte(strings.Repeat("x", max(c.size, 0)))
			if c.size >= 0 {
				if err := os.WriteFile(p, want, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadLimited(p, c.limit)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				if c.size < 0 && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("err = %v, want os.ErrNotExist", err)
				}
				return
			}
			if err != nil || string(got) != string(want) {
				t.Fatalf("ReadLimited = %q, %v; want %q", got, err, want)
			}
		})
	}
}
