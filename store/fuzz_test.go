package store

import (
	"encoding/json"
	"errors"
	"testing"
)

// The decoders read bytes from the file; a damaged or hostile file must
// give ErrCorrupt, never a panic or a huge allocation.

func FuzzDecodeTemplate(f *testing.F) {
	f.Add(encodeTemplate(Template{ID: "t", Model: "m", ModelVersion: "1", Vector: []float32{1, 2}, Quality: 0.5, Created: t0}))
	f.Add(encodeTemplate(Template{ID: "t", Model: "m", Vector: []float32{0}, Stale: true}))
	f.Add([]byte{templateFormat})
	f.Add([]byte{templateFormat, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, err := decodeTemplate(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if err := tp.validate(); err != nil {
			t.Fatalf("decoded an invalid template: %v", err)
		}
		again, err := decodeTemplate(encodeTemplate(tp))
		if err != nil || !templatesEqual(tp, again) {
			t.Fatalf("round trip: %+v vs %+v, %v", tp, again, err)
		}
	})
}

func FuzzDecodeApp(f *testing.F) {
	hash := HashParams{Time: 1, MemoryKiB: 64, Threads: 1}.dummy()
	good, _ := encodeApp(App{ID: "a", Name: "n", SecretHash: hash, Storage: "bws", Partitions: []int{1, 2}, Created: t0})
	f.Add(good)
	f.Add([]byte(`{"id":"a","storage":"bws","partitions":[-1],"secret_hash":"` + hash + `"}`))
	f.Add([]byte(`{"id":"a","storage":"bws","partitions":[3,1,3],"secret_hash":"` + hash + `"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeApp(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if err := a.validate(); err != nil {
			t.Fatalf("decoded an invalid app: %v", err)
		}
		for i := 1; i < len(a.Partitions); i++ {
			if a.Partitions[i-1] >= a.Partitions[i] {
				t.Fatalf("partitions not normalized: %v", a.Partitions)
			}
		}
	})
}

func FuzzDecodeKey(f *testing.F) {
	good, _ := json.Marshal(keyRecord{ID: "0123456789abcdef", Secret: make([]byte, 32), Created: t0})
	f.Add(good)
	f.Add([]byte(`{"id":"zz23456789abcdef","secret":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeKey(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(k.Secret) != keySecretLen || len(k.ID) != 2*keyIDLen {
			t.Fatalf("decoded key %+v", k)
		}
	})
}

func FuzzDecodeTokenState(f *testing.F) {
	good, _ := encodeTokenState(TokenState{ID: tokenID, TriesUsed: 2, Result: json.RawMessage(`{"Success":true}`), Expires: t0})
	f.Add(good)
	f.Add([]byte(`{"id":"x","tries":99}`))
	f.Add([]byte(`{"id":"x","result":{"a":[1,2,{}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeTokenState(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if s.TriesUsed < 0 || s.TriesUsed > 15 || (s.Result != nil && !json.Valid(s.Result)) {
			t.Fatalf("decoded state %+v", s)
		}
		enc, err := encodeTokenState(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeTokenState(enc); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzDecodeAudit(f *testing.F) {
	f.Add(uint64(1), []byte(`{"t":"2025-05-06T07:08:09Z","app":"a","act":"enrollment","res":"success"}`))
	f.Add(uint64(0), []byte(`{"t":"not a time"}`))
	f.Fuzz(func(t *testing.T, seq uint64, v []byte) {
		e, err := decodeAudit(u64(seq), v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if e.Seq != seq {
			t.Fatalf("seq %d, want %d", e.Seq, seq)
		}
		if _, err := decodeAudit(u64(seq)[:7], v); err == nil {
			t.Fatal("short key accepted")
		}
	})
}

// FuzzOpenSealed feeds arbitrary records to the AES-GCM opener: only a
// record sealed for that path opens.
func FuzzOpenSealed(f *testing.F) {
	kr, err := newKeyring(testKey(1), [][]byte{testKey(2)})
	if err != nil {
		f.Fatal(err)
	}
	zero := zeroReader{}
	sealed, _ := kr.seal(zero, []byte("plaintext"), []byte("templates/bws/1/2/t"))
	f.Add(sealed, []byte("templates/bws/1/2/t"))
	f.Add(sealed, []byte("templates/bws/1/3/t"))
	f.Add([]byte{sealFormat, 1, 2, 3, 4}, []byte("p"))
	f.Fuzz(func(t *testing.T, rec, path []byte) {
		pt, err := kr.open(rec, path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongKey) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrWrongKey", err)
			}
			return
		}
		// Anything that opens must have been sealed by us: the seed.
		if string(pt) != "plaintext" || string(path) != "templates/bws/1/2/t" {
			t.Fatalf("forged record opened: %q for %q", pt, path)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
