package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)

// clock is a fake clock; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// testOptions keeps argon2id cheap and skips fsync.
func testOptions(clk *clock) Options {
	return Options{
		Timeout:       200 * time.Millisecond,
		EncryptionKey: testKey(1),
		SecretHash:    HashParams{Time: 1, MemoryKiB: 64, Threads: 1},
		NoSync:        true,
		Now:           clk.Now,
	}
}

// openAt opens the store at path and, like bbolt's own test fixture, runs
// the consistency check (bbolt's tx.Check plus every record) when the test
// ends, unless the test closed the DB itself.
func openAt(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Check(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("consistency check: %v", err)
		}
		db.Close()
	})
	return db
}

// openTestDB opens a new store in a temp dir.
func openTestDB(t testing.TB) (*DB, *clock) {
	t.Helper()
	clk := &clock{t: t0}
	return openAt(t, filepath.Join(t.TempDir(), "agent.db"), testOptions(clk)), clk
}

func reopen(t testing.TB, db *DB, opts Options) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return openAt(t, db.Path(), opts)
}

func TestOpenNew(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	v, err := db.SchemaVersion(ctx)
	if err != nil || v != schemaVersion {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	fi, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", fi.Mode().Perm())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.Apps(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("use after Close: %v", err)
	}
}

func TestOpenLocked(t *testing.T) {
	db, clk := openTestDB(t)
	opts := testOptions(clk)
	opts.Timeout = 50 * time.Millisecond
	start := time.Now()
	_, err := Open(db.Path(), opts)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("locked Open took %v", d)
	}
}

func TestOpenOptions(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "agent.db")
	db := openAt(t, path, testOptions(clk))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Options)
		want error
	}{
		{"no key", func(o *Options) { o.EncryptionKey = nil }, ErrInvalid},
		{"short key", func(o *Options) { o.EncryptionKey = make([]byte, 16) }, ErrInvalid},
		{"short previous key", func(o *Options) { o.PreviousEncryptionKeys = [][]byte{{1}} }, ErrInvalid},
		{"wrong key", func(o *Options) { o.EncryptionKey = testKey(2) }, ErrWrongKey},
		{"hash too costly", func(o *Options) { o.SecretHash.MemoryKiB = 1 << 30 }, ErrInvalid},
		{"right key as previous", func(o *Options) {
			o.EncryptionKey, o.PreviousEncryptionKeys = testKey(2), [][]byte{testKey(1)}
		}, nil},
		{"same key twice", func(o *Options) { o.PreviousEncryptionKeys = [][]byte{testKey(1)} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(clk)
			tt.edit(&opts)
			db, err := Open(path, opts)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return
			}
			if !errors.Is(err, tt.want) {
				if err == nil {
					db.Close()
				}
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDefaultOptions(t *testing.T) {
	o := DefaultOptions()
	if o.Timeout <= 0 || o.MaxTemplatesPerClass != DefaultMaxTemplatesPerClass || o.FileMode != 0o600 ||
		o.Now == nil || o.Rand == nil || o.SecretHash.validate() != nil {
		t.Fatalf("DefaultOptions = %+v", o)
	}
	if o.EncryptionKey != nil {
		t.Fatal("DefaultOptions carries a key")
	}
}

// TestMigrateFromV1 builds a schema-1 file the way the released version
// wrote it and opens it with the current code.
func TestMigrateFromV1(t *testing.T) {
	clk := &clock{t: t0}
	opts := testOptions(clk)
	path := filepath.Join(t.TempDir(), "v1.db")
	hash := opts.SecretHash.withDefaults().dummy()

	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, 1); err != nil {
			return err
		}
		v1, _ := json.Marshal(appV1{ID: "kiosk", Name: "Kiosk", SecretHash: hash, Storage: "bws", Partition: 12,
			Created: t0.Format(time.RFC3339Nano)})
		return tx.Bucket(bucketApps).Put([]byte("kiosk"), v1)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.View(func(tx *bolt.Tx) error {
		if v, _ := readSchema(tx); v != 1 {
			t.Errorf("fixture schema %d", v)
		}
		if tx.Bucket(bucketTokens) != nil {
			t.Error("fixture has the v2 tokens bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db := openAt(t, path, opts)
	ctx := context.Background()
	if v, err := db.SchemaVersion(ctx); err != nil || v != schemaVersion {
		t.Fatalf("schema after migration %d, %v", v, err)
	}
	a, err := db.App(ctx, "kiosk")
	if err != nil {
		t.Fatal(err)
	}
	if a.Storage != "bws" || len(a.Partitions) != 1 || a.Partitions[0] != 12 || a.Name != "Kiosk" || !a.Created.Equal(t0) {
		t.Fatalf("migrated app %+v", a)
	}
	if _, err := db.UseTry(ctx, "0f8fad5b-d9cb-469f-a165-70867728950e", 3, t0.Add(time.Minute)); err != nil {
		t.Fatalf("tokens bucket after migration: %v", err)
	}
	// Opening again is a no-op.
	db = reopen(t, db, opts)
	if v, _ := db.SchemaVersion(ctx); v != schemaVersion {
		t.Fatalf("schema %d", v)
	}
}

func TestSchemaTooNew(t *testing.T) {
	db, clk := openTestDB(t)
	path := db.Path()
	db.Close()
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Update(func(tx *bolt.Tx) error { return writeSchema(tx, schemaVersion+1) }); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, err := Open(path, testOptions(clk)); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer file = %v", err)
	}
}

func TestContextCanceled(t *testing.T) {
	db, _ := openTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.AppendAudit(ctx, AuditEntry{Action: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendAudit with a canceled context = %v", err)
	}
	if _, err := db.Apps(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apps with a canceled context = %v", err)
	}
	got, err := db.Audit(context.Background(), 0, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("a canceled write was stored: %v, %v", got, err)
	}
}
