package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

const tokenID = "0f8fad5b-d9cb-469f-a165-70867728950e"

func TestTokenState(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	exp := t0.Add(10 * time.Minute)

	if _, err := db.Token(ctx, tokenID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Token before use = %v", err)
	}
	for want := 1; want <= 3; want++ {
		s, err := db.UseTry(ctx, tokenID, 3, exp)
		if err != nil || s.TriesUsed != want || !s.Expires.Equal(exp) {
			t.Fatalf("UseTry %d = %+v, %v", want, s, err)
		}
	}
	if _, err := db.UseTry(ctx, tokenID, 3, exp); !errors.Is(err, ErrTriesExhausted) {
		t.Fatalf("fourth try = %v", err)
	}
	if s, _ := db.Token(ctx, tokenID); s.TriesUsed != 3 {
		t.Fatalf("an exhausted try was counted: %+v", s)
	}

	result := json.RawMessage(`{"Success":true,"Action":"verification","BCID":"bws/12/4711"}`)
	if err := db.SetTokenResult(ctx, tokenID, result, exp); err != nil {
		t.Fatal(err)
	}
	if err := db.SetTokenResult(ctx, tokenID, json.RawMessage(`{"x":`), exp); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetTokenResult of bad JSON = %v", err)
	}

	// Token state survives a restart.
	db = reopen(t, db, testOptions(clk))
	s, err := db.Token(ctx, tokenID)
	if err != nil || s.TriesUsed != 3 || !bytes.Equal(s.Result, result) {
		t.Fatalf("after reopen: %+v, %v", s, err)
	}
	if _, err := db.UseTry(ctx, tokenID, 3, exp); !errors.Is(err, ErrTriesExhausted) {
		t.Fatalf("tries reset by a restart: %v", err)
	}

	// A second token, result before any try.
	other := "1f8fad5b-d9cb-469f-a165-70867728950e"
	if err := db.SetTokenResult(ctx, other, result, exp.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	clk.Add(10*time.Minute + time.Second)
	n, err := db.SweepTokens(ctx)
	if err != nil || n != 1 {
		t.Fatalf("SweepTokens = %d, %v", n, err)
	}
	if _, err := db.Token(ctx, tokenID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("swept token = %v", err)
	}
	if _, err := db.Token(ctx, other); err != nil {
		t.Fatalf("unexpired token swept: %v", err)
	}

	for _, bad := range []struct {
		id  string
		max int
	}{{"", 3}, {"a/b", 3}, {tokenID, 0}, {tokenID, 16}} {
		if _, err := db.UseTry(ctx, bad.id, bad.max, exp); !errors.Is(err, ErrInvalid) {
			t.Errorf("UseTry(%q, %d) = %v", bad.id, bad.max, err)
		}
	}
}

// TestUseTryConcurrent: parallel calls cannot both take the last try.
func TestUseTryConcurrent(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	var ok, exhausted atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.UseTry(ctx, tokenID, 5, t0.Add(time.Hour))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrTriesExhausted):
				exhausted.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || exhausted.Load() != 7 {
		t.Fatalf("%d tries granted, %d refused", ok.Load(), exhausted.Load())
	}
}

