package store

// The sync outbox (schema 3): jobs that must reach a central BWS, written in
// the same transaction as their local effect, so a crash never leaves an
// enrollment or deletion that the centre will not learn of.
//
// Layout:
//
//	outbox         sequence (uint64 BE) → job record (clear: no biometric data)
//	deadletter     sequence (uint64 BE) → job record of a permanently failed job
//	outboxsamples  job id (16) | index (uint16 BE) → sealed sample image
//	outboxmeta     "pending", "dead", "bytes" (uint64 BE counters), "limits" (JSON)
//
// Samples are sealed like templates, bound to "outbox/<job id>/<index>", so
// they stay valid when their job moves between the outbox and the dead
// letters. Sequences come from the outbox bucket and are never reused; a
// dead letter keeps its sequence, a retried one gets a new one.
//
// Bound policy (what a kiosk operator expects from an offline-first device):
// local enrollment keeps working while the centre is away, up to
// OutboxLimits. When a new enrollment would exceed them, it is refused as a
// whole (ErrOutboxFull: the person is not enrolled locally either, and the
// device says so) rather than dropping the oldest job: a silently lost job
// is a person the centre never learns of, which nobody notices until that
// person fails at another site. Deletions are never refused: they carry no
// samples, they erase the pending samples of their class, and refusing one
// would keep biometric data someone asked to delete. Samples have an age
// bound too (ExpireOutbox): an enroll job older than the retention period
// moves to the dead letters with its samples erased.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// ErrOutboxFull: enqueuing the job would exceed OutboxLimits; the local
// effect was not applied either. It clears once the centre catches up or an
// operator drops dead letters.
var ErrOutboxFull = errors.New("sync outbox is full")

var (
	bucketOutbox        = []byte("outbox")
	bucketDeadLetter    = []byte("deadletter")
	bucketOutboxSamples = []byte("outboxsamples")
	bucketOutboxMeta    = []byte("outboxmeta")

	outboxPending = []byte("pending")
	outboxDead    = []byte("dead")
	outboxBytes   = []byte("bytes")
	outboxLimits  = []byte("limits")
)

