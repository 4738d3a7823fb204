// Package store is bwsagent's persistent state in one BoltDB file: apps and
// their hashed secrets, token-signing keys, face templates, the state of
// issued tokens, and an append-only audit log.
//
// Secrets at rest are sealed with AES-256-GCM under Options.EncryptionKey:
// templates and signing keys. Each sealed record names the key that sealed it
// and is bound (associated data) to its place in the file, so records cannot
// be swapped between classes. App secrets are stored as argon2id hashes.
//
// Every method runs in one bbolt transaction. Methods take a context, checked
// before the transaction starts and between items of long iterations; a
// write waits for bbolt's single writer without it.
//
// bbolt locks the file: a second process opening it fails after
// Options.Timeout with ErrLocked instead of hanging.
//
// File layout (schema 2):
//
//	meta       schema (uint32 BE), keycheck (sealed empty record)
//	apps       app id → JSON, secret as argon2id PHC string
//	keys       name → kid → sealed JSON {id, secret, created, retired}
//	templates  storage → partition (uint32 BE) → class (uint64 BE) → template id → sealed binary record
//	tokens     token id → JSON {tries, result, exp}
//	audit      sequence (uint64 BE) → JSON entry
//
// Keys of buckets (storage names, app ids, BCID numbers) are not secret and
// are stored in the clear; so are audit entries, which never hold images or
// templates.
package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors, one per condition. Methods wrap them with context; test with
// errors.Is.
var (
	// ErrLocked: another process (usually the running agent) holds the file.
	ErrLocked = errors.New("database is locked by another process")
	// ErrClosed: the DB was used after Close.
	ErrClosed = errors.New("database is closed")
	// ErrNotFound: no such app, class, key or token state.
	ErrNotFound = errors.New("not found")
	// ErrExists: an app with this id exists already.
	ErrExists = errors.New("already exists")
	// ErrInvalid: an argument failed validation (bad id, empty vector, …).
	ErrInvalid = errors.New("invalid argument")
	// ErrBadCredentials: unknown app id or wrong secret (not told apart, so
	// app ids cannot be probed).
	ErrBadCredentials = errors.New("bad credentials")
	// ErrTriesExhausted: the token has used all its tries.
	ErrTriesExhausted = errors.New("tries exhausted")
	// ErrCorrupt: a record failed to decode or to authenticate.
	ErrCorrupt = errors.New("corrupt record")
	// ErrWrongKey: the file was sealed with a key that is not configured.
	ErrWrongKey = errors.New("wrong encryption key")
	// ErrSchemaTooNew: the file was written by a newer bwsagent.
	ErrSchemaTooNew = errors.New("database schema is newer than this program")
)

// Defaults.
const (
	// DefaultTimeout is how long Open waits for the file lock.
	DefaultTimeout = 2 * time.Second
	// DefaultMaxTemplatesPerClass is the template cap of a class: enrolling
	// more keeps the best-quality ones. Ten covers several enrolments under
	// different light without slowing 1:N search much.
	DefaultMaxTemplatesPerClass = 10
	// KeySize is the size of Options.EncryptionKey (AES-256).
	KeySize = 32
)

// Options configures Open. Zero fields take the DefaultOptions values.
type Options struct {
	// Timeout bounds the wait for the file lock. bbolt would wait forever
	// at zero; here zero means DefaultTimeout.
	Timeout time.Duration

	// EncryptionKey (KeySize bytes, required) seals templates and signing
	// keys. Keep it outside the data file: a key file or a systemd
	// credential.
	EncryptionKey []byte
	// PreviousEncryptionKeys still open records sealed before a rotation
	// (see RotateEncryptionKey). New records are always sealed with
	// EncryptionKey.
	PreviousEncryptionKeys [][]byte

	// MaxTemplatesPerClass caps the templates of one class; zero means
	// DefaultMaxTemplatesPerClass.
	MaxTemplatesPerClass int

	// SecretHash is the argon2id cost of app secrets; zero fields take
	// DefaultHashParams values. Existing hashes keep the cost they were made
	// with.
	SecretHash HashParams

	// FileMode is the mode of a new database file; zero means 0600.
	FileMode os.FileMode

	// NoSync skips fsync on commit. Only for tests: a crash loses commits.
	NoSync bool

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for secrets, salts, nonces and ids; nil means
	// crypto/rand. It must be safe for concurrent use.
	Rand io.Reader
}

