package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/agent/token"
	"github.com/bwsagent/bwsagent/store"
)

// SigningKeyName is the store's name of the token-signing keys.
const SigningKeyName = "token-signing"

// auditApp is the "who" of administrative audit entries.
const auditApp = "admin"

// Hooks let a running agent keep its in-memory state in step with changes
// made through the socket. Zero hooks suit the CLI's direct mode.
type Hooks struct {
	// Status fills in what only a running agent knows (URL, PID, …).
	Status func(*Status)
	// DeleteClass deletes a class; the agent passes its API server's,
	// which also drops the class from the 1:N galleries. Nil:
	// store.DB.DeleteClass.
	DeleteClass func(ctx context.Context, c bws.BCID) error
	// SigningKeys is called with the keys after a rotation, so the token
	// manager signs with the new key at once.
	SigningKeys func(store.KeySet) error
	// OutboxChanged is called after jobs were requeued or dropped, so the
	// sync sender looks at the outbox at once; nil: sync off or no agent.
	OutboxChanged func()
}

// Local implements Service on an open store.
type Local struct {
	db      *store.DB
	keyFile config.KeyFile
	dataDir string
	hooks   Hooks
	ownDB   bool // Close closes db (the CLI's direct mode)

	mu   sync.Mutex // serializes key rotations and guards keys
	keys config.Keys
}

// NewLocal returns a Local on db, whose template keys are keys, read from
// keyFile (rotations rewrite it). The caller keeps ownership of db.
func NewLocal(db *store.DB, keyFile config.KeyFile, keys config.Keys, dataDir string, hooks Hooks) *Local {
	return &Local{db: db, keyFile: keyFile, keys: keys, dataDir: dataDir, hooks: hooks}
}

// Close closes the store if Local opened it (OpenLocal).
func (l *Local) Close() error {
	if l.ownDB {
		return l.db.Close()
	}
	return nil
}

func (l *Local) audit(ctx context.Context, action, bcid, detail string, err error) {
	e := store.AuditEntry{App: auditApp, Action: action, BCID: bcid, Detail: detail, Result: "success"}
	if err != nil {
		e.Result = "failure"
	}
	// The audit line is best effort: the change itself has happened (or
	// failed) already and its error is what the caller needs.
	_, _ = l.db.AppendAudit(context.WithoutCancel(ctx), e)
}

// Status implements Service.
func (l *Local) Status(ctx context.Context) (Status, error) {
	st := Status{DataDir: l.dataDir, Store: l.db.Path()}
	apps, err := l.db.Apps(ctx)
	if err != nil {
		return st, err
	}
	n, err := l.db.CountTemplates(ctx, "", -1)
	if err != nil {
		return st, err
	}
	st.Apps, st.Classes, st.Templates = len(apps), n.Classes, n.Templates
	if l.hooks.Status != nil {
		l.hooks.Status(&st)
	}
	return st, nil
}

// AddApp implements Service.
func (l *Local) AddApp(ctx context.Context, a NewApp) (App, string, error) {
	sa := store.App{ID: a.ID, Name: a.Name, Storage: a.Storage, Partitions: a.Partitions}
	if len(sa.Partitions) == 0 {
		return App{}, "", fmt.Errorf("app %q needs at least one partition: %w", a.ID, store.ErrInvalid)
	}
	secret, err := l.db.AddApp(ctx, sa)
	l.audit(ctx, "app.add", "", a.ID, err)
	if err != nil {
		return App{}, "", err
	}
	got, err := l.db.App(ctx, a.ID)
	if err != nil {
		return App{}, "", err
	}
	return appOf(got), secret, nil
}

func appOf(a store.App) App {
	return App{ID: a.ID, Name: a.Name, Storage: a.Storage, Partitions: a.Partitions, Created: a.Created}
}

// Apps implements Service.
func (l *Local) Apps(ctx context.Context) ([]App, error) {
	apps, err := l.db.Apps(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]App, 0, len(apps))
	for _, a := range apps {
		out = append(out, appOf(a))
	}
	return out, nil
}

// RemoveApp implements Service.
func (l *Local) RemoveApp(ctx context.Context, id string) error {
	err := l.db.DeleteApp(ctx, id)
	l.audit(ctx, "app.remove", "", id, err)
	return err
}

