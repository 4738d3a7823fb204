package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// Template is one face template (an embedding) of a class.
type Template struct {
	ID           string // unique in its class; generated when empty
	Model        string // embedding model id
	ModelVersion string
	Vector       []float32
	Quality      float64 // higher is better; the per-class cap keeps the best
	Created      time.Time
	// Stale marks a template made by another model than the current one
	// (MarkStale). Stale templates cannot be compared with new probes; the
	// class needs a re-enrolment.
	Stale bool
}

// Bounds of a template record.
const (
	MaxVectorLen     = 4096
	maxTemplateIDLen = 64
	maxModelLen      = 128
)

func (t *Template) validate() error {
	if err := checkID("template id", t.ID, maxTemplateIDLen); err != nil {
		return err
	}
	for _, s := range []string{t.Model, t.ModelVersion} {
		if len(s) > maxModelLen || !utf8.ValidString(s) {
			return fmt.Errorf("template model: %w", ErrInvalid)
		}
	}
	if t.Model == "" {
		return fmt.Errorf("template without model: %w", ErrInvalid)
	}
	if len(t.Vector) == 0 || len(t.Vector) > MaxVectorLen {
		return fmt.Errorf("template vector of %d values (1..%d): %w", len(t.Vector), MaxVectorLen, ErrInvalid)
	}
	for _, v := range t.Vector {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("template vector not finite: %w", ErrInvalid)
		}
	}
	if math.IsNaN(t.Quality) || math.IsInf(t.Quality, 0) {
		return fmt.Errorf("template quality not finite: %w", ErrInvalid)
	}
	return nil
}

// Template record (before sealing), version 1:
//
//	1 | uvarint len, ID | uvarint len, Model | uvarint len, ModelVersion |
//	quality float64 (8, BE bits) | created unix ns (8, BE) | flags (1: bit 0 stale) |
//	uvarint n | n float32 (4 each, LE bits)
const templateFormat = 1

func encodeTemplate(t Template) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(t.ID)+len(t.Model)+len(t.ModelVersion)+17+binary.MaxVarintLen64+4*len(t.Vector))
	b = append(b, templateFormat)
	for _, s := range []string{t.ID, t.Model, t.ModelVersion} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(t.Quality))
	b = binary.BigEndian.AppendUint64(b, uint64(t.Created.UnixNano()))
	var flags byte
	if t.Stale {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(t.Vector)))
	for _, v := range t.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// decodeTemplate decodes and validates a record; it never trusts lengths.
