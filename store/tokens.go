package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	bolt "go.etcd.io/bbolt"
)

// TokenState is what the agent remembers about an issued token: it lives in
// the store so that a restart neither resets tries nor loses /result.
type TokenState struct {
	ID        string
	TriesUsed int
	// Result is the JSON answer of the last biometric call, for /result;
	// nil before any call.
	Result  json.RawMessage
	Expires time.Time // the token's exp; SweepTokens removes it after
	Updated time.Time
}

const (
	maxTokenIDLen  = 64
	maxResultBytes = 64 << 10
)

type tokenRecord struct {
	ID        string          `json:"id"`
	TriesUsed int             `json:"tries"`
	Result    json.RawMessage `json:"result,omitempty"`
	Expires   time.Time       `json:"exp"`
	Updated   time.Time       `json:"updated"`
}

func decodeTokenState(b []byte) (TokenState, error) {
	var r tokenRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return TokenState{}, fmt.Errorf("token record: %w", ErrCorrupt)
	}
	if checkID("token id", r.ID, maxTokenIDLen) != nil || r.TriesUsed < 0 || r.TriesUsed > bws.MaxTries ||
		len(r.Result) > maxResultBytes || (r.Result != nil && !json.Valid(r.Result)) {
		return TokenState{}, fmt.Errorf("token record: %w", ErrCorrupt)
	}
	return TokenState(r), nil
}

func encodeTokenState(s TokenState) ([]byte, error) { return json.Marshal(tokenRecord(s)) }

// Token returns the state of a token, or ErrNotFound before its first use.
func (db *DB) Token(ctx context.Context, id string) (TokenState, error) {
	var s TokenState
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		s, err = getToken(tx, id)
		return err
	})
	return s, err
}

func getToken(tx *bolt.Tx, id string) (TokenState, error) {
	v := tx.Bucket(bucketTokens).Get([]byte(id))
	if v == nil {
		return TokenState{}, fmt.Errorf("store: token %q: %w", id, ErrNotFound)
	}
	s, err := decodeTokenState(v)
	if err != nil {
		return TokenState{}, fmt.Errorf("store: token %q: %w", id, err)
	}
	return s, nil
}

func putToken(tx *bolt.Tx, s TokenState) error {
	v, err := encodeTokenState(s)
	if err != nil {
		return fmt.Errorf("store: encode token state: %w", err)
	}
	return tx.Bucket(bucketTokens).Put([]byte(s.ID), v)
}

// UseTry counts one try of a token with maxTries tries (its task's low
// nibble) and returns the new state. When all tries are used it returns
// ErrTriesExhausted and changes nothing. The check and the increment are
// one transaction, so parallel calls cannot both take the last try.
// expires is the token's exp.
func (db *DB) UseTry(ctx context.Context, id string, maxTries int, expires time.Time) (TokenState, error) {
	if err := checkID("token id", id, maxTokenIDLen); err != nil {
		return TokenState{}, fmt.Errorf("store: %w", err)
	}
	if maxTries < bws.MinTries || maxTries > bws.MaxTries {
		return TokenState{}, fmt.Errorf("store: maxtries %d: %w", maxTries, ErrInvalid)
	}
	var s TokenState
	err := db.update(ctx, func(tx *bolt.Tx) error {
		var err error
		s, err = getToken(tx, id)
		switch {
		case isNotFound(err):
			s = TokenState{ID: id, Expires: expires.UTC()}
		case err != nil:
			return err
		}
		if s.TriesUsed >= maxTries {
			return fmt.Errorf("store: token %q: %w", id, ErrTriesExhausted)
		}
		s.TriesUsed++
		s.Updated = db.now().UTC()
		return putToken(tx, s)
	})
	if err != nil {
		return TokenState{}, err
	}
	return s, nil
}

// SetTokenResult stores the JSON answer of a biometric call for /result.
func (db *DB) SetTokenResult(ctx context.Context, id string, result json.RawMessage, expires time.Time) error {
	if err := checkID("token id", id, maxTokenIDLen); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if len(result) > maxResultBytes || !json.Valid(result) {
		return fmt.Errorf("store: token result must be JSON up to %d bytes: %w", maxResultBytes, ErrInvalid)
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		s, err := getToken(tx, id)
		switch {
		case isNotFound(err):
			s = TokenState{ID: id, Expires: expires.UTC()}
		case err != nil:
			return err
		}
		s.Result = append(json.RawMessage(nil), result...)
		s.Updated = db.now().UTC()
		return putToken(tx, s)
	})
}

// SweepTokens deletes the state of tokens that expired before now and
// returns how many. Run it periodically; a token past exp fails
// validation anyway, so the sweep only bounds the file.
func (db *DB) SweepTokens(ctx context.Context) (int, error) {
	now := db.now()
	var n int
	err := db.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var expired [][]byte // a bucket must not change under its cursor
		err := b.ForEach(func(k, v []byte) error {
			s, err := decodeTokenState(v)
			// A record that does not decode is dropped too: it is only
			// per-token bookkeeping, and keeping it would fail every sweep.
			if err != nil || s.Expires.Before(now) {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}