// RotateAppSecret implements Service.
func (l *Local) RotateAppSecret(ctx context.Context, id string) (string, error) {
	s, err := l.db.RotateAppSecret(ctx, id)
	l.audit(ctx, "app.rotate-secret", "", id, err)
	return s, err
}

// Classes implements Service.
func (l *Local) Classes(ctx context.Context, storage string, partition int) ([]Class, error) {
	out := []Class{}
	err := l.db.ForEachClass(ctx, storage, partition, func(ci store.ClassInfo) error {
		out = append(out, classOf(ci))
		return nil
	})
	return out, err
}

func classOf(ci store.ClassInfo) Class {
	return Class{BCID: ci.BCID.String(), Templates: ci.Templates, Stale: ci.Stale, Updated: ci.Updated}
}

// Class implements Service.
func (l *Local) Class(ctx context.Context, c bws.BCID) (ClassDetail, error) {
	if err := c.Validate(); err != nil {
		return ClassDetail{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	ts, err := l.db.Templates(ctx, c)
	if err != nil {
		return ClassDetail{}, err
	}
	d := ClassDetail{Class: Class{BCID: c.String(), Templates: len(ts)}, List: make([]TemplateInfo, 0, len(ts))}
	for _, t := range ts {
		if t.Stale {
			d.Stale++
		}
		if t.Created.After(d.Updated) {
			d.Updated = t.Created
		}
		d.List = append(d.List, TemplateInfo{
			ID: t.ID, Model: t.Model, ModelVersion: t.ModelVersion, Dim: len(t.Vector),
			Quality: t.Quality, Created: t.Created, Stale: t.Stale,
		})
	}
	return d, nil
}

// DeleteClass implements Service.
func (l *Local) DeleteClass(ctx context.Context, c bws.BCID) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	if l.hooks.DeleteClass != nil {
		// The agent's API server audits the deletion itself.
		return l.hooks.DeleteClass(ctx, c)
	}
	err := l.db.DeleteClass(ctx, c)
	l.audit(ctx, "deleteclass", c.String(), "", err)
	return err
}

// Backup implements Service.
func (l *Local) Backup(ctx context.Context, w io.Writer) (int64, error) {
	l.mu.Lock()
	key := l.keys.Current
	l.mu.Unlock()
	n, err := WriteBackup(ctx, w, l.db, key)
	l.audit(ctx, "backup", "", fmt.Sprintf("%d bytes", n), err)
	return n, err
}

// RotateSigningKey implements Service.
func (l *Local) RotateSigningKey(ctx context.Context) (KeyInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	info, err := l.rotateSigningKey(ctx)
	l.audit(ctx, "key.rotate-signing", "", info.ID, err)
	return info, err
}

func (l *Local) rotateSigningKey(ctx context.Context) (KeyInfo, error) {
	k, err := l.db.RotateKey(ctx, SigningKeyName)
	if err != nil {
		return KeyInfo{}, err
	}
	// Keys retired longer ago than a token lives verify nothing any more.
	cutoff := time.Now().Add(-token.DefaultLifetime - 2*token.DefaultLeeway)
	pruned, err := l.db.PruneKeys(ctx, SigningKeyName, cutoff)
	if err != nil {
		return KeyInfo{}, err
	}
	ks, err := l.db.SigningKeys(ctx, SigningKeyName)
	if err != nil {
		return KeyInfo{}, err
	}
	if l.hooks.SigningKeys != nil {
		if err := l.hooks.SigningKeys(ks); err != nil {
			return KeyInfo{}, fmt.Errorf("apply new signing key: %w", err)
		}
	}
	return KeyInfo{ID: k.ID, Created: k.Created, Previous: len(ks.Previous), Pruned: pruned}, nil
}

// RotateTemplateKey implements Service. The order makes a crash at any
// point recoverable: the key file first holds the new key as current and
// the old ones as previous (the store opens with either), then the store is
// resealed, then the old keys leave the file.
func (l *Local) RotateTemplateKey(ctx context.Context) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.rotateTemplateKey(ctx)
	l.audit(ctx, "key.rotate-template", "", fmt.Sprintf("%d records resealed", n), err)
	return n, err
}

