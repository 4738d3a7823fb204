package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bwsagent/bwsagent/agent/bws"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Backup writes a consistent snapshot of the whole file to w (a read
// transaction: writers carry on meanwhile) and returns its size. Templates
// and keys in it stay sealed; restoring needs the same EncryptionKey.
func (db *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", err)
	}
	return n, nil
}

// Restore replaces the store file at path with the snapshot read from r.
// The store must not be open anywhere (ErrLocked otherwise). The snapshot
// is written beside path, checked (bbolt consistency, schema, that opts'
// EncryptionKey opens it, every record decodes), migrated, and only then
// renamed over path, so a failed restore leaves the old file untouched.
func Restore(ctx context.Context, path string, r io.Reader, opts Options) error {
	opts = opts.withDefaults()
	// Hold the current file's lock for the duration: a running agent would
	// otherwise keep using the replaced file.
	if _, err := os.Stat(path); err == nil {
		cur, err := bolt.Open(path, opts.FileMode, &bolt.Options{Timeout: opts.Timeout})
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				return fmt.Errorf("store: restore %s: %w", path, ErrLocked)
			}
			return fmt.Errorf("store: restore %s: %w", path, err)
		}
		defer cur.Close()
	}

	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".restore-*")
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this is a no-op
	if err := f.Chmod(opts.FileMode); err != nil {
		f.Close()
		return fmt.Errorf("store: restore: %w", err)
	}
	if _, err := io.Copy(f, &ctxReader{ctx: ctx, r: r}); err != nil {
		f.Close()
		return fmt.Errorf("store: restore: write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}

	db, err := Open(tmp, opts)
	if err != nil {
		return fmt.Errorf("store: restore: snapshot: %w", err)
	}
	if err := db.Check(ctx); err != nil {
		db.Close()
		return fmt.Errorf("store: restore: snapshot: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}

	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename itself durable.
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("store: restore: sync %s: %w", dir, err)
		}
	}
	return nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// RotateEncryptionKey makes newKey the current encryption key, reseals
// every template and signing key with it in one transaction, and returns
// how many records it resealed. The old key stays usable for reading until
// the next Open.
//
// Crash safety depends on the order: first store newKey where Open finds it
// as EncryptionKey, keeping the old key in PreviousEncryptionKeys; then call
// this; only after it returns drop the old key. A crash in between leaves a
// file that opens with both keys configured.
func (db *DB) RotateEncryptionKey(ctx context.Context, newKey []byte) (int, error) {
	kr, err := db.keys.Load().withCurrent(newKey)
	if err != nil {
		return 0, fmt.Errorf("store: rotate key: %w", err)
	}
	// Readers may see records sealed with either key from here on, and the
	// new ring opens both.
	db.keys.Store(kr)
	n, err := db.reseal(ctx)
	if err != nil {
		return n, fmt.Errorf("store: rotate key: %w", err)
	}
	return n, nil
}

// reseal rewrites every sealed record not sealed with the current key.
func (db *DB) reseal(ctx context.Context) (int, error) {
	kr := db.keys.Load()
	var n int
	err := db.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		type rec struct {
			b    *bolt.Bucket
			k    []byte
			pt   []byte
			path []byte
		}
		var todo []rec
		collect := func(b *bolt.Bucket, path func(k []byte) []byte) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil || kr.sealedWithCurrent(v) {
					return nil
				}
				p := path(k)
				pt, err := kr.open(v, p)
				if err != nil {
					return err
				}
				todo = append(todo, rec{b, append([]byte(nil), k...), pt, p})
				return nil
			})
		}
		// Templates.
		err := db.walkClasses(ctx, tx, "", -1, func(c bws.BCID, b *bolt.Bucket) error {
			return collect(b, func(k []byte) []byte { return templatePath(c, string(k)) })
		})
		if err != nil {
			return err
		}
		// Signing keys.
		keys := tx.Bucket(bucketKeys)
		err = keys.ForEachBucket(func(name []byte) error {
			return collect(keys.Bucket(name), func(k []byte) []byte { return keyPath(string(name), string(k)) })
		})
		if err != nil {
			return err
		}
		// Outbox samples (store_outbox.go).
		if err := collect(tx.Bucket(bucketOutboxSamples), outboxSamplePathOfKey); err != nil {
			return err
		}
		// The key check.
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaKeyCheck); v != nil && !kr.sealedWithCurrent(v) {
			todo = append(todo, rec{meta, metaKeyCheck, nil, metaKeyCheck})
		}
		for _, r := range todo {
			v, err := kr.seal(db.rand, r.pt, r.path)
			if err != nil {
				return err
			}
			if err := r.b.Put(r.k, v); err != nil {
				return err
			}
		}
		n = len(todo)
		return nil
	})
	return n, err
}
