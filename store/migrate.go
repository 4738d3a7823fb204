package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the version Open migrates every file to.
const schemaVersion = 3

// migration moves a file from version-1 to version. Each runs in the same
// transaction as the version bump, so a crash leaves the old or the new
// version, never half of one.
type migration struct {
	version int
	name    string
	apply   func(tx *bolt.Tx) error
}

// migrations lists every schema change in order. Append only; never edit a
// released step.
func migrations() []migration {
	return []migration{
		{1, "initial buckets", migrateV1},
		{2, "token state; apps with several partitions", migrateV2},
		{3, "sync outbox and dead letters", migrateV3}, // store_outbox.go
	}
}

func migrateV1(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketApps, bucketKeys, bucketTemplates, bucketAudit} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// appV1 is the app record of schema 1: one partition per app.
type appV1 struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	SecretHash string `json:"secret_hash"`
	Storage    string `json:"storage"`
	Partition  int    `json:"partition"`
	Created    string `json:"created"`
}

func migrateV2(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketTokens); err != nil {
		return err
	}
	apps := tx.Bucket(bucketApps)
	type kv struct{ k, v []byte }
	var rewrites []kv // a bucket must not change under its cursor
	err := apps.ForEach(func(k, v []byte) error {
		var old appV1
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("app %q: %w", k, ErrCorrupt)
		}
		rec := map[string]any{
			"id":          old.ID,
			"name":        old.Name,
			"secret_hash": old.SecretHash,
			"storage":     old.Storage,
			"partitions":  []int{old.Partition},
			"created":     old.Created,
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		rewrites = append(rewrites, kv{append([]byte(nil), k...), b})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range rewrites {
		if err := apps.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

// migrate brings tx's file to version target (used by tests to build old
// files, with target < schemaVersion).
func migrate(tx *bolt.Tx, target int) error {
	cur, err := readSchema(tx)
	if err != nil {
		return err
	}
	if cur > schemaVersion {
		return fmt.Errorf("schema %d, this program knows %d: %w", cur, schemaVersion, ErrSchemaTooNew)
	}
	for _, m := range migrations() {
		if m.version <= cur || m.version > target {
			continue
		}
		if err := m.apply(tx); err != nil {
			return fmt.Errorf("migrate to schema %d (%s): %w", m.version, m.name, err)
		}
		if err := writeSchema(tx, m.version); err != nil {
			return err
		}
	}
	return nil
}

// readSchema returns 0 for a new, empty file.
func readSchema(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(metaSchema)
	if v == nil {
		return 0, nil
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("schema version: %w", ErrCorrupt)
	}
	return int(binary.BigEndian.Uint32(v)), nil
}

func writeSchema(tx *bolt.Tx, v int) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return meta.Put(metaSchema, u32(uint32(v)))
}