func migrateV3(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketOutbox, bucketDeadLetter, bucketOutboxSamples, bucketOutboxMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// OutboxKind is what a job does centrally.
type OutboxKind uint8

// Job kinds.
const (
	OutboxEnroll OutboxKind = 1 // enroll the job's samples into the class
	OutboxDelete OutboxKind = 2 // delete the class
)

func (k OutboxKind) String() string {
	switch k {
	case OutboxEnroll:
		return "enroll"
	case OutboxDelete:
		return "delete"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Bounds of an outbox job.
const (
	MaxOutboxSamples       = 64
	MaxOutboxSampleBytes   = 16 << 20
	maxOutboxErrorLen      = 512
	maxOutboxCheckpointLen = 256
)

// Default OutboxLimits: about a week of a busy kiosk offline (a few hundred
// enrollments a day of three to five ~100 KB samples).
const (
	DefaultOutboxMaxJobs  = 10000
	DefaultOutboxMaxBytes = 1 << 30
)

// OutboxJob is one job for the centre. The job ID is the idempotency key:
// it travels to the centre where the protocol has room for it.
type OutboxJob struct {
	Seq  uint64    // position in the outbox; assigned on enqueue
	ID   uuid.UUID // generated when zero
	Kind OutboxKind
	BCID bws.BCID // the local class
	// Samples are the accepted sample images (encoded files: png, jpeg, …)
	// of an enroll job, in upload order. Only set when enqueuing and by
	// OutboxSamples; listings leave it nil.
	Samples     [][]byte
	SampleCount int   // set by the store
	SampleBytes int64 // set by the store
	// Erased: the samples were erased by ExpireOutbox (the job cannot be
	// delivered any more).
	Erased      bool
	Created     time.Time // zero means now
	Attempts    int
	NextAttempt time.Time // zero: due at once
	LastError   string
	// Checkpoint is the sender's own record of a delivery in progress
	// (opaque to the store, at most 256 bytes): what it must check before
	// delivering again after a crash.
	Checkpoint []byte
	DeadAt     time.Time // when it moved to the dead letters; zero in the outbox
}

// Job record, format 1:
//
//	1 | id (16) | kind (1) | flags (1: bit 0 erased) | uvarint len, BCID (slash form) |
//	created, next attempt, dead at (unix ns, 8 BE each; 0 = zero time) |
//	uvarint attempts | uvarint sample count | uvarint sample bytes |
//	uvarint len, last error | uvarint len, checkpoint
const outboxFormat = 1

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

func fromUnixNano(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v)).UTC()
}

func encodeOutboxJob(j OutboxJob) []byte {
	bcid := j.BCID.String()
	b := make([]byte, 0, 19+len(bcid)+24+5*binary.MaxVarintLen64+len(j.LastError)+len(j.Checkpoint))
	b = append(b, outboxFormat)
	b = append(b, j.ID[:]...)
	b = append(b, byte(j.Kind))
	var flags byte
	if j.Erased {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(bcid)))
	b = append(b, bcid...)
	for _, t := range []time.Time{j.Created, j.NextAttempt, j.DeadAt} {
		b = binary.BigEndian.AppendUint64(b, unixNano(t))
	}
	b = binary.AppendUvarint(b, uint64(j.Attempts))
	b = binary.AppendUvarint(b, uint64(j.SampleCount))
	b = binary.AppendUvarint(b, uint64(j.SampleBytes))
	for _, s := range [][]byte{[]byte(j.LastError), j.Checkpoint} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeOutboxJob decodes and validates a job record; it never trusts
// lengths.
func decodeOutboxJob(b []byte) (OutboxJob, error) {
	bad := func(what string) (OutboxJob, error) {
		return OutboxJob{}, fmt.Errorf("outbox record: %s: %w", what, ErrCorrupt)
	}
	if len(b) < 19 || b[0] != outboxFormat {
		return bad("format")
	}
	var j OutboxJob
	copy(j.ID[:], b[1:17])
	j.Kind = OutboxKind(b[17])
	if b[18]&^1 != 0 {
		return bad("flags")
	}
	j.Erased = b[18]&1 != 0
	b = b[19:]
	str := func(max int) ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(max) || n > uint64(len(b)-k) {
			return nil, false
		}
		s := b[k : k+int(n)]
		b = b[k+int(n):]
		return s, true
	}
	num := func(max uint64) (uint64, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > max {
			return 0, false
		}
		b = b[k:]
		return n, true
	}
	s, ok := str(bws.MaxStorageLen + 48)
	if !ok {
		return bad("bcid length")
	}
	c, err := bws.ParseBCID(string(s))
	if err != nil {
		return bad("bcid")
	}
	j.BCID = c
	if len(b) < 24 {
		return bad("short")
	}
	j.Created = fromUnixNano(binary.BigEndian.Uint64(b))
	j.NextAttempt = fromUnixNano(binary.BigEndian.Uint64(b[8:]))
	j.DeadAt = fromUnixNano(binary.BigEndian.Uint64(b[16:]))
	b = b[24:]
	a, ok1 := num(1 << 31)
	n, ok2 := num(MaxOutboxSamples)
	nb, ok3 := num(MaxOutboxSamples * MaxOutboxSampleBytes)
	if !ok1 || !ok2 || !ok3 {
		return bad("counts")
	}
	j.Attempts, j.SampleCount, j.SampleBytes = int(a), int(n), int64(nb)
	e, ok := str(maxOutboxErrorLen)
	if !ok {
		return bad("last error")
	}
	j.LastError = string(e)
	cp, ok := str(maxOutboxCheckpointLen)
	if !ok {
		return bad("checkpoint")
	}
	if len(cp) > 0 {
		j.Checkpoint = bytes.Clone(cp)
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	if err := j.validateMeta(); err != nil {
		return OutboxJob{}, fmt.Errorf("outbox record: %w: %w", ErrCorrupt, err)
	}
	return j, nil
}

// validateMeta checks the fields a record holds (not the samples).
func (j *OutboxJob) validateMeta() error {
	if j.ID == uuid.Nil {
		return fmt.Errorf("outbox job without id: %w", ErrInvalid)
	}
	if err := j.BCID.Validate(); err != nil {
		return fmt.Errorf("outbox job bcid: %w: %w", ErrInvalid, err)
	}
	switch j.Kind {
	case OutboxEnroll:
		if !j.Erased && (j.SampleCount == 0 || j.SampleBytes == 0) {
			return fmt.Errorf("outbox enroll job without samples: %w", ErrInvalid)
		}
	case OutboxDelete:
		if j.SampleCount != 0 || j.SampleBytes != 0 || j.Erased {
			return fmt.Errorf("outbox delete job with samples: %w", ErrInvalid)
		}
	default:
		return fmt.Errorf("outbox job kind %d: %w", j.Kind, ErrInvalid)
	}
	if j.Erased && (j.SampleCount != 0 || j.SampleBytes != 0) {
		return fmt.Errorf("erased outbox job with samples: %w", ErrInvalid)
	}
	if j.SampleCount > MaxOutboxSamples || j.SampleBytes > int64(j.SampleCount)*MaxOutboxSampleBytes || j.SampleBytes < int64(j.SampleCount) {
		return fmt.Errorf("outbox job sample counts: %w", ErrInvalid)
	}
	if len(j.LastError) > maxOutboxErrorLen || len(j.Checkpoint) > maxOutboxCheckpointLen || j.Attempts < 0 {
		return fmt.Errorf("outbox job fields: %w", ErrInvalid)
	}
	return nil
}

// OutboxLimits bound what the outbox and the dead letters hold together.
type OutboxLimits struct {
	MaxJobs  int   `json:"max_jobs"`  // zero: DefaultOutboxMaxJobs
	MaxBytes int64 `json:"max_bytes"` // sample bytes; zero: DefaultOutboxMaxBytes
}

func (l OutboxLimits) withDefaults() OutboxLimits {
	if l.MaxJobs <= 0 {
		l.MaxJobs = DefaultOutboxMaxJobs
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultOutboxMaxBytes
	}
	return l
}

// SetOutboxLimits stores the bounds (kept in the file, so every writer,
// including the enroll path, sees the configured ones). The sync component
// sets them from its config at start.
func (db *DB) SetOutboxLimits(ctx context.Context, l OutboxLimits) error {
	if l.MaxJobs < 0 || l.MaxBytes < 0 {
		return fmt.Errorf("store: outbox limits must not be negative: %w", ErrInvalid)
	}
	v, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutboxMeta).Put(outboxLimits, v)
	})
}

