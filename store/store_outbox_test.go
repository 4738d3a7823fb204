package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// sample makes a distinctive fake image: a PNG header and bytes no other
// test writes, so the raw-file scan cannot match by accident.
func sample(tag string, n int) []byte {
	b := append([]byte("\x89PNG\r\n\x1a\n"), []byte("SAMPLE-"+tag+"-")...)
	for i := 0; len(b) < n; i++ {
		b = append(b, byte('a'+i%26), byte(i))
	}
	return b[:n]
}

func bcid(class int64) bws.BCID { return bws.BCID{Storage: "bws", Partition: 12, ClassID: class} }

func enrollWith(t *testing.T, db *DB, class int64, samples ...[]byte) OutboxJob {
	t.Helper()
	_, j, err := db.AddTemplatesWithOutbox(context.Background(), bcid(class), OutboxJob{Samples: samples}, tpl("", 1))
	if err != nil {
		t.Fatalf("AddTemplatesWithOutbox(%d): %v", class, err)
	}
	return j
}

func TestOutboxEnrollDeliver(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	s1, s2 := sample("one", 300), sample("two", 500)
	n, j, err := db.AddTemplatesWithOutbox(ctx, bcid(1), OutboxJob{Samples: [][]byte{s1, s2}}, tpl("t1", 1))
	if err != nil || n != 1 {
		t.Fatalf("AddTemplatesWithOutbox = %d, %v", n, err)
	}
	if j.ID == uuid.Nil || j.Seq == 0 || j.Kind != OutboxEnroll || j.SampleCount != 2 || j.SampleBytes != 800 || !j.Created.Equal(t0) {
		t.Fatalf("job %+v", j)
	}
	if ok, _ := db.IsEnrolled(ctx, bcid(1)); !ok {
		t.Fatal("local effect missing")
	}
	got, err := db.OutboxSamples(ctx, j)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], s1) || !bytes.Equal(got[1], s2) {
		t.Fatalf("OutboxSamples = %d samples, %v", len(got), err)
	}
	clk.Add(time.Minute)
	st, err := db.OutboxStats(ctx)
	if err != nil || st.Pending != 1 || st.SampleBytes != 800 || !st.Oldest.Equal(t0) || st.Full {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if err := db.MarkOutboxDelivered(ctx, j.Seq, j.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkOutboxDelivered(ctx, j.Seq, j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second MarkOutboxDelivered = %v", err)
	}
	if _, err := db.OutboxSamples(ctx, j); !errors.Is(err, ErrNotFound) {
		t.Fatalf("samples after delivery: %v", err)
	}
	st, _ = db.OutboxStats(ctx)
	if st.Pending != 0 || st.SampleBytes != 0 || !st.Oldest.IsZero() {
		t.Fatalf("stats after delivery %+v", st)
	}
}

// TestOutboxAtomic: the local effect and the job commit together.
func TestOutboxAtomic(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		job     OutboxJob
		tpl     Template
		wantErr error
	}{
		{"invalid template", OutboxJob{Samples: [][]byte{sample("x", 10)}}, Template{Model: "m"}, ErrInvalid},
		{"no samples", OutboxJob{}, tpl("", 1), ErrInvalid},
		{"empty sample", OutboxJob{Samples: [][]byte{{}}}, tpl("", 1), ErrInvalid},
		{"too many samples", OutboxJob{Samples: make([][]byte, MaxOutboxSamples+1)}, tpl("", 1), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := db.AddTemplatesWithOutbox(ctx, bcid(7), tt.job, tt.tpl); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if ok, _ := db.IsEnrolled(ctx, bcid(7)); ok {
				t.Fatal("templates added without the job")
			}
			if st, _ := db.OutboxStats(ctx); st.Pending != 0 {
				t.Fatal("job enqueued without the templates")
			}
		})
	}
	// The same job id twice is refused, with no second local effect.
	j := enrollWith(t, db, 1, sample("a", 10))
	if _, _, err := db.AddTemplatesWithOutbox(ctx, bcid(2), OutboxJob{ID: j.ID, Samples: [][]byte{sample("b", 10)}}, tpl("", 1)); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate job id: %v", err)
	}
	if ok, _ := db.IsEnrolled(ctx, bcid(2)); ok {
		t.Fatal("duplicate job added templates")
	}
}