func decodeTemplate(b []byte) (Template, error) {
	bad := func(what string) (Template, error) {
		return Template{}, fmt.Errorf("template record: %s: %w", what, ErrCorrupt)
	}
	if len(b) == 0 || b[0] != templateFormat {
		return bad("format")
	}
	b = b[1:]
	var strs [3]string
	for i, max := range []int{maxTemplateIDLen, maxModelLen, maxModelLen} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(max) || n > uint64(len(b)-k) {
			return bad("string length")
		}
		strs[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) < 17 {
		return bad("short")
	}
	t := Template{ID: strs[0], Model: strs[1], ModelVersion: strs[2]}
	t.Quality = math.Float64frombits(binary.BigEndian.Uint64(b))
	t.Created = time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))).UTC()
	if b[16]&^1 != 0 {
		return bad("flags")
	}
	t.Stale = b[16]&1 != 0
	b = b[17:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > MaxVectorLen || uint64(len(b)-k) != 4*n {
		return bad("vector length")
	}
	b = b[k:]
	t.Vector = make([]float32, n)
	for i := range t.Vector {
		t.Vector[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	if err := t.validate(); err != nil {
		return Template{}, fmt.Errorf("template record: %w: %w", ErrCorrupt, err)
	}
	return t, nil
}

// templatePath is the associated data binding a sealed template to its
// class and id.
func templatePath(c bws.BCID, id string) []byte {
	return []byte("templates/" + c.Storage + "/" + strconv.Itoa(c.Partition) + "/" +
		strconv.FormatInt(c.ClassID, 10) + "/" + id)
}

func partitionKey(p int) []byte { return u32(uint32(p)) }
func classKey(c int64) []byte   { return u64(uint64(c)) }

// partitionBucket returns templates/<storage>/<partition>, or nil.
func partitionBucket(tx *bolt.Tx, storage string, partition int) *bolt.Bucket {
	s := tx.Bucket(bucketTemplates).Bucket([]byte(storage))
	if s == nil {
		return nil
	}
	return s.Bucket(partitionKey(partition))
}

// classBucket returns the class's bucket, or nil.
func classBucket(tx *bolt.Tx, c bws.BCID) *bolt.Bucket {
	p := partitionBucket(tx, c.Storage, c.Partition)
	if p == nil {
		return nil
	}
	return p.Bucket(classKey(c.ClassID))
}

func createClassBucket(tx *bolt.Tx, c bws.BCID) (*bolt.Bucket, error) {
	s, err := tx.Bucket(bucketTemplates).CreateBucketIfNotExists([]byte(c.Storage))
	if err != nil {
		return nil, err
	}
	p, err := s.CreateBucketIfNotExists(partitionKey(c.Partition))
	if err != nil {
		return nil, err
	}
	return p.CreateBucketIfNotExists(classKey(c.ClassID))
}

// readClass opens every template of a class bucket.
func (db *DB) readClass(c bws.BCID, b *bolt.Bucket) ([]Template, error) {
	kr := db.keys.Load()
	var ts []Template
	err := b.ForEach(func(id, rec []byte) error {
		pt, err := kr.open(rec, templatePath(c, string(id)))
		if err != nil {
			return err
		}
		t, err := decodeTemplate(pt)
		if err != nil {
			return err
		}
		if t.ID != string(id) {
			return fmt.Errorf("template %q under %q: %w", t.ID, id, ErrCorrupt)
		}
		ts = append(ts, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: class %v: %w", c, err)
	}
	return ts, nil
}

func (db *DB) putTemplate(b *bolt.Bucket, c bws.BCID, t Template) error {
	rec, err := db.keys.Load().seal(db.rand, encodeTemplate(t), templatePath(c, t.ID))
	if err != nil {
		return fmt.Errorf("store: seal template: %w", err)
	}
	return b.Put([]byte(t.ID), rec)
}

// better orders templates best first: current before stale, then higher
// quality, then newer.
func better(a, b Template) int {
	switch {
	case a.Stale != b.Stale:
		if !a.Stale {
			return -1
		}
		return 1
	case a.Quality != b.Quality:
		if a.Quality > b.Quality {
			return -1
		}
		return 1
	}
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	if a.ID < b.ID {
		return -1
	}
	if a.ID > b.ID {
		return 1
	}
	return 0
}

// AddTemplates adds templates to a class, creating it, and then trims the
// class to Options.MaxTemplatesPerClass keeping the best (see Template).
// A template with the ID of an existing one replaces it. Empty IDs are
// generated, zero Created is now. It returns the number of templates the
// class holds afterwards.
func (db *DB) AddTemplates(ctx context.Context, class bws.BCID, ts ...Template) (int, error) {
	add, err := db.prepareTemplates(class, ts)
	if err != nil {
		return 0, err
	}
	var n int
	err = db.update(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = db.addTemplatesTx(tx, class, add)
		return err
	})
	return n, err
}

// prepareTemplates validates templates and fills in ids and times, outside
// the transaction.
func (db *DB) prepareTemplates(class bws.BCID, ts []Template) ([]Template, error) {
	if err := class.Validate(); err != nil {
		return nil, fmt.Errorf("store: add templates: %w: %w", ErrInvalid, err)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("store: add templates: none given: %w", ErrInvalid)
	}
	now := db.now().UTC()
	add := make([]Template, len(ts))
	for i, t := range ts {
		t.Vector = slices.Clone(t.Vector)
		if t.ID == "" {
			id, err := uuid.NewRandomFromReader(db.rand)
			if err != nil {
				return nil, fmt.Errorf("store: template id: %w", err)
			}
			t.ID = id.String()
		}
		if t.Created.IsZero() {
			t.Created = now
		}
		t.Created = t.Created.UTC()
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("store: add templates: %w", err)
		}
		add[i] = t
	}
	return add, nil
}

// addTemplatesTx is AddTemplates inside tx, for prepared templates.
func (db *DB) addTemplatesTx(tx *bolt.Tx, class bws.BCID, add []Template) (int, error) {
	b, err := createClassBucket(tx, class)
	if err != nil {
		return 0, err
	}
	old, err := db.readClass(class, b)
	if err != nil {
		return 0, err
	}
	all := make(map[string]Template, len(old)+len(add))
	for _, t := range old {
		all[t.ID] = t
	}
	for _, t := range add {
		all[t.ID] = t
	}
	sorted := slices.SortedFunc(func(yield func(Template) bool) {
		for _, t := range all {
			if !yield(t) {
				return
			}
		}
	}, better)
	keep := sorted[:min(len(sorted), db.maxPerClass)]
	kept := make(map[string]bool, len(keep))
	for _, t := range keep {
		kept[t.ID] = true
	}
	for _, t := range old {
		if !kept[t.ID] {
			if err := b.Delete([]byte(t.ID)); err != nil {
				return 0, err
			}
		}
	}
	for _, t := range add {
		if kept[t.ID] {
			if err := db.putTemplate(b, class, t); err != nil {
				return 0, err
			}
		}
	}
	return len(keep), nil
}

// Templates returns the templates of a class, best first, or ErrNotFound
// when the class has none.
func (db *DB) Templates(ctx context.Context, class bws.BCID) ([]Template, error) {
	var ts []Template
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := classBucket(tx, class)
		if b == nil {
			return fmt.Errorf("store: class %v: %w", class, ErrNotFound)
		}
		var err error
		ts, err = db.readClass(class, b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("store: class %v: %w", class, ErrNotFound)
	}
	slices.SortFunc(ts, better)
	return ts, nil
}

// IsEnrolled reports whether the class has templates.
func (db *DB) IsEnrolled(ctx context.Context, class bws.BCID) (bool, error) {
	var ok bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if b := classBucket(tx, class); b != nil {
			k, _ := b.Cursor().First()
			ok = k != nil
		}
		return nil
	})
	return ok, err
}