func readOutboxLimits(tx *bolt.Tx) (OutboxLimits, error) {
	var l OutboxLimits
	if v := tx.Bucket(bucketOutboxMeta).Get(outboxLimits); v != nil {
		if err := json.Unmarshal(v, &l); err != nil {
			return OutboxLimits{}, fmt.Errorf("store: outbox limits: %w", ErrCorrupt)
		}
	}
	return l.withDefaults(), nil
}

// counters of outboxmeta.
type outboxCounters struct{ pending, dead, bytes uint64 }

func readOutboxCounters(tx *bolt.Tx) outboxCounters {
	m := tx.Bucket(bucketOutboxMeta)
	get := func(k []byte) uint64 {
		if v := m.Get(k); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
		return 0
	}
	return outboxCounters{get(outboxPending), get(outboxDead), get(outboxBytes)}
}

func writeOutboxCounters(tx *bolt.Tx, c outboxCounters) error {
	m := tx.Bucket(bucketOutboxMeta)
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{outboxPending, c.pending}, {outboxDead, c.dead}, {outboxBytes, c.bytes}} {
		if err := m.Put(kv.k, u64(kv.v)); err != nil {
			return err
		}
	}
	return nil
}

func outboxSampleKey(id uuid.UUID, i int) []byte {
	k := make([]byte, 18)
	copy(k, id[:])
	binary.BigEndian.PutUint16(k[16:], uint16(i))
	return k
}

func outboxSamplePath(id uuid.UUID, i int) []byte {
	return []byte("outbox/" + id.String() + "/" + strconv.Itoa(i))
}

// outboxSamplePathOfKey is the associated data of the sample stored under
// key k (for resealing on key rotation).
func outboxSamplePathOfKey(k []byte) []byte {
	if len(k) != 18 {
		return []byte("outbox/bad-key")
	}
	id, _ := uuid.FromBytes(k[:16])
	return outboxSamplePath(id, int(binary.BigEndian.Uint16(k[16:])))
}

