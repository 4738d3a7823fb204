package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bwsagent/bwsagent/agent/bws"
	bolt "go.etcd.io/bbolt"
)

// App is a client application allowed to call the agent with Basic auth.
// It may only touch classes in its Storage and Partitions.
type App struct {
	ID         string
	Name       string // display name, the token's "clnt"
	SecretHash string // argon2id PHC string; never the secret itself
	Storage    string
	Partitions []int // sorted, no duplicates
	Created    time.Time
}

// Allows reports whether the app may touch class b.
func (a App) Allows(b bws.BCID) bool {
	return a.AllowsPartition(b.Storage, b.Partition)
}

// AllowsPartition reports whether the app may touch the partition.
func (a App) AllowsPartition(storage string, partition int) bool {
	if storage != a.Storage {
		return false
	}
	_, ok := slices.BinarySearch(a.Partitions, partition)
	return ok
}

const (
	maxAppIDLen   = 64
	maxAppNameLen = 128
	maxPartitions = 1024
)

// validate checks a and normalizes Partitions (sorted, unique).
func (a *App) validate() error {
	if err := checkID("app id", a.ID, maxAppIDLen); err != nil {
		return err
	}
	if len(a.Name) > maxAppNameLen || !utf8.ValidString(a.Name) {
		return fmt.Errorf("app name: %w", ErrInvalid)
	}
	for _, r := range a.Name {
		if unicode.IsControl(r) {
			return fmt.Errorf("app name has control characters: %w", ErrInvalid)
		}
	}
	if err := bws.ValidateStorage(a.Storage); err != nil {
		return fmt.Errorf("app storage: %w: %w", ErrInvalid, err)
	}
	if len(a.Partitions) > maxPartitions {
		return fmt.Errorf("app has more than %d partitions: %w", maxPartitions, ErrInvalid)
	}
	ps := slices.Clone(a.Partitions)
	slices.Sort(ps)
	a.Partitions = slices.Compact(ps)
	for _, p := range a.Partitions {
		if p < 0 || int64(p) > bws.MaxPartition {
			return fmt.Errorf("app partition %d: %w", p, ErrInvalid)
		}
	}
	if _, _, _, err := parseHash(a.SecretHash); err != nil {
		return fmt.Errorf("app secret hash: %w", ErrInvalid)
	}
	return nil
}

// checkID accepts 1..max of [A-Za-z0-9_.-]: ids appear in paths, logs and
// Basic auth, so nothing that needs escaping.
func checkID(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%s must be 1..%d characters: %w", what, max, ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%s %q: only letters, digits, '_', '.', '-': %w", what, s, ErrInvalid)
		}
	}
	return nil
}

// appRecord is the stored form (schema 2).
type appRecord struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	SecretHash string    `json:"secret_hash"`
	Storage    string    `json:"storage"`
	Partitions []int     `json:"partitions"`
	Created    time.Time `json:"created"`
}

func encodeApp(a App) ([]byte, error) {
	return json.Marshal(appRecord(a))
}

// decodeApp decodes and validates a stored app.
func decodeApp(b []byte) (App, error) {
	var r appRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return App{}, fmt.Errorf("app record: %w", ErrCorrupt)
	}
	a := App(r)
	if err := a.validate(); err != nil {
		return App{}, fmt.Errorf("app record: %w: %w", ErrCorrupt, err)
	}
	return a, nil
}

// HashSecret hashes an app secret with the store's argon2id cost, for
// callers that build an App for PutApp.
func (db *DB) HashSecret(secret string) (string, error) {
	if secret == "" || len(secret) > maxSecretLen {
		return "", fmt.Errorf("store: secret must be 1..%d bytes: %w", maxSecretLen, ErrInvalid)
	}
	h, err := db.hash.hashSecret(db.rand, secret)
	if err != nil {
		return "", fmt.Errorf("store: hash secret: %w", err)
	}
	return h, nil
}