func TestOutboxPerClassOrder(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	a1 := enrollWith(t, db, 1, sample("a1", 10))
	b1 := enrollWith(t, db, 2, sample("b1", 10))
	a2 := enrollWith(t, db, 1, sample("a2", 10))
	c1 := enrollWith(t, db, 3, sample("c1", 10))

	seqs := func(js []OutboxJob) []uint64 {
		var s []uint64
		for _, j := range js {
			s = append(s, j.Seq)
		}
		return s
	}
	due, next, err := db.NextOutbox(ctx, clk.Now(), 10)
	if err != nil || fmt.Sprint(seqs(due)) != fmt.Sprint([]uint64{a1.Seq, b1.Seq, c1.Seq}) || !next.IsZero() {
		t.Fatalf("NextOutbox = %v, %v, %v", seqs(due), next, err)
	}
	if due, _, _ := db.NextOutbox(ctx, clk.Now(), 2); len(due) != 2 {
		t.Fatalf("limit: %d jobs", len(due))
	}
	// a1 backs off: a2 must wait behind it; b1 and c1 go on.
	retryAt := clk.Now().Add(time.Minute)
	if err := db.RecordOutboxFailure(ctx, a1.Seq, a1.ID, "centre down", retryAt); err != nil {
		t.Fatal(err)
	}
	due, next, _ = db.NextOutbox(ctx, clk.Now(), 10)
	if fmt.Sprint(seqs(due)) != fmt.Sprint([]uint64{b1.Seq, c1.Seq}) || !next.Equal(retryAt) {
		t.Fatalf("after failure: %v, next %v", seqs(due), next)
	}
	j, _ := db.FindOutbox(ctx, a1.ID)
	if j.Attempts != 1 || j.LastError != "centre down" {
		t.Fatalf("failure not recorded: %+v", j)
	}
	if st, _ := db.OutboxStats(ctx); st.LastError != "centre down" {
		t.Fatalf("stats last error %q", st.LastError)
	}
	clk.Add(time.Minute)
	if err := db.MarkOutboxDelivered(ctx, a1.Seq, a1.ID); err != nil {
		t.Fatal(err)
	}
	due, _, _ = db.NextOutbox(ctx, clk.Now(), 10)
	if fmt.Sprint(seqs(due)) != fmt.Sprint([]uint64{b1.Seq, a2.Seq, c1.Seq}) {
		t.Fatalf("after delivery: %v", seqs(due))
	}
	// A checkpoint survives and is bounded.
	if err := db.SetOutboxCheckpoint(ctx, a2.Seq, a2.ID, []byte("sent")); err != nil {
		t.Fatal(err)
	}
	if j, _ := db.FindOutbox(ctx, a2.ID); string(j.Checkpoint) != "sent" {
		t.Fatalf("checkpoint %q", j.Checkpoint)
	}
	if err := db.SetOutboxCheckpoint(ctx, a2.Seq, a2.ID, make([]byte, 257)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long checkpoint: %v", err)
	}
	if err := db.SetOutboxCheckpoint(ctx, a2.Seq, b1.ID, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("checkpoint with a stale reference: %v", err)
	}
}