func (l *Local) rotateTemplateKey(ctx context.Context) (int, error) {
	newKey, err := l.keyFile.NewKey()
	if err != nil {
		return 0, err
	}
	old := append([][]byte{l.keys.Current}, l.keys.Previous...)
	if err := l.keyFile.Write(config.Keys{Current: newKey, Previous: old}); err != nil {
		return 0, err
	}
	n, err := l.db.RotateEncryptionKey(ctx, newKey)
	if err != nil {
		// The file keeps both keys, so the store opens either way; the
		// next start finishes the rotation (OpenStore).
		l.keys = config.Keys{Current: newKey, Previous: old}
		return n, err
	}
	l.keys = config.Keys{Current: newKey}
	if err := l.keyFile.Write(l.keys); err != nil {
		return n, fmt.Errorf("resealed %d records, but dropping the old key from %s failed (harmless, retried on the next start): %w", n, l.keyFile.Path, err)
	}
	return n, nil
}

// OpenLocal opens the store of cfg (resolved) for the CLI's direct mode.
// With create a missing store (and template key) is created, as on the
// agent's first start; without, a missing store is ErrNoStore.
func OpenLocal(ctx context.Context, cfg config.Config, create bool) (*Local, error) {
	db, kf, keys, err := OpenStore(ctx, cfg, StoreOptions{Create: create, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	l := NewLocal(db, kf, keys, cfg.DataDir, Hooks{})
	l.ownDB = true
	return l, nil
}

// StoreOptions configures OpenStore.
type StoreOptions struct {
	// Create makes the data directory, the template key and the store when
	// they do not exist.
	Create bool
	// Timeout bounds the wait for the store's file lock; zero means
	// store.DefaultTimeout.
	Timeout time.Duration
	// NoSync is for tests only (see store.Options).
	NoSync bool
}

// OpenStore opens the store of cfg (resolved) with its template key, and
// finishes a template key rotation a crash interrupted. Its errors say
// what to do.
func OpenStore(ctx context.Context, cfg config.Config, opts StoreOptions) (*store.DB, config.KeyFile, config.Keys, error) {
	kf := config.KeyFile{Path: cfg.TemplateKeyFile}
	path := cfg.StorePath()
	_, statErr := os.Stat(path)
	exists := statErr == nil
	if !exists && !opts.Create {
		return nil, kf, config.Keys{}, fmt.Errorf("%w at %s: the agent creates it on first start; is --data-dir right?", ErrNoStore, path)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, kf, config.Keys{}, fmt.Errorf("data directory: %w", err)
	}
	// A new key only for a new store: a store without its key is
	// unreadable, and a fresh key would hide that.
	keys, err := kf.Load(!exists)
	if errors.Is(err, config.ErrNoKey) {
		return nil, kf, keys, fmt.Errorf("%w; the store %s was sealed with that key: restore the key file from your backup", err, path)
	}
	if err != nil {
		return nil, kf, keys, err
	}
	db, err := store.Open(path, store.Options{
		Timeout:                opts.Timeout,
		EncryptionKey:          keys.Current,
		PreviousEncryptionKeys: keys.Previous,
		MaxTemplatesPerClass:   cfg.API.MaxTemplatesPerClass,
		NoSync:                 opts.NoSync,
	})
	switch {
	case errors.Is(err, store.ErrLocked):
		return nil, kf, keys, fmt.Errorf("%w: another bwsagent uses %s (stop it, or use another --data-dir)", err, cfg.DataDir)
	case errors.Is(err, store.ErrWrongKey):
		return nil, kf, keys, fmt.Errorf("%w: the key in %s does not open %s; use the key file the store was made with ('templateKeyFile')", err, kf.Path, path)
	case err != nil:
		return nil, kf, keys, err
	}
	if len(keys.Previous) > 0 {
		// A rotation was interrupted: reseal with the current key, then
		// drop the old ones.
		if _, err := db.RotateEncryptionKey(ctx, keys.Current); err != nil {
			db.Close()
			return nil, kf, keys, fmt.Errorf("finish template key rotation: %w", err)
		}
		// Dropping the old keys from the file is tidying only: every
		// record is sealed with the current key now. A read-only file
		// (a systemd credential) keeps them.
		if err := kf.Write(config.Keys{Current: keys.Current}); err == nil {
			keys = config.Keys{Current: keys.Current}
		}
	}
	return db, kf, keys, nil
}