// prepareOutboxJob validates a new job and fills in id, time and counts,
// outside the transaction.
func (db *DB) prepareOutboxJob(j OutboxJob, kind OutboxKind, class bws.BCID) (OutboxJob, error) {
	j.Kind, j.BCID = kind, class
	j.Seq, j.Attempts, j.LastError, j.Checkpoint, j.DeadAt, j.Erased = 0, 0, "", nil, time.Time{}, false
	if j.ID == uuid.Nil {
		id, err := uuid.NewRandomFromReader(db.rand)
		if err != nil {
			return OutboxJob{}, fmt.Errorf("store: outbox job id: %w", err)
		}
		j.ID = id
	}
	if j.Created.IsZero() {
		j.Created = db.now()
	}
	j.Created = j.Created.UTC()
	j.NextAttempt = j.NextAttempt.UTC()
	if kind == OutboxDelete && len(j.Samples) > 0 {
		return OutboxJob{}, fmt.Errorf("store: outbox delete job with samples: %w", ErrInvalid)
	}
	if len(j.Samples) > MaxOutboxSamples {
		return OutboxJob{}, fmt.Errorf("store: outbox job of %d samples (max %d): %w", len(j.Samples), MaxOutboxSamples, ErrInvalid)
	}
	j.SampleCount, j.SampleBytes = len(j.Samples), 0
	for _, s := range j.Samples {
		if len(s) == 0 || len(s) > MaxOutboxSampleBytes {
			return OutboxJob{}, fmt.Errorf("store: outbox sample of %d bytes (1..%d): %w", len(s), MaxOutboxSampleBytes, ErrInvalid)
		}
		j.SampleBytes += int64(len(s))
	}
	if err := j.validateMeta(); err != nil {
		return OutboxJob{}, fmt.Errorf("store: %w", err)
	}
	return j, nil
}

// enqueueTx appends a prepared job, sealing its samples, after checking the
// bounds for enroll jobs.
func (db *DB) enqueueTx(tx *bolt.Tx, j *OutboxJob) error {
	q := tx.Bucket(bucketOutbox)
	cnt := readOutboxCounters(tx)
	if j.Kind == OutboxEnroll {
		l, err := readOutboxLimits(tx)
		if err != nil {
			return err
		}
		if int(cnt.pending+cnt.dead)+1 > l.MaxJobs || int64(cnt.bytes)+j.SampleBytes > l.MaxBytes {
			return fmt.Errorf("store: %d jobs, %d sample bytes held (limits %d, %d): %w",
				cnt.pending+cnt.dead, cnt.bytes, l.MaxJobs, l.MaxBytes, ErrOutboxFull)
		}
	}
	if _, found, err := findOutboxTx(tx, j.ID); err != nil {
		return err
	} else if found {
		return fmt.Errorf("store: outbox job %s: %w", j.ID, ErrExists)
	}
	seq, err := q.NextSequence()
	if err != nil {
		return err
	}
	j.Seq = seq
	kr := db.keys.Load()
	sb := tx.Bucket(bucketOutboxSamples)
	for i, s := range j.Samples {
		rec, err := kr.seal(db.rand, s, outboxSamplePath(j.ID, i))
		if err != nil {
			return fmt.Errorf("store: seal sample: %w", err)
		}
		if err := sb.Put(outboxSampleKey(j.ID, i), rec); err != nil {
			return err
		}
	}
	if err := q.Put(u64(seq), encodeOutboxJob(*j)); err != nil {
		return err
	}
	cnt.pending++
	cnt.bytes += uint64(j.SampleBytes)
	return writeOutboxCounters(tx, cnt)
}

// AddTemplatesWithOutbox is AddTemplates plus an enroll job for the centre
// in the same transaction: both happen or neither. job carries the
// accepted samples; ID, Created may be preset. It fails with ErrOutboxFull
// (and adds nothing) when the outbox is at its limits.
func (db *DB) AddTemplatesWithOutbox(ctx context.Context, class bws.BCID, job OutboxJob, ts ...Template) (int, OutboxJob, error) {
	add, err := db.prepareTemplates(class, ts)
	if err != nil {
		return 0, OutboxJob{}, err
	}
	job, err = db.prepareOutboxJob(job, OutboxEnroll, class)
	if err != nil {
		return 0, OutboxJob{}, err
	}
	var n int
	err = db.update(ctx, func(tx *bolt.Tx) error {
		if err := db.enqueueTx(tx, &job); err != nil {
			return err
		}
		var err error
		n, err = db.addTemplatesTx(tx, class, add)
		return err
	})
	if err != nil {
		return 0, OutboxJob{}, err
	}
	job.Samples = nil
	return n, job, nil
}