func TestSigningKeys(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	ks, err := db.SigningKeys(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Current.Secret) != 32 || len(ks.Current.ID) != 16 || len(ks.Previous) != 0 || !ks.Current.Created.Equal(t0) {
		t.Fatalf("first key %+v", ks)
	}
	again, err := db.SigningKeys(ctx, "token")
	if err != nil || again.Current.ID != ks.Current.ID || !bytes.Equal(again.Current.Secret, ks.Current.Secret) {
		t.Fatalf("second SigningKeys generated another key: %v", err)
	}
	other, _ := db.SigningKeys(ctx, "other")
	if other.Current.ID == ks.Current.ID || bytes.Equal(other.Current.Secret, ks.Current.Secret) {
		t.Fatal("two names share a key")
	}

	clk.Add(time.Hour)
	k2, err := db.RotateKey(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	k3, err := db.RotateKey(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, testOptions(clk))
	ks2, err := db.SigningKeys(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	if ks2.Current.ID != k3.ID || len(ks2.Previous) != 2 || ks2.Previous[0].ID != k2.ID || ks2.Previous[1].ID != ks.Current.ID {
		t.Fatalf("after rotations: %+v", ks2)
	}
	if !ks2.Previous[1].Retired.Equal(t0.Add(time.Hour)) {
		t.Fatalf("retired at %v", ks2.Previous[1].Retired)
	}

	// Prune keys retired more than 30 minutes before now (t0+2h).
	n, err := db.PruneKeys(ctx, "token", clk.Now().Add(-30*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneKeys = %d, %v", n, err)
	}
	ks3, _ := db.SigningKeys(ctx, "token")
	if len(ks3.Previous) != 1 || ks3.Previous[0].ID != k2.ID {
		t.Fatalf("after prune %+v", ks3)
	}

	if _, err := db.RotateKey(ctx, "fresh"); err != nil {
		t.Fatalf("RotateKey of a new name: %v", err)
	}
	if _, err := db.SigningKeys(ctx, "bad/name"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad key name: %v", err)
	}
	if _, err := db.PruneKeys(ctx, "none", clk.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PruneKeys of an unknown name: %v", err)
	}
}

func TestAudit(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	for i, act := range []string{"enrollment", "verification", "verification", "deleteclass"} {
		seq, err := db.AppendAudit(ctx, AuditEntry{App: "kiosk", TokenID: tokenID, Action: act, BCID: "bws/12/4711", Result: "success"})
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("AppendAudit = %d, %v", seq, err)
		}
		clk.Add(time.Minute)
	}
	page, err := db.Audit(ctx, 0, 3)
	if err != nil || len(page) != 3 || page[0].Seq != 1 || page[2].Seq != 3 || page[1].Action != "verification" ||
		!page[0].Time.Equal(t0) || page[0].App != "kiosk" {
		t.Fatalf("Audit page 1 = %+v, %v", page, err)
	}
	page, _ = db.Audit(ctx, 3, 3)
	if len(page) != 1 || page[0].Seq != 4 {
		t.Fatalf("Audit page 2 = %+v", page)
	}
	if page, _ := db.Audit(ctx, ^uint64(0), 3); len(page) != 0 {
		t.Fatalf("Audit after max = %+v", page)
	}

	// Long fields are cut, not refused, and stay valid UTF-8.
	long := strings.Repeat("é", 1000)
	if _, err := db.AppendAudit(ctx, AuditEntry{Action: "x", Detail: long, App: "bad\xff"}); err != nil {
		t.Fatal(err)
	}
	page, _ = db.Audit(ctx, 4, 1)
	if len(page[0].Detail) > maxAuditDetail || !utf8.ValidString(page[0].Detail) || !utf8.ValidString(page[0].App) {
		t.Fatalf("long entry %q", page[0].Detail)
	}
	if _, err := db.AppendAudit(ctx, AuditEntry{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("entry without action = %v", err)
	}

	db = reopen(t, db, testOptions(clk))
	n, err := db.TrimAudit(ctx, t0.Add(2*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("TrimAudit = %d, %v", n, err)
	}
	page, _ = db.Audit(ctx, 0, 10)
	if len(page) != 3 || page[0].Seq != 3 {
		t.Fatalf("after trim %+v", page)
	}
	// Sequence numbers are never reused.
	if seq, _ := db.AppendAudit(ctx, AuditEntry{Action: "x"}); seq != 6 {
		t.Fatalf("seq after trim %d", seq)
	}
}

func TestBackupRestore(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	if _, err := db.AddApp(ctx, App{ID: "kiosk", Storage: "bws", Partitions: []int{12}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddTemplates(ctx, classA, tpl("t1", 1)); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	n, err := db.Backup(ctx, &snap)
	if err != nil || n != int64(snap.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v", n, err)
	}
	// Changes after the snapshot.
	if _, err := db.AddTemplates(ctx, classB, tpl("t2", 1)); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteApp(ctx, "kiosk"); err != nil {
		t.Fatal(err)
	}

	path := db.Path()
	opts := testOptions(clk)
	opts.Timeout = 50 * time.Millisecond
	if err := Restore(ctx, path, bytes.NewReader(snap.Bytes()), opts); !errors.Is(err, ErrLocked) {
		t.Fatalf("Restore over an open store = %v", err)
	}
	db.Close()

	// Failed restores leave the file as it was.
	before, _ := os.ReadFile(path)
	if err := Restore(ctx, path, strings.NewReader("not a database"), opts); err == nil {
		t.Fatal("Restore of garbage succeeded")
	}
	wrong := opts
	wrong.EncryptionKey = testKey(9)
	if err := Restore(ctx, path, bytes.NewReader(snap.Bytes()), wrong); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Restore with the wrong key = %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a failed restore changed the file")
	}
	if m, _ := filepath.Glob(path + ".restore-*"); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}

	if err := Restore(ctx, path, bytes.NewReader(snap.Bytes()), opts); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, opts)
	if _, err := db.App(ctx, "kiosk"); err != nil {
		t.Fatalf("restored app: %v", err)
	}
	if _, err := db.Templates(ctx, classA); err != nil {
		t.Fatalf("restored templates: %v", err)
	}
	if ok, _ := db.IsEnrolled(ctx, classB); ok {
		t.Fatal("a class added after the snapshot survived the restore")
	}

	// Restore to a new path.
	fresh := filepath.Join(t.TempDir(), "new.db")
	if err := Restore(ctx, fresh, bytes.NewReader(snap.Bytes()), opts); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored file: %v, %v", fi.Mode(), err)
	}
}
