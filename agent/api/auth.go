package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bwsagent/bwsagent/store"
)

// Basic authentication costs an argon2id hash (tens of milliseconds, by
// design). authenticator bounds how many run at once, remembers verified
// credentials briefly so a busy app does not pay the hash on every call,
// and locks an app id out after repeated wrong secrets.
type authenticator struct {
	db    *store.DB
	now   func() time.Time
	lock  *limiter
	slots chan struct{} // concurrent argon2id checks

	mu    sync.Mutex
	key   []byte // HMAC key: the cache never holds a secret itself
	cache map[string]credEntry
}

type credEntry struct {
	digest     [sha256.Size]byte
	secretHash string // the app's hash when verified; a rotation changes it
	expires    time.Time
}

const (
	credTTL      = 5 * time.Minute
	maxCredCache = 1024
	maxSecretLen = 256
	maxAppIDLen  = 64
)

func newAuthenticator(db *store.DB, now func() time.Time, cfg Config, slots int) (*authenticator, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &authenticator{
		db:    db,
		now:   now,
		lock:  newLimiter(cfg.AuthFailures, cfg.AuthWindow, true, cfg.MaxAuthLockout),
		slots: make(chan struct{}, max(1, slots)),
		key:   key,
		cache: map[string]credEntry{},
	}, nil
}

// basic authenticates the request's Basic credentials: 401 without them,
// 403 when wrong, 429 while the app id is locked out.
func (a *authenticator) basic(ctx context.Context, r *http.Request) (store.App, error) {
	id, secret, ok := r.BasicAuth()
	if !ok || id == "" || secret == "" || len(id) > maxAppIDLen || len(secret) > maxSecretLen {
		return store.App{}, newError(ErrUnauthorized, msgNoBasic, nil)
	}
	return a.check(ctx, id, secret)
}

func (a *authenticator) check(ctx context.Context, id, secret string) (store.App, error) {
	now := a.now()
	if d, locked := a.lock.locked(id, now); locked {
		return store.App{}, &Error{Kind: ErrLockedOut, Message: msgAuthLocked, RetryAfter: d}
	}
	digest := a.digest(id, secret)
	if app, ok := a.cached(ctx, id, digest, now); ok {
		return app, nil
	}
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		return store.App{}, ctx.Err()
	}
	app, err := a.db.Authenticate(ctx, id, secret)
	<-a.slots
	switch {
	case errors.Is(err, store.ErrBadCredentials):
		if d, locked := a.lock.fail(id, a.now()); locked {
			return store.App{}, &Error{Kind: ErrLockedOut, Message: msgAuthLocked, RetryAfter: d, Err: err}
		}
		return store.App{}, newError(ErrBadCredentials, msgBadCredentials, err)
	case err != nil:
		return store.App{}, err
	}
	a.lock.reset(id)
	a.remember(id, digest, app.SecretHash, now)
	return app, nil
}

func (a *authenticator) digest(id, secret string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var d [sha256.Size]byte
	copy(d[:], m.Sum(nil))
	return d
}

// cached returns the app if these credentials were verified recently and
// the app's secret has not changed since (a cheap store read).
func (a *authenticator) cached(ctx context.Context, id string, digest [sha256.Size]byte, now time.Time) (store.App, bool) {
	a.mu.Lock()
	e, ok := a.cache[id]
	a.mu.Unlock()
	if !ok || !now.Before(e.expires) || !hmac.Equal(e.digest[:], digest[:]) {
		return store.App{}, false
	}
	app, err := a.db.App(ctx, id)
	if err != nil || app.SecretHash != e.secretHash {
		a.forget(id)
		return store.App{}, false
	}
	return app, true
}

func (a *authenticator) remember(id string, digest [sha256.Size]byte, secretHash string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCredCache {
		for k, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxCredCache {
			clear(a.cache)
		}
	}
	a.cache[id] = credEntry{digest: digest, secretHash: secretHash, expires: now.Add(credTTL)}
}

func (a *authenticator) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.cache, id)
}

// bearer returns the BWS token of the request: "Bearer <jwt>" or, as BWS
// also accepts, "JWT <jwt>".
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "JWT")) {
		return "", newError(ErrUnauthorized, msgBadToken, errors.New("no Bearer or JWT authorization"))
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", newError(ErrUnauthorized, msgBadToken, errors.New("empty token"))
	}
	return raw, nil
}