// DeleteClassWithOutbox is DeleteClass plus a delete job for the centre in
// the same transaction. Pending and dead enroll jobs of the class are
// dropped with their samples first: the person asked to be deleted, and the
// delete job makes them moot centrally. A class that does not exist locally
// is ErrNotFound and nothing is enqueued. It returns the job and how many
// enroll jobs it superseded.
func (db *DB) DeleteClassWithOutbox(ctx context.Context, class bws.BCID, job OutboxJob) (OutboxJob, int, error) {
	job, err := db.prepareOutboxJob(job, OutboxDelete, class)
	if err != nil {
		return OutboxJob{}, 0, err
	}
	var dropped int
	err = db.update(ctx, func(tx *bolt.Tx) error {
		if err := deleteClassTx(tx, class); err != nil {
			return err
		}
		var err error
		if dropped, err = dropClassEnrollsTx(tx, class); err != nil {
			return err
		}
		return db.enqueueTx(tx, &job)
	})
	if err != nil {
		return OutboxJob{}, 0, err
	}
	return job, dropped, nil
}

// EnqueueOutbox appends a job with no local effect (tests, future kinds).
func (db *DB) EnqueueOutbox(ctx context.Context, job OutboxJob) (OutboxJob, error) {
	job, err := db.prepareOutboxJob(job, job.Kind, job.BCID)
	if err != nil {
		return OutboxJob{}, err
	}
	err = db.update(ctx, func(tx *bolt.Tx) error { return db.enqueueTx(tx, &job) })
	if err != nil {
		return OutboxJob{}, err
	}
	job.Samples = nil
	return job, nil
}

func dropClassEnrollsTx(tx *bolt.Tx, class bws.BCID) (int, error) {
	var n int
	for _, name := range [][]byte{bucketOutbox, bucketDeadLetter} {
		var victims []OutboxJob
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			j, err := decodeOutboxJob(v)
			if err != nil {
				return err
			}
			if j.Kind == OutboxEnroll && j.BCID == class {
				j.Seq = binary.BigEndian.Uint64(k)
				victims = append(victims, j)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
		for _, j := range victims {
			if err := removeJobTx(tx, name, j); err != nil {
				return 0, err
			}
			n++
		}
	}
	return n, nil
}

// removeJobTx deletes a job and its samples from bucket name.
func removeJobTx(tx *bolt.Tx, name []byte, j OutboxJob) error {
	if err := tx.Bucket(name).Delete(u64(j.Seq)); err != nil {
		return err
	}
	if err := eraseSamplesTx(tx, j); err != nil {
		return err
	}
	cnt := readOutboxCounters(tx)
	if bytes.Equal(name, bucketOutbox) {
		cnt.pending--
	} else {
		cnt.dead--
	}
	cnt.bytes -= uint64(j.SampleBytes)
	return writeOutboxCounters(tx, cnt)
}

func eraseSamplesTx(tx *bolt.Tx, j OutboxJob) error {
	sb := tx.Bucket(bucketOutboxSamples)
	for i := range j.SampleCount {
		if err := sb.Delete(outboxSampleKey(j.ID, i)); err != nil {
			return err
		}
	}
	return nil
}

// getJobTx reads the job at seq in bucket name and checks its id, so a
// stale reference (a job dropped meanwhile) is ErrNotFound.
func getJobTx(tx *bolt.Tx, name []byte, seq uint64, id uuid.UUID) (OutboxJob, error) {
	v := tx.Bucket(name).Get(u64(seq))
	if v == nil {
		return OutboxJob{}, fmt.Errorf("store: outbox job %s: %w", id, ErrNotFound)
	}
	j, err := decodeOutboxJob(v)
	if err != nil {
		return OutboxJob{}, fmt.Errorf("store: %w", err)
	}
	if j.ID != id {
		return OutboxJob{}, fmt.Errorf("store: outbox job %s: %w", id, ErrNotFound)
	}
	j.Seq = seq
	return j, nil
}

// findOutboxTx looks a job up by id in the outbox and the dead letters. It
// scans: ids are looked up by operators, the sender uses sequences.
func findOutboxTx(tx *bolt.Tx, id uuid.UUID) (OutboxJob, bool, error) {
	for _, name := range [][]byte{bucketOutbox, bucketDeadLetter} {
		c := tx.Bucket(name).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) < 17 || !bytes.Equal(v[1:17], id[:]) {
				continue
			}
			j, err := decodeOutboxJob(v)
			if err != nil {
				return OutboxJob{}, false, fmt.Errorf("store: %w", err)
			}
			j.Seq = binary.BigEndian.Uint64(k)
			return j, true, nil
		}
	}
	return OutboxJob{}, false, nil
}

