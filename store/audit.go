package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// AuditEntry records one biometric or administrative call: who, what, the
// result and when. It never holds images or templates; Detail is bounded
// so that nothing large can be slipped in.
type AuditEntry struct {
	Seq     uint64 // assigned by AppendAudit, increasing
	Time    time.Time
	App     string // who: the app id (or "admin")
	TokenID string
	Action  string // what: "enrollment", "verification", "deleteclass", …
	BCID    string
	Result  string // "success", "failure", an error code
	Detail  string
}

// Field bounds; longer values are cut, so a call is never refused because
// its audit line was long.
const (
	maxAuditField  = 128
	maxAuditDetail = 512
)

type auditRecord struct {
	Time    time.Time `json:"t"`
	App     string    `json:"app,omitempty"`
	TokenID string    `json:"tok,omitempty"`
	Action  string    `json:"act"`
	BCID    string    `json:"bcid,omitempty"`
	Result  string    `json:"res,omitempty"`
	Detail  string    `json:"det,omitempty"`
}

func decodeAudit(k, v []byte) (AuditEntry, error) {
	if len(k) != 8 {
		return AuditEntry{}, fmt.Errorf("audit key: %w", ErrCorrupt)
	}
	var r auditRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return AuditEntry{}, fmt.Errorf("audit record %d: %w", binary.BigEndian.Uint64(k), ErrCorrupt)
	}
	return AuditEntry{
		Seq: binary.BigEndian.Uint64(k), Time: r.Time, App: r.App, TokenID: r.TokenID,
		Action: r.Action, BCID: r.BCID, Result: r.Result, Detail: r.Detail,
	}, nil
}

// cut shortens s to at most n bytes on a rune boundary and replaces
// invalid UTF-8.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// AppendAudit appends e (Time defaults to now) and returns its sequence
// number. Entries are never changed; TrimAudit drops the oldest.
func (db *DB) AppendAudit(ctx context.Context, e AuditEntry) (uint64, error) {
	if e.Action == "" {
		return 0, fmt.Errorf("store: audit entry without action: %w", ErrInvalid)
	}
	if e.Time.IsZero() {
		e.Time = db.now()
	}
	r := auditRecord{
		Time:    e.Time.UTC(),
		App:     cut(e.App, maxAuditField),
		TokenID: cut(e.TokenID, maxAuditField),
		Action:  cut(e.Action, maxAuditField),
		BCID:    cut(e.BCID, maxAuditField),
		Result:  cut(e.Result, maxAuditField),
		Detail:  cut(e.Detail, maxAuditDetail),
	}
	v, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("store: encode audit entry: %w", err)
	}
	var seq uint64
	err = db.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
		return b.Put(u64(seq), v)
	})
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// Audit returns up to limit entries with Seq > after, oldest first.
func (db *DB) Audit(ctx context.Context, after uint64, limit int) ([]AuditEntry, error) {
	if limit <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	var out []AuditEntry
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			e, err := decodeAudit(k, v)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// TrimAudit deletes entries older than before, from the oldest on, and
// returns how many. It stops at the first newer entry, so the log stays a
// contiguous suffix.
func (db *DB) TrimAudit(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := db.update(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.First(); k != nil; k, v = c.First() {
			e, err := decodeAudit(k, v)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if !e.Time.Before(before) {
				return nil
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