// DefaultOptions returns the defaults. EncryptionKey must still be set.
func DefaultOptions() Options {
	return Options{
		Timeout:              DefaultTimeout,
		MaxTemplatesPerClass: DefaultMaxTemplatesPerClass,
		SecretHash:           DefaultHashParams(),
		FileMode:             0o600,
		Now:                  time.Now,
		Rand:                 rand.Reader,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.MaxTemplatesPerClass <= 0 {
		o.MaxTemplatesPerClass = d.MaxTemplatesPerClass
	}
	o.SecretHash = o.SecretHash.withDefaults()
	if o.FileMode == 0 {
		o.FileMode = d.FileMode
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Rand == nil {
		o.Rand = d.Rand
	}
	return o
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	bolt        *bolt.DB
	path        string
	now         func() time.Time
	rand        io.Reader
	maxPerClass int
	hash        HashParams
	keys        atomic.Pointer[keyring]
	dummyHash   string // verified against for unknown apps, to equalize timing
}

// Bucket names at the top level.
var (
	bucketMeta      = []byte("meta")
	bucketApps      = []byte("apps")
	bucketKeys      = []byte("keys")
	bucketTemplates = []byte("templates")
	bucketTokens    = []byte("tokens")
	bucketAudit     = []byte("audit")

	metaSchema   = []byte("schema")
	metaKeyCheck = []byte("keycheck")
)

// Open opens or creates the store at path, migrates its schema to the
// current version and checks that the encryption key matches the file.
func Open(path string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	if err := opts.SecretHash.validate(); err != nil {
		return nil, fmt.Errorf("store: 'SecretHash': %w", err)
	}
	kr, err := newKeyring(opts.EncryptionKey, opts.PreviousEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	bdb, err := bolt.Open(path, opts.FileMode, &bolt.Options{
		Timeout:      opts.Timeout,
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{
		bolt:        bdb,
		path:        path,
		now:         opts.Now,
		rand:        opts.Rand,
		maxPerClass: opts.MaxTemplatesPerClass,
		hash:        opts.SecretHash,
	}
	db.keys.Store(kr)
	db.dummyHash = opts.SecretHash.dummy()
	err = bdb.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, schemaVersion); err != nil {
			return err
		}
		return db.checkKey(tx)
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the file and releases its lock. Closing twice is harmless.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Path returns the file's path.
func (db *DB) Path() string { return db.path }

// SchemaVersion returns the schema version of the file.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		v, err = readSchema(tx)
		return err
	})
	return v, err
}

// Check runs bbolt's consistency check over the whole file (pages, free
// list, key order) and then opens every sealed record. It reads the whole
// file: use it after a crash or in tests, not per request.
func (db *DB) Check(ctx context.Context) error {
	return db.view(ctx, func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("store: check: %w", errors.Join(errs...))
		}
		return db.checkRecords(ctx, tx)
	})
}

// checkKey verifies the encryption key against the file's key check
// record, writing one for a new file.
func (db *DB) checkKey(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	kr := db.keys.Load()
	if rec := meta.Get(metaKeyCheck); rec != nil {
		if _, err := kr.open(rec, metaKeyCheck); err != nil {
			return err
		}
		return nil
	}
	rec, err := kr.seal(db.rand, nil, metaKeyCheck)
	if err != nil {
		return err
	}
	return meta.Put(metaKeyCheck, rec)
}

// view runs fn in a read transaction after checking ctx.
func (db *DB) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return boltErr(db.bolt.View(fn))
}

// update runs fn in a write transaction. ctx is checked again once the
// writer lock is held, so a caller that gave up does not write.
func (db *DB) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return boltErr(db.bolt.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(tx)
	}))
}

func boltErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("store: %w", ErrClosed)
	}
	return err
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
