package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	bolt "go.etcd.io/bbolt"
)

var (
	classA = bws.BCID{Storage: "bws", Partition: 12, ClassID: 4711}
	classB = bws.BCID{Storage: "bws", Partition: 12, ClassID: 4712}
	classC = bws.BCID{Storage: "bws", Partition: 13, ClassID: 4711}
)

func tpl(id string, q float64, vec ...float32) Template {
	if len(vec) == 0 {
		vec = []float32{1, 2, 3}
	}
	return Template{ID: id, Model: "arcface", ModelVersion: "1", Vector: vec, Quality: q}
}

func ids(ts []Template) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestTemplates(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()

	if _, err := db.Templates(ctx, classA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Templates of an empty store = %v", err)
	}
	if ok, err := db.IsEnrolled(ctx, classA); ok || err != nil {
		t.Fatalf("IsEnrolled = %v, %v", ok, err)
	}

	n, err := db.AddTemplates(ctx, classA, tpl("a1", 0.5, 0.25, -1.5, 3e-8), tpl("a2", 0.9))
	if err != nil || n != 2 {
		t.Fatalf("AddTemplates = %d, %v", n, err)
	}
	clk.Add(time.Second)
	if _, err := db.AddTemplates(ctx, classB, tpl("", 0.7)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddTemplates(ctx, classC, tpl("c1", 0.7)); err != nil {
		t.Fatal(err)
	}

	ts, err := db.Templates(ctx, classA)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(ts), []string{"a2", "a1"}) {
		t.Fatalf("Templates order %v, want best first", ids(ts))
	}
	if a1 := ts[1]; !slices.Equal(a1.Vector, []float32{0.25, -1.5, 3e-8}) || a1.Model != "arcface" ||
		a1.ModelVersion != "1" || a1.Quality != 0.5 || !a1.Created.Equal(t0) || a1.Stale {
		t.Fatalf("template a1 = %+v", a1)
	}
	if ok, err := db.IsEnrolled(ctx, classA); !ok || err != nil {
		t.Fatalf("IsEnrolled = %v, %v", ok, err)
	}
	tb, err := db.Templates(ctx, classB)
	if err != nil || len(tb) != 1 || len(tb[0].ID) != 36 || !tb[0].Created.Equal(t0.Add(time.Second)) {
		t.Fatalf("generated id/created: %+v, %v", tb, err)
	}

	// 1:N walks one partition only.
	seen := map[int64][]string{}
	err = db.ForEachTemplate(ctx, "bws", 12, func(class int64, t Template) error {
		seen[class] = append(seen[class], t.ID)
		return nil
	})
	if err != nil || len(seen) != 2 || len(seen[4711]) != 2 || len(seen[4712]) != 1 {
		t.Fatalf("ForEachTemplate saw %v, %v", seen, err)
	}
	stop := errors.New("stop")
	if err := db.ForEachTemplate(ctx, "bws", 12, func(int64, Template) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("ForEachTemplate error = %v", err)
	}
	if err := db.ForEachTemplate(ctx, "none", 1, func(int64, Template) error { return stop }); err != nil {
		t.Fatalf("ForEachTemplate of an empty partition = %v", err)
	}

	counts := []struct {
		storage   string
		partition int
		want      TemplateCount
	}{
		{"bws", 12, TemplateCount{2, 3}},
		{"bws", 13, TemplateCount{1, 1}},
		{"bws", -1, TemplateCount{3, 4}},
		{"", 0, TemplateCount{3, 4}},
		{"none", -1, TemplateCount{}},
		{"bws", 99, TemplateCount{}},
	}
	for _, c := range counts {
		got, err := db.CountTemplates(ctx, c.storage, c.partition)
		if err != nil || got != c.want {
			t.Errorf("CountTemplates(%q, %d) = %+v, %v; want %+v", c.storage, c.partition, got, err, c.want)
		}
	}

	var infos []ClassInfo
	if err := db.ForEachClass(ctx, "", -1, func(ci ClassInfo) error { infos = append(infos, ci); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].BCID != classA || infos[0].Templates != 2 || !infos[0].Updated.Equal(t0) {
		t.Fatalf("ForEachClass = %+v", infos)
	}

	// Templates survive a restart.
	db = reopen(t, db, testOptions(clk))
	if ts2, err := db.Templates(ctx, classA); err != nil || !slices.EqualFunc(ts, ts2, templatesEqual) {
		t.Fatalf("after reopen: %+v, %v", ts2, err)
	}

	if err := db.DeleteClass(ctx, classA); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteClass(ctx, classA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteClass = %v", err)
	}
	if ok, _ := db.IsEnrolled(ctx, classA); ok {
		t.Fatal("enrolled after DeleteClass")
	}
	if _, err := db.Templates(ctx, classB); err != nil {
		t.Fatalf("DeleteClass touched another class: %v", err)
	}
}

func templatesEqual(a, b Template) bool {
	return a.ID == b.ID && a.Model == b.Model && a.ModelVersion == b.ModelVersion && slices.Equal(a.Vector, b.Vector) &&
		a.Quality == b.Quality && a.Created.Equal(b.Created) && a.Stale == b.Stale
}

func TestTemplateCap(t *testing.T) {
	clk := &clock{t: t0}
	opts := testOptions(clk)
	opts.MaxTemplatesPerClass = 3
	db := openAt(t, t.TempDir()+"/cap.db", opts)
	ctx := context.Background()

	if n, err := db.AddTemplates(ctx, classA, tpl("q5", 0.5), tpl("q1", 0.1), tpl("q9", 0.9)); err != nil || n != 3 {
		t.Fatalf("AddTemplates = %d, %v", n, err)
	}
	// A re-enrolment with two better and one worse template.
	if n, err := db.AddTemplates(ctx, classA, tpl("q7", 0.7), tpl("q8", 0.8), tpl("q0", 0.0)); err != nil || n != 3 {
		t.Fatalf("AddTemplates = %d, %v", n, err)
	}
	ts, err := db.Templates(ctx, classA)
	if err != nil || !slices.Equal(ids(ts), []string{"q9", "q8", "q7"}) {
		t.Fatalf("kept %v, %v", ids(ts), err)
	}
	// Same id replaces.
	if _, err := db.AddTemplates(ctx, classA, tpl("q7", 0.95)); err != nil {
		t.Fatal(err)
	}
	ts, _ = db.Templates(ctx, classA)
	if !slices.Equal(ids(ts), []string{"q7", "q9", "q8"}) || ts[0].Quality != 0.95 {
		t.Fatalf("after replace %v", ids(ts))
	}
	// Equal quality: the newer wins.
	clk.Add(time.Hour)
	if _, err := db.AddTemplates(ctx, classA, tpl("new", 0.8)); err != nil {
		t.Fatal(err)
	}
	ts, _ = db.Templates(ctx, classA)
	if !slices.Equal(ids(ts), []string{"q7", "q9", "new"}) {
		t.Fatalf("tie %v", ids(ts))
	}
}

func TestTemplateValidation(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	nan := float32(math.NaN())
	tests := []struct {
		name  string
		class bws.BCID
		t     Template
	}{
		{"bad class", bws.BCID{Storage: "b.s"}, tpl("x", 1)},
		{"negative class", bws.BCID{Storage: "bws", ClassID: -1}, tpl("x", 1)},
		{"empty vector", classA, Template{ID: "x", Model: "m", Vector: []float32{}}},
		{"long vector", classA, Template{ID: "x", Model: "m", Vector: make([]float32, MaxVectorLen+1)}},
		{"NaN in vector", classA, tpl("x", 1, 1, nan)},
		{"Inf quality", classA, tpl("x", math.Inf(1))},
		{"no model", classA, Template{ID: "x", Vector: []float32{1}}},
		{"id with slash", classA, tpl("a/b", 1)},
	}
	for _, tt := range tests {
		if _, err := db.AddTemplates(ctx, tt.class, tt.t); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: AddTemplates = %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, err := db.AddTemplates(ctx, classA); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddTemplates of nothing = %v", err)
	}
	if c, _ := db.CountTemplates(ctx, "", -1); c != (TemplateCount{}) {
		t.Errorf("invalid templates were stored: %+v", c)
	}
}

func TestMarkStale(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	old := tpl("old", 0.99)
	old.ModelVersion = "0"
	if _, err := db.AddTemplates(ctx, classA, old, tpl("cur", 0.5)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddTemplates(ctx, classC, old); err != nil {
		t.Fatal(err)
	}
	n, err := db.MarkStale(ctx, "arcface", "1")
	if err != nil || n != 2 {
		t.Fatalf("MarkStale = %d, %v", n, err)
	}
	if n, _ := db.MarkStale(ctx, "arcface", "1"); n != 0 {
		t.Fatalf("second MarkStale changed %d", n)
	}
	ts, _ := db.Templates(ctx, classA)
	// Stale sorts after current, whatever its quality.
	if !slices.Equal(ids(ts), []string{"cur", "old"}) || ts[0].Stale || !ts[1].Stale {
		t.Fatalf("after MarkStale %+v", ts)
	}
	var stale int
	db.ForEachClass(ctx, "bws", -1, func(ci ClassInfo) error { stale += ci.Stale; return nil })
	if stale != 2 {
		t.Fatalf("ForEachClass stale = %d", stale)
	}
	// Rolling the model back clears the flag.
	if n, _ := db.MarkStale(ctx, "arcface", "0"); n != 3 {
		t.Fatalf("rollback MarkStale changed %d", n)
	}
	if _, err := db.MarkStale(ctx, "", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("MarkStale without model = %v", err)
	}
}

// TestTemplatesEncryptedAtRest looks for the vector's bytes in the raw file.
func TestTemplatesEncryptedAtRest(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	vec := make([]float32, 128)
	for i := range vec {
		vec[i] = float32(i)*0.0137 + 0.5
	}
	tp := tpl("t1", 1, vec...)
	tp.Model = "very-distinctive-model-name"
	if _, err := db.AddTemplates(ctx, classA, tp); err != nil {
		t.Fatal(err)
	}
	ks, err := db.SigningKeys(ctx, "token")
	if err != nil {
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
	le := make([]byte, 0, 4*len(vec))
	be := make([]byte, 0, 4*len(vec))
	for _, v := range vec {
		le = binary.LittleEndian.AppendUint32(le, math.Float32bits(v))
		be = binary.BigEndian.AppendUint32(be, math.Float32bits(v))
	}
	for name, needle := range map[string][]byte{
		"vector (LE, 4 values)": le[16:32],
		"vector (BE, 4 values)": be[16:32],
		"model name":            []byte(tp.Model),
		"signing key":           ks.Current.Secret[:16],
	} {
		if bytes.Contains(raw, needle) {
			t.Errorf("plaintext %s found in the raw file", name)
		}
	}
	// The test would pass vacuously if nothing was written.
	if !bytes.Contains(raw, []byte("templates")) || len(raw) < 4*len(vec) {
		t.Fatal("the file does not hold the templates")
	}
}

// TestSealedRecordsBound checks that a sealed record moved to another class,
// or altered, does not open.
func TestSealedRecordsBound(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	if _, err := db.AddTemplates(ctx, classA, tpl("t1", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddTemplates(ctx, classB, tpl("t2", 1)); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	db.Close()

	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		a, b := classBucket(tx, classA), classBucket(tx, classB)
		rec := append([]byte(nil), a.Get([]byte("t1"))...)
		// The same id in another class.
		if err := b.Put([]byte("t1"), rec); err != nil {
			return err
		}
		// A flipped bit in place.
		rec[len(rec)-1] ^= 1
		return a.Put([]byte("t1"), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db = openAt(t, path, testOptions(clk))
	if _, err := db.Templates(ctx, classB); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped record: %v", err)
	}
	if _, err := db.Templates(ctx, classA); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("altered record: %v", err)
	}
	if err := db.Check(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check = %v", err)
	}
	// Leave a consistent file for the fixture's check.
	db.DeleteClass(ctx, classA)
	db.DeleteClass(ctx, classB)
}

func TestRotateEncryptionKey(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()
	if _, err := db.AddTemplates(ctx, classA, tpl("t1", 1), tpl("t2", 0.5)); err != nil {
		t.Fatal(err)
	}
	ks, err := db.SigningKeys(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.RotateEncryptionKey(ctx, testKey(2))
	if err != nil || n != 4 { // two templates, one signing key, the key check
		t.Fatalf("RotateEncryptionKey = %d, %v", n, err)
	}
	if ts, err := db.Templates(ctx, classA); err != nil || len(ts) != 2 {
		t.Fatalf("templates after rotation: %v", err)
	}
	opts := testOptions(clk)
	opts.EncryptionKey = testKey(2)
	db = reopen(t, db, opts)
	if ts, err := db.Templates(ctx, classA); err != nil || len(ts) != 2 {
		t.Fatalf("templates with the new key only: %v", err)
	}
	if ks2, err := db.SigningKeys(ctx, "token"); err != nil || !bytes.Equal(ks2.Current.Secret, ks.Current.Secret) {
		t.Fatalf("signing key after rotation: %v", err)
	}
	db.Close()
	if _, err := Open(db.Path(), testOptions(clk)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with the old key = %v", err)
	}
	if _, err := db.RotateEncryptionKey(ctx, []byte("short")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
}

func TestTemplateCodec(t *testing.T) {
	in := Template{ID: "x", Model: "m", ModelVersion: "v", Vector: []float32{1, -0.5, float32(math.Copysign(0, -1))},
		Quality: 0.25, Created: t0, Stale: true}
	b := encodeTemplate(in)
	out, err := decodeTemplate(b)
	if err != nil || !templatesEqual(in, out) {
		t.Fatalf("round trip %+v, %v", out, err)
	}
	for i := range b {
		if _, err := decodeTemplate(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := decodeTemplate(append(b, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatal("trailing byte accepted")
	}
}

// BenchmarkForEachTemplate measures reading a partition for 1:N search
// (open, decrypt, decode): 1,000 classes of one 512-d template.
func BenchmarkForEachTemplate(b *testing.B) {
	clk := &clock{t: t0}
	db := openAt(b, b.TempDir()+"/bench.db", testOptions(clk))
	ctx := context.Background()
	vec := make([]float32, 512)
	for i := range vec {
		vec[i] = float32(i) / 512
	}
	const classes = 1000
	for c := int64(0); c < classes; c++ {
		if _, err := db.AddTemplates(ctx, bws.BCID{Storage: "bws", Partition: 1, ClassID: c}, tpl("t", 1, vec...)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		n := 0
		err := db.ForEachTemplate(ctx, "bws", 1, func(int64, Template) error { n++; return nil })
		if err != nil || n != classes {
			b.Fatalf("%d templates, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/classes, "ns/template")
}
