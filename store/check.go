package store

import (
	"context"
	"fmt"

	"github.com/bwsagent/bwsagent/agent/bws"
	bolt "go.etcd.io/bbolt"
)

// checkRecords decodes every record of every bucket, opening sealed ones:
// after a crash this proves nothing is half-written (bbolt's own check
// covers the pages; this covers our encodings and the key).
func (db *DB) checkRecords(ctx context.Context, tx *bolt.Tx) error {
	if v, err := readSchema(tx); err != nil || v != schemaVersion {
		return fmt.Errorf("store: check: schema %d, %v", v, err)
	}
	rec := tx.Bucket(bucketMeta).Get(metaKeyCheck)
	if rec == nil {
		return fmt.Errorf("store: check: no key check record: %w", ErrCorrupt)
	}
	if _, err := db.keys.Load().open(rec, metaKeyCheck); err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	err := tx.Bucket(bucketApps).ForEach(func(k, v []byte) error {
		a, err := decodeApp(v)
		if err == nil && a.ID != string(k) {
			err = fmt.Errorf("app %q under %q: %w", a.ID, k, ErrCorrupt)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	keys := tx.Bucket(bucketKeys)
	err = keys.ForEachBucket(func(name []byte) error {
		_, err := db.readKeys(tx, string(name))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	err = db.walkClasses(ctx, tx, "", -1, func(c bws.BCID, b *bolt.Bucket) error {
		_, err := db.readClass(c, b)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	err = tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
		s, err := decodeTokenState(v)
		if err == nil && s.ID != string(k) {
			err = fmt.Errorf("token %q under %q: %w", s.ID, k, ErrCorrupt)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	err = tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
		_, err := decodeAudit(k, v)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	if err := db.checkOutbox(ctx, tx); err != nil {
		return fmt.Errorf("store: check: %w", err)
	}
	return nil
}