// FindOutbox returns the job with id, pending or dead (DeadAt set).
func (db *DB) FindOutbox(ctx context.Context, id uuid.UUID) (OutboxJob, error) {
	var j OutboxJob
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var found bool
		var err error
		if j, found, err = findOutboxTx(tx, id); err == nil && !found {
			err = fmt.Errorf("store: outbox job %s: %w", id, ErrNotFound)
		}
		return err
	})
	return j, err
}

// OutboxJobs lists up to limit jobs with Seq > after, in order: pending
// ones, or the dead letters when dead is set. Samples are not read.
func (db *DB) OutboxJobs(ctx context.Context, dead bool, after uint64, limit int) ([]OutboxJob, error) {
	name := bucketOutbox
	if dead {
		name = bucketDeadLetter
	}
	if limit <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	var out []OutboxJob
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(name).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			j, err := decodeOutboxJob(v)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			j.Seq = binary.BigEndian.Uint64(k)
			out = append(out, j)
		}
		return nil
	})
	return out, err
}

// NextOutbox returns up to limit jobs due at now, in outbox order, at most
// one per class: the oldest pending job of each class, so a class's jobs
// reach the centre in the order they happened (a later job waits while an
// earlier one of its class backs off). next is the earliest NextAttempt of
// the class heads not yet due (zero when none).
func (db *DB) NextOutbox(ctx context.Context, now time.Time, limit int) (due []OutboxJob, next time.Time, err error) {
	err = db.view(ctx, func(tx *bolt.Tx) error {
		seen := make(map[bws.BCID]bool)
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(due) < limit; k, v = c.Next() {
			j, err := decodeOutboxJob(v)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if seen[j.BCID] {
				continue
			}
			seen[j.BCID] = true
			j.Seq = binary.BigEndian.Uint64(k)
			if j.NextAttempt.After(now) {
				if next.IsZero() || j.NextAttempt.Before(next) {
					next = j.NextAttempt
				}
				continue
			}
			due = append(due, j)
		}
		return nil
	})
	return due, next, err
}

// OutboxSamples opens the samples of a pending or dead job.
func (db *DB) OutboxSamples(ctx context.Context, j OutboxJob) ([][]byte, error) {
	var out [][]byte
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = db.outboxSamplesTx(tx, j)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
	return out, err
}