func TestOutboxDeadLetters(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	s := sample("dead", 100)
	a := enrollWith(t, db, 1, s)
	b := enrollWith(t, db, 2, sample("b", 10))
	clk.Add(time.Second)
	if err := db.MoveOutboxToDead(ctx, a.Seq, a.ID, "400 Bad Request: NoFaceFound"); err != nil {
		t.Fatal(err)
	}
	st, _ := db.OutboxStats(ctx)
	if st.Pending != 1 || st.Dead != 1 || st.SampleBytes != int64(len(s))+10 {
		t.Fatalf("stats %+v", st)
	}
	dead, err := db.OutboxJobs(ctx, true, 0, 10)
	if err != nil || len(dead) != 1 || dead[0].ID != a.ID || !dead[0].DeadAt.Equal(clk.Now()) || dead[0].Attempts != 1 {
		t.Fatalf("dead letters %+v, %v", dead, err)
	}
	if got, err := db.OutboxSamples(ctx, dead[0]); err != nil || !bytes.Equal(got[0], s) {
		t.Fatalf("dead letter keeps its samples: %v", err)
	}
	if _, err := db.RetryOutbox(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retry of a pending job: %v", err)
	}
	r, err := db.RetryOutbox(ctx, a.ID)
	if err != nil || r.Seq <= b.Seq || r.Attempts != 0 || !r.DeadAt.IsZero() {
		t.Fatalf("retry = %+v, %v", r, err)
	}
	pending, _ := db.OutboxJobs(ctx, false, 0, 10)
	if len(pending) != 2 || pending[0].ID != b.ID || pending[1].ID != a.ID {
		t.Fatalf("retried job not at the end: %+v", pending)
	}
	for _, id := range []uuid.UUID{a.ID, b.ID} {
		if _, err := db.DropOutbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.DropOutbox(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second drop: %v", err)
	}
	if st, _ := db.OutboxStats(ctx); st != (OutboxStats{Limits: st.Limits}) {
		t.Fatalf("stats after drop %+v", st)
	}
}

// TestOutboxLimits: enrollments beyond the bound are refused whole;
// deletions always pass.
func TestOutboxLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits OutboxLimits
		sizes  []int // sample size of each enrollment
		refuse int   // index of the first refused enrollment, -1 none
	}{
		{"defaults", OutboxLimits{}, []int{100, 100, 100}, -1},
		{"job limit", OutboxLimits{MaxJobs: 2}, []int{10, 10, 10}, 2},
		{"byte limit", OutboxLimits{MaxBytes: 250}, []int{100, 100, 100}, 2},
		{"byte limit exact", OutboxLimits{MaxBytes: 200}, []int{100, 100, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTestDB(t)
			ctx := context.Background()
			if err := db.SetOutboxLimits(ctx, tt.limits); err != nil {
				t.Fatal(err)
			}
			refused := -1
			for i, n := range tt.sizes {
				_, _, err := db.AddTemplatesWithOutbox(ctx, bcid(int64(i)), OutboxJob{Samples: [][]byte{sample("l", n)}}, tpl("", 1))
				if errors.Is(err, ErrOutboxFull) {
					refused = i
					if ok, _ := db.IsEnrolled(ctx, bcid(int64(i))); ok {
						t.Fatal("a refused enrollment was applied locally")
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if refused != tt.refuse {
				t.Fatalf("refused at %d, want %d", refused, tt.refuse)
			}
			if refused >= 0 {
				if st, _ := db.OutboxStats(ctx); !st.Full {
					t.Fatalf("stats not full: %+v", st)
				}
				if _, _, err := db.DeleteClassWithOutbox(ctx, bcid(0), OutboxJob{}); err != nil {
					t.Fatalf("delete refused when full: %v", err)
				}
			}
		})
	}
	db, _ := openTestDB(t)
	if err := db.SetOutboxLimits(context.Background(), OutboxLimits{MaxJobs: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative limit: %v", err)
	}
}

func TestDeleteClassWithOutbox(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	a1 := enrollWith(t, db, 1, sample("a1", 10))
	enrollWith(t, db, 2, sample("b1", 10))
	a2 := enrollWith(t, db, 1, sample("a2", 10))
	if err := db.MoveOutboxToDead(ctx, a1.Seq, a1.ID, "permanent"); err != nil {
		t.Fatal(err)
	}
	j, dropped, err := db.DeleteClassWithOutbox(ctx, bcid(1), OutboxJob{})
	if err != nil || dropped != 2 || j.Kind != OutboxDelete || j.SampleCount != 0 {
		t.Fatalf("DeleteClassWithOutbox = %+v, %d, %v", j, dropped, err)
	}
	if ok, _ := db.IsEnrolled(ctx, bcid(1)); ok {
		t.Fatal("class still enrolled")
	}
	for _, id := range []uuid.UUID{a1.ID, a2.ID} {
		if _, err := db.FindOutbox(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("superseded enroll job still there: %v", err)
		}
	}
	st, _ := db.OutboxStats(ctx)
	if st.Pending != 2 || st.Dead != 0 || st.SampleBytes != 10 {
		t.Fatalf("stats %+v", st)
	}
	if _, _, err := db.DeleteClassWithOutbox(ctx, bcid(1), OutboxJob{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of a missing class: %v", err)
	}
	if st2, _ := db.OutboxStats(ctx); st2.Pending != 2 {
		t.Fatal("a failed delete enqueued a job")
	}
}

func TestOutboxExpire(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	old := enrollWith(t, db, 1, sample("old", 50))
	oldDead := enrollWith(t, db, 2, sample("olddead", 50))
	if err := db.MoveOutboxToDead(ctx, oldDead.Seq, oldDead.ID, "400"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddTemplates(ctx, bcid(3), tpl("", 1)); err != nil {
		t.Fatal(err)
	}
	del, _, err := db.DeleteClassWithOutbox(ctx, bcid(3), OutboxJob{})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(48 * time.Hour)
	fresh := enrollWith(t, db, 4, sample("fresh", 50))
	n, err := db.ExpireOutbox(ctx, clk.Now().Add(-24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("ExpireOutbox = %d, %v", n, err)
	}
	for _, tt := range []struct {
		id           uuid.UUID
		dead, erased bool
	}{
		{old.ID, true, true}, {oldDead.ID, true, true}, {del.ID, false, false}, {fresh.ID, false, false},
	} {
		j, err := db.FindOutbox(ctx, tt.id)
		if err != nil || j.DeadAt.IsZero() == tt.dead || j.Erased != tt.erased {
			t.Errorf("job %s: %+v, %v", tt.id, j, err)
		}
	}
	if _, err := db.RetryOutbox(ctx, old.ID); !errors.Is(err, ErrInvalid) {
		t.Fatalf("retry of an erased job: %v", err)
	}
	if st, _ := db.OutboxStats(ctx); st.SampleBytes != 50 || st.Pending != 2 || st.Dead != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOutboxSamplesEncryptedAtRest scans the raw file for sample bytes,
// pending and dead.
func TestOutboxSamplesEncryptedAtRest(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	pending := sample("pending-distinctive", 4000)
	dead := sample("dead-distinctive", 4000)
	enrollWith(t, db, 1, pending)
	d := enrollWith(t, db, 2, dead)
	if err := db.MoveOutboxToDead(ctx, d.Seq, d.ID, "400"); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string][]byte{"pending": pending, "dead": dead} {
		for _, needle := range [][]byte{s[8:40], s[len(s)-32:]} {
			if bytes.Contains(raw, needle) {
				t.Errorf("plaintext %s sample bytes in the raw file", name)
			}
		}
	}
	if !bytes.Contains(raw, []byte("outboxsamples")) || len(raw) < 8000 {
		t.Fatal("the file does not hold the samples")
	}
}

func TestOutboxRotateKey(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	s := sample("rot", 64)
	j := enrollWith(t, db, 1, s)
	if _, err := db.RotateEncryptionKey(ctx, testKey(2)); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(clk)
	opts.EncryptionKey = testKey(2)
	db = reopen(t, db, opts) // without the old key
	got, err := db.OutboxSamples(ctx, j)
	if err != nil || !bytes.Equal(got[0], s) {
		t.Fatalf("sample after key rotation: %v", err)
	}
}

// TestOutboxSampleBound: a sealed sample moved to another job does not open.
func TestOutboxSampleBound(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	a := enrollWith(t, db, 1, sample("a", 10))
	b := enrollWith(t, db, 2, sample("b", 10))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketOutboxSamples)
		return sb.Put(outboxSampleKey(b.ID, 0), bytes.Clone(sb.Get(outboxSampleKey(a.ID, 0))))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.OutboxSamples(ctx, b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped sample opened: %v", err)
	}
	if err := db.Check(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check of a swapped sample: %v", err)
	}
	// Put it right so the fixture's check passes.
	if _, err := db.DropOutbox(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateToV3 opens a schema-2 file: the outbox buckets appear.
func TestMigrateToV3(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "v2.db")
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Update(func(tx *bolt.Tx) error { return migrate(tx, 2) }); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db := openAt(t, path, testOptions(clk))
	if v, _ := db.SchemaVersion(context.Background()); v != 3 {
		t.Fatalf("schema %d", v)
	}
	enrollWith(t, db, 1, sample("m", 10))
}

func TestOutboxJobCodec(t *testing.T) {
	j := OutboxJob{
		ID: uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e"), Kind: OutboxEnroll, BCID: bcid(4711),
		SampleCount: 2, SampleBytes: 300, Created: t0, NextAttempt: t0.Add(time.Second), Attempts: 3,
		LastError: "503", Checkpoint: []byte{1, 2},
	}
	got, err := decodeOutboxJob(encodeOutboxJob(j))
	if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", j) {
		t.Fatalf("round trip:\n%+v\n%+v, %v", got, j, err)
	}
}

func FuzzDecodeOutboxJob(f *testing.F) {
	id := uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")
	f.Add(encodeOutboxJob(OutboxJob{ID: id, Kind: OutboxEnroll, BCID: bcid(1), SampleCount: 1, SampleBytes: 9, Created: t0}))
	f.Add(encodeOutboxJob(OutboxJob{ID: id, Kind: OutboxDelete, BCID: bcid(2), DeadAt: t0, LastError: "x", Checkpoint: []byte("cp")}))
	f.Add(encodeOutboxJob(OutboxJob{ID: id, Kind: OutboxEnroll, BCID: bcid(3), Erased: true}))
	f.Add([]byte{outboxFormat})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := decodeOutboxJob(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if err := j.validateMeta(); err != nil {
			t.Fatalf("decoded an invalid job: %v", err)
		}
		again, err := decodeOutboxJob(encodeOutboxJob(j))
		if err != nil || fmt.Sprintf("%+v", again) != fmt.Sprintf("%+v", j) {
			t.Fatalf("round trip: %+v vs %+v, %v", j, again, err)
		}
	})
}