// ForEachTemplate calls fn for every template of a storage partition, class
// by class (for 1:N identification and for loading a search index). fn
// runs inside a read transaction: it must not call other DB methods that
// write. An error from fn stops the walk and is returned.
func (db *DB) ForEachTemplate(ctx context.Context, storage string, partition int, fn func(classID int64, t Template) error) error {
	return db.view(ctx, func(tx *bolt.Tx) error {
		p := partitionBucket(tx, storage, partition)
		if p == nil {
			return nil
		}
		return p.ForEachBucket(func(k []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(k) != 8 {
				return fmt.Errorf("store: class key %x: %w", k, ErrCorrupt)
			}
			c := bws.BCID{Storage: storage, Partition: partition, ClassID: int64(binary.BigEndian.Uint64(k))}
			ts, err := db.readClass(c, p.Bucket(k))
			if err != nil {
				return err
			}
			for _, t := range ts {
				if err := fn(c.ClassID, t); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// DeleteClass removes a class and all its templates, or returns
// ErrNotFound.
func (db *DB) DeleteClass(ctx context.Context, class bws.BCID) error {
	return db.update(ctx, func(tx *bolt.Tx) error { return deleteClassTx(tx, class) })
}

func deleteClassTx(tx *bolt.Tx, class bws.BCID) error {
	p := partitionBucket(tx, class.Storage, class.Partition)
	if p == nil || p.Bucket(classKey(class.ClassID)) == nil {
		return fmt.Errorf("store: delete class %v: %w", class, ErrNotFound)
	}
	return p.DeleteBucket(classKey(class.ClassID))
}

// TemplateCount counts classes and templates.
type TemplateCount struct {
	Classes   int
	Templates int
}

// CountTemplates counts the templates of one storage partition, of a whole
// storage when partition < 0, or of the whole store when storage is "". It
// reads no template, so it is cheap.
func (db *DB) CountTemplates(ctx context.Context, storage string, partition int) (TemplateCount, error) {
	var n TemplateCount
	countPartition := func(p *bolt.Bucket) error {
		return p.ForEachBucket(func(k []byte) error {
			n.Classes++
			n.Templates += p.Bucket(k).Stats().KeyN
			return nil
		})
	}
	countStorage := func(s *bolt.Bucket) error {
		if partition >= 0 {
			if p := s.Bucket(partitionKey(partition)); p != nil {
				return countPartition(p)
			}
			return nil
		}
		return s.ForEachBucket(func(k []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return countPartition(s.Bucket(k))
		})
	}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketTemplates)
		if storage != "" {
			if s := root.Bucket([]byte(storage)); s != nil {
				return countStorage(s)
			}
			return nil
		}
		partition = -1
		return root.ForEachBucket(func(k []byte) error {
			return countStorage(root.Bucket(k))
		})
	})
	return n, err
}

// ClassInfo summarizes a class for listings.
type ClassInfo struct {
	BCID      bws.BCID
	Templates int
	Stale     int
	Updated   time.Time // Created of the newest template
}

// ForEachClass calls fn for every class of a storage partition (partition
// < 0: every partition of the storage; storage "": everything). fn runs
// inside a read transaction.
func (db *DB) ForEachClass(ctx context.Context, storage string, partition int, fn func(ClassInfo) error) error {
	return db.view(ctx, func(tx *bolt.Tx) error {
		return db.walkClasses(ctx, tx, storage, partition, func(c bws.BCID, b *bolt.Bucket) error {
			ts, err := db.readClass(c, b)
			if err != nil {
				return err
			}
			info := ClassInfo{BCID: c, Templates: len(ts)}
			for _, t := range ts {
				if t.Stale {
					info.Stale++
				}
				if t.Created.After(info.Updated) {
					info.Updated = t.Created
				}
			}
			return fn(info)
		})
	})
}

// walkClasses visits class buckets under the given scope.
func (db *DB) walkClasses(ctx context.Context, tx *bolt.Tx, storage string, partition int, fn func(bws.BCID, *bolt.Bucket) error) error {
	root := tx.Bucket(bucketTemplates)
	return root.ForEachBucket(func(sk []byte) error {
		if storage != "" && string(sk) != storage {
			return nil
		}
		s := root.Bucket(sk)
		return s.ForEachBucket(func(pk []byte) error {
			if len(pk) != 4 {
				return fmt.Errorf("store: partition key %x: %w", pk, ErrCorrupt)
			}
			part := int(binary.BigEndian.Uint32(pk))
			if partition >= 0 && part != partition {
				return nil
			}
			p := s.Bucket(pk)
			return p.ForEachBucket(func(ck []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if len(ck) != 8 {
					return fmt.Errorf("store: class key %x: %w", ck, ErrCorrupt)
				}
				c := bws.BCID{Storage: string(sk), Partition: part, ClassID: int64(binary.BigEndian.Uint64(ck))}
				return fn(c, p.Bucket(ck))
			})
		})
	})
}

// MarkStale flags every template made by another model than model/version
// as stale, and clears the flag on templates of that model (after a
// rollback). It returns how many templates changed.
func (db *DB) MarkStale(ctx context.Context, model, version string) (int, error) {
	if model == "" {
		return 0, fmt.Errorf("store: mark stale: no model: %w", ErrInvalid)
	}
	var n int
	err := db.update(ctx, func(tx *bolt.Tx) error {
		return db.walkClasses(ctx, tx, "", -1, func(c bws.BCID, b *bolt.Bucket) error {
			ts, err := db.readClass(c, b)
			if err != nil {
				return err
			}
			// Writes happen after the class's cursor is done.
			for _, t := range ts {
				stale := t.Model != model || t.ModelVersion != version
				if stale == t.Stale {
					continue
				}
				t.Stale = stale
				if err := db.putTemplate(b, c, t); err != nil {
					return err
				}
				n++
			}
			return nil
		})
	})
	return n, err
}
