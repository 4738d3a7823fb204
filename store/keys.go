package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Key is a named secret key, such as the token-signing key. Of each name
// one key is current (Retired is zero); rotated-out keys stay, retired,
// until pruned, so tokens they signed keep validating.
type Key struct {
	ID      string // "kid": 16 hex digits
	Secret  []byte // 32 random bytes
	Created time.Time
	Retired time.Time // zero for the current key
}

// KeySet is the keys of one name.
type KeySet struct {
	Current  Key
	Previous []Key // retired keys, newest first
}

const (
	maxKeyNameLen = 32
	keySecretLen  = 32
	keyIDLen      = 8 // random bytes, hex in Key.ID
)

type keyRecord struct {
	ID      string    `json:"id"`
	Secret  []byte    `json:"secret"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired"`
}

func keyPath(name, id string) []byte { return []byte("keys/" + name + "/" + id) }

func decodeKey(b []byte) (Key, error) {
	var r keyRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Key{}, fmt.Errorf("key record: %w", ErrCorrupt)
	}
	if len(r.ID) != 2*keyIDLen || len(r.Secret) != keySecretLen {
		return Key{}, fmt.Errorf("key record: %w", ErrCorrupt)
	}
	if _, err := hex.DecodeString(r.ID); err != nil {
		return Key{}, fmt.Errorf("key record: %w", ErrCorrupt)
	}
	return Key(r), nil
}

func newKey(random io.Reader, now time.Time) (Key, error) {
	id := make([]byte, keyIDLen)
	secret := make([]byte, keySecretLen)
	if _, err := io.ReadFull(random, id); err != nil {
		return Key{}, fmt.Errorf("key id: %w", err)
	}
	if _, err := io.ReadFull(random, secret); err != nil {
		return Key{}, fmt.Errorf("key secret: %w", err)
	}
	return Key{ID: hex.EncodeToString(id), Secret: secret, Created: now.UTC()}, nil
}

// SigningKeys returns the keys of name, generating the first key on first
// use.
func (db *DB) SigningKeys(ctx context.Context, name string) (KeySet, error) {
	if err := checkID("key name", name, maxKeyNameLen); err != nil {
		return KeySet{}, fmt.Errorf("store: %w", err)
	}
	var ks KeySet
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		ks, err = db.readKeys(tx, name)
		return err
	})
	if err == nil || !isNotFound(err) {
		return ks, err
	}
	err = db.update(ctx, func(tx *bolt.Tx) error {
		var err error
		// Another caller may have generated it meanwhile.
		if ks, err = db.readKeys(tx, name); err == nil || !isNotFound(err) {
			return err
		}
		k, err := newKey(db.rand, db.now())
		if err != nil {
			return err
		}
		ks = KeySet{Current: k}
		return db.putKey(tx, name, k)
	})
	return ks, err
}

// RotateKey retires the current key of name and makes a new one current.
func (db *DB) RotateKey(ctx context.Context, name string) (Key, error) {
	if err := checkID("key name", name, maxKeyNameLen); err != nil {
		return Key{}, fmt.Errorf("store: %w", err)
	}
	var k Key
	err := db.update(ctx, func(tx *bolt.Tx) error {
		now := db.now().UTC()
		ks, err := db.readKeys(tx, name)
		switch {
		case err == nil:
			ks.Current.Retired = now
			if err := db.putKey(tx, name, ks.Current); err != nil {
				return err
			}
		case !isNotFound(err):
			return err
		}
		if k, err = newKey(db.rand, now); err != nil {
			return err
		}
		return db.putKey(tx, name, k)
	})
	return k, err
}

// PruneKeys deletes the keys of name retired before cutoff and returns how
// many. Call it with now - token lifetime - leeway.
func (db *DB) PruneKeys(ctx context.Context, name string, cutoff time.Time) (int, error) {
	var n int
	err := db.update(ctx, func(tx *bolt.Tx) error {
		ks, err := db.readKeys(tx, name)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketKeys).Bucket([]byte(name))
		for _, k := range ks.Previous {
			if k.Retired.Before(cutoff) {
				if err := b.Delete([]byte(k.ID)); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

func (db *DB) putKey(tx *bolt.Tx, name string, k Key) error {
	b, err := tx.Bucket(bucketKeys).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return err
	}
	v, err := json.Marshal(keyRecord(k))
	if err != nil {
		return err
	}
	rec, err := db.keys.Load().seal(db.rand, v, keyPath(name, k.ID))
	if err != nil {
		return fmt.Errorf("store: seal key: %w", err)
	}
	return b.Put([]byte(k.ID), rec)
}

// readKeys returns ErrNotFound when name has no current key.
func (db *DB) readKeys(tx *bolt.Tx, name string) (KeySet, error) {
	b := tx.Bucket(bucketKeys).Bucket([]byte(name))
	if b == nil {
		return KeySet{}, fmt.Errorf("store: keys %q: %w", name, ErrNotFound)
	}
	kr := db.keys.Load()
	var ks KeySet
	var found bool
	err := b.ForEach(func(id, rec []byte) error {
		v, err := kr.open(rec, keyPath(name, string(id)))
		if err != nil {
			return err
		}
		k, err := decodeKey(v)
		if err != nil {
			return err
		}
		if k.ID != string(id) {
			return fmt.Errorf("key %q under %q: %w", k.ID, id, ErrCorrupt)
		}
		if k.Retired.IsZero() {
			if found {
				return fmt.Errorf("two current keys: %w", ErrCorrupt)
			}
			ks.Current, found = k, true
		} else {
			ks.Previous = append(ks.Previous, k)
		}
		return nil
	})
	if err != nil {
		return KeySet{}, fmt.Errorf("store: keys %q: %w", name, err)
	}
	if !found {
		return KeySet{}, fmt.Errorf("store: keys %q: %w", name, ErrNotFound)
	}
	slices.SortFunc(ks.Previous, func(a, b Key) int { return b.Retired.Compare(a.Retired) })
	return ks, nil
}