// AddApp creates app with a new random secret and returns the secret, which
// is not stored and cannot be shown again. app.SecretHash is ignored;
// Created defaults to now. An existing id is ErrExists.
func (db *DB) AddApp(ctx context.Context, app App) (secret string, err error) {
	if secret, err = newSecret(db.rand); err != nil {
		return "", fmt.Errorf("store: add app: %w", err)
	}
	// Hash outside the transaction: it takes tens of milliseconds and the
	// writer lock is shared by every write.
	if app.SecretHash, err = db.HashSecret(secret); err != nil {
		return "", err
	}
	if app.Created.IsZero() {
		app.Created = db.now().UTC()
	}
	if err := app.validate(); err != nil {
		return "", fmt.Errorf("store: add app: %w", err)
	}
	err = db.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketApps)
		if b.Get([]byte(app.ID)) != nil {
			return fmt.Errorf("store: add app %q: %w", app.ID, ErrExists)
		}
		return putApp(b, app)
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// PutApp creates or replaces app as given (SecretHash must be a hash from
// HashSecret). Restores and imports use it.
func (db *DB) PutApp(ctx context.Context, app App) error {
	if app.Created.IsZero() {
		app.Created = db.now().UTC()
	}
	if err := app.validate(); err != nil {
		return fmt.Errorf("store: put app: %w", err)
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		return putApp(tx.Bucket(bucketApps), app)
	})
}

func putApp(b *bolt.Bucket, app App) error {
	v, err := encodeApp(app)
	if err != nil {
		return fmt.Errorf("store: encode app: %w", err)
	}
	return b.Put([]byte(app.ID), v)
}

// App returns the app with id, or ErrNotFound.
func (db *DB) App(ctx context.Context, id string) (App, error) {
	var a App
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		a, err = getApp(tx, id)
		return err
	})
	return a, err
}

func getApp(tx *bolt.Tx, id string) (App, error) {
	v := tx.Bucket(bucketApps).Get([]byte(id))
	if v == nil {
		return App{}, fmt.Errorf("store: app %q: %w", id, ErrNotFound)
	}
	a, err := decodeApp(v)
	if err != nil {
		return App{}, fmt.Errorf("store: app %q: %w", id, err)
	}
	return a, nil
}

// Apps returns all apps ordered by id.
func (db *DB) Apps(ctx context.Context) ([]App, error) {
	var apps []App
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketApps).ForEach(func(k, v []byte) error {
			a, err := decodeApp(v)
			if err != nil {
				return fmt.Errorf("store: app %q: %w", k, err)
			}
			apps = append(apps, a)
			return nil
		})
	})
	return apps, err
}

// DeleteApp removes the app, or returns ErrNotFound. Its classes stay:
// they belong to the storage, which other apps may share.
func (db *DB) DeleteApp(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketApps)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("store: delete app %q: %w", id, ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

// RotateAppSecret gives the app a new random secret and returns it; the old
// secret stops working at once.
func (db *DB) RotateAppSecret(ctx context.Context, id string) (string, error) {
	secret, err := newSecret(db.rand)
	if err != nil {
		return "", fmt.Errorf("store: rotate secret: %w", err)
	}
	hash, err := db.HashSecret(secret)
	if err != nil {
		return "", err
	}
	err = db.update(ctx, func(tx *bolt.Tx) error {
		a, err := getApp(tx, id)
		if err != nil {
			return err
		}
		a.SecretHash = hash
		return putApp(tx.Bucket(bucketApps), a)
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// Authenticate checks an app's Basic-auth credentials and returns the app.
// An unknown id and a wrong secret are both ErrBadCredentials and take the
// same time.
func (db *DB) Authenticate(ctx context.Context, id, secret string) (App, error) {
	a, err := db.App(ctx, id)
	hash := a.SecretHash
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		hash = db.dummyHash
	default:
		return App{}, err
	}
	// The hash runs outside the transaction (it is slow by design).
	if !verifySecret(hash, secret) || err != nil {
		return App{}, fmt.Errorf("store: app %q: %w", id, ErrBadCredentials)
	}
	return a, nil
}