// updateJob rewrites the pending job (seq, id) with fn's changes.
func (db *DB) updateJob(ctx context.Context, seq uint64, id uuid.UUID, fn func(*OutboxJob) error) error {
	return db.update(ctx, func(tx *bolt.Tx) error {
		j, err := getJobTx(tx, bucketOutbox, seq, id)
		if err != nil {
			return err
		}
		if err := fn(&j); err != nil {
			return err
		}
		if err := j.validateMeta(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return tx.Bucket(bucketOutbox).Put(u64(seq), encodeOutboxJob(j))
	})
}

// SetOutboxCheckpoint records the sender's checkpoint for the pending job
// (at most 256 bytes). It is durable before it returns.
func (db *DB) SetOutboxCheckpoint(ctx context.Context, seq uint64, id uuid.UUID, cp []byte) error {
	if len(cp) > maxOutboxCheckpointLen {
		return fmt.Errorf("store: checkpoint of %d bytes: %w", len(cp), ErrInvalid)
	}
	return db.updateJob(ctx, seq, id, func(j *OutboxJob) error {
		j.Checkpoint = bytes.Clone(cp)
		return nil
	})
}

// RecordOutboxFailure counts a failed attempt of the pending job and sets
// when it is due again.
func (db *DB) RecordOutboxFailure(ctx context.Context, seq uint64, id uuid.UUID, msg string, next time.Time) error {
	return db.updateJob(ctx, seq, id, func(j *OutboxJob) error {
		j.Attempts++
		j.LastError = cut(msg, maxOutboxErrorLen)
		j.NextAttempt = next.UTC()
		return nil
	})
}

// MarkOutboxDelivered removes the delivered job and erases its samples at
// once. A job dropped meanwhile is ErrNotFound.
func (db *DB) MarkOutboxDelivered(ctx context.Context, seq uint64, id uuid.UUID) error {
	return db.update(ctx, func(tx *bolt.Tx) error {
		j, err := getJobTx(tx, bucketOutbox, seq, id)
		if err != nil {
			return err
		}
		return removeJobTx(tx, bucketOutbox, j)
	})
}

// MoveOutboxToDead moves the pending job to the dead letters (a permanent
// failure), keeping its samples so that it can be retried.
func (db *DB) MoveOutboxToDead(ctx context.Context, seq uint64, id uuid.UUID, msg string) error {
	return db.update(ctx, func(tx *bolt.Tx) error {
		j, err := getJobTx(tx, bucketOutbox, seq, id)
		if err != nil {
			return err
		}
		j.Attempts++
		j.LastError = cut(msg, maxOutboxErrorLen)
		j.DeadAt = db.now().UTC()
		return moveToDeadTx(tx, j)
	})
}

func moveToDeadTx(tx *bolt.Tx, j OutboxJob) error {
	if err := tx.Bucket(bucketOutbox).Delete(u64(j.Seq)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketDeadLetter).Put(u64(j.Seq), encodeOutboxJob(j)); err != nil {
		return err
	}
	cnt := readOutboxCounters(tx)
	cnt.pending--
	cnt.dead++
	return writeOutboxCounters(tx, cnt)
}

// RetryOutbox moves a dead letter back to the outbox, at its end (it
// happens now, after everything queued meanwhile), with attempts and the
// sender's checkpoint reset. A
// job whose samples were erased cannot be retried (ErrInvalid).
func (db *DB) RetryOutbox(ctx context.Context, id uuid.UUID) (OutboxJob, error) {
	var out OutboxJob
	err := db.update(ctx, func(tx *bolt.Tx) error {
		j, found, err := findOutboxTx(tx, id)
		if err != nil {
			return err
		}
		if !found || j.DeadAt.IsZero() {
			return fmt.Errorf("store: dead letter %s: %w", id, ErrNotFound)
		}
		if j.Erased {
			return fmt.Errorf("store: dead letter %s: samples were erased, the person must enroll again: %w", id, ErrInvalid)
		}
		if err := tx.Bucket(bucketDeadLetter).Delete(u64(j.Seq)); err != nil {
			return err
		}
		q := tx.Bucket(bucketOutbox)
		if j.Seq, err = q.NextSequence(); err != nil {
			return err
		}
		// The centre refused the job, so it did not apply it: a stale
		// checkpoint must not make the sender believe otherwise.
		j.Attempts, j.NextAttempt, j.DeadAt, j.Checkpoint = 0, time.Time{}, time.Time{}, nil
		if err := q.Put(u64(j.Seq), encodeOutboxJob(j)); err != nil {
			return err
		}
		cnt := readOutboxCounters(tx)
		cnt.dead--
		cnt.pending++
		out = j
		return writeOutboxCounters(tx, cnt)
	})
	return out, err
}

// DropOutbox deletes a pending or dead job and erases its samples. The
// centre never learns of it.
func (db *DB) DropOutbox(ctx context.Context, id uuid.UUID) (OutboxJob, error) {
	var out OutboxJob
	err := db.update(ctx, func(tx *bolt.Tx) error {
		j, found, err := findOutboxTx(tx, id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("store: outbox job %s: %w", id, ErrNotFound)
		}
		name := bucketOutbox
		if !j.DeadAt.IsZero() {
			name = bucketDeadLetter
		}
		out = j
		return removeJobTx(tx, name, j)
	})
	return out, err
}

// ExpireOutbox enforces the retention bound: every enroll job created
// before cutoff, pending or dead, has its samples erased and is kept as a
// dead letter marked Erased (visible to operators; it cannot be retried).
// Delete jobs never expire: they hold no biometric data and must still
// reach the centre. It returns how many jobs expired.
func (db *DB) ExpireOutbox(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		now := db.now().UTC()
		for _, name := range [][]byte{bucketOutbox, bucketDeadLetter} {
			var victims []OutboxJob
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				j, err := decodeOutboxJob(v)
				if err != nil {
					return err
				}
				if j.Kind == OutboxEnroll && !j.Erased && j.Created.Before(cutoff) {
					j.Seq = binary.BigEndian.Uint64(k)
					victims = append(victims, j)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			for _, j := range victims {
				if err := eraseSamplesTx(tx, j); err != nil {
					return err
				}
				cnt := readOutboxCounters(tx)
				cnt.bytes -= uint64(j.SampleBytes)
				if err := writeOutboxCounters(tx, cnt); err != nil {
					return err
				}
				j.Erased, j.SampleCount, j.SampleBytes = true, 0, 0
				j.LastError = "expired: samples erased after the retention period"
				if bytes.Equal(name, bucketOutbox) {
					j.DeadAt = now
					if err := moveToDeadTx(tx, j); err != nil {
						return err
					}
				} else if err := tx.Bucket(name).Put(u64(j.Seq), encodeOutboxJob(j)); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// OutboxStats summarizes the outbox for status pages and metrics.
type OutboxStats struct {
	Pending     int
	Dead        int
	SampleBytes int64
	Oldest      time.Time // Created of the oldest pending job; zero when empty
	LastError   string    // of the oldest pending job that failed
	Limits      OutboxLimits
	// Full: the next enrollment would likely be refused (at the job limit,
	// or within one typical job's bytes of the byte limit).
	Full bool
}

// OutboxStats reads the counters and the head of the outbox; it does not
// walk the outbox.
func (db *DB) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var s OutboxStats
	err := db.view(ctx, func(tx *bolt.Tx) error {
		cnt := readOutboxCounters(tx)
		l, err := readOutboxLimits(tx)
		if err != nil {
			return err
		}
		s = OutboxStats{Pending: int(cnt.pending), Dead: int(cnt.dead), SampleBytes: int64(cnt.bytes), Limits: l}
		total := cnt.pending + cnt.dead
		s.Full = int(total) >= l.MaxJobs
		if total > 0 && !s.Full {
			avg := int64(cnt.bytes / total)
			s.Full = int64(cnt.bytes)+avg > l.MaxBytes
		}
		c := tx.Bucket(bucketOutbox).Cursor()
		// The last error of the first few jobs: enough to show why the
		// queue is stuck without walking it.
		i := 0
		for k, v := c.First(); k != nil && i < 16; k, v = c.Next() {
			j, err := decodeOutboxJob(v)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if i == 0 {
				s.Oldest = j.Created
			}
			if s.LastError == "" && j.LastError != "" {
				s.LastError = j.LastError
			}
			i++
		}
		return nil
	})
	return s, err
}

// checkOutbox decodes every job, opens every sample and checks the
// counters (called by Check).
func (db *DB) checkOutbox(ctx context.Context, tx *bolt.Tx) error {
	var cnt outboxCounters
	want := make(map[string]bool) // sample keys the jobs own
	for _, name := range [][]byte{bucketOutbox, bucketDeadLetter} {
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(k) != 8 {
				return fmt.Errorf("outbox key %x: %w", k, ErrCorrupt)
			}
			j, err := decodeOutboxJob(v)
			if err != nil {
				return err
			}
			if dead := bytes.Equal(name, bucketDeadLetter); dead != !j.DeadAt.IsZero() {
				return fmt.Errorf("outbox job %s in %s with dead time %v: %w", j.ID, name, j.DeadAt, ErrCorrupt)
			}
			if bytes.Equal(name, bucketOutbox) {
				cnt.pending++
			} else {
				cnt.dead++
			}
			cnt.bytes += uint64(j.SampleBytes)
			samples, err := db.outboxSamplesTx(tx, j)
			if err != nil {
				return err
			}
			var n int64
			for i, s := range samples {
				n += int64(len(s))
				want[string(outboxSampleKey(j.ID, i))] = true
			}
			if n != j.SampleBytes {
				return fmt.Errorf("outbox job %s: %d sample bytes, record says %d: %w", j.ID, n, j.SampleBytes, ErrCorrupt)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	err := tx.Bucket(bucketOutboxSamples).ForEach(func(k, _ []byte) error {
		if !want[string(k)] {
			return fmt.Errorf("orphan outbox sample %x: %w", k, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if got := readOutboxCounters(tx); got != cnt {
		return fmt.Errorf("outbox counters %+v, counted %+v: %w", got, cnt, ErrCorrupt)
	}
	if _, err := readOutboxLimits(tx); err != nil {
		return err
	}
	return nil
}

// outboxSamplesTx opens a job's samples inside tx.
func (db *DB) outboxSamplesTx(tx *bolt.Tx, j OutboxJob) ([][]byte, error) {
	sb := tx.Bucket(bucketOutboxSamples)
	kr := db.keys.Load()
	out := make([][]byte, j.SampleCount)
	for i := range out {
		rec := sb.Get(outboxSampleKey(j.ID, i))
		if rec == nil {
			return nil, fmt.Errorf("outbox job %s sample %d: %w", j.ID, i, ErrNotFound)
		}
		pt, err := kr.open(rec, outboxSamplePath(j.ID, i))
		if err != nil {
			return nil, fmt.Errorf("outbox job %s: %w", j.ID, err)
		}
		out[i] = pt
	}
	return out, nil
}
