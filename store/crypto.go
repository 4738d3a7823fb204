package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
)

// A sealed record is
//
//	format (1) | key id (4) | nonce (12) | AES-256-GCM ciphertext and tag
//
// sealed with associated data format | key id | path, where path names the
// record's place in the file (bucket path and key). Opening a record under
// another path fails, so a record copied to another class does not open.
// Nonces are random: with 2^32 records per key the collision risk stays
// below NIST's bound, and keys rotate long before that.
const (
	sealFormat   = 1
	sealIDLen    = 4
	sealNonceLen = 12
	sealHeader   = 1 + sealIDLen + sealNonceLen
	sealOverhead = sealHeader + 16
)

type keyID [sealIDLen]byte

type keyring struct {
	current keyID
	aeads   map[keyID]cipher.AEAD
}

// newKeyring builds the ciphers for the current and previous keys.
func newKeyring(current []byte, previous [][]byte) (*keyring, error) {
	if len(current) != KeySize {
		return nil, fmt.Errorf("'EncryptionKey' must be %d bytes, got %d: %w", KeySize, len(current), ErrInvalid)
	}
	kr := &keyring{aeads: make(map[keyID]cipher.AEAD, 1+len(previous))}
	for i, k := range append([][]byte{current}, previous...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("'PreviousEncryptionKeys' must hold %d-byte keys: %w", KeySize, ErrInvalid)
		}
		id := idOf(k)
		if i == 0 {
			kr.current = id
		}
		if _, dup := kr.aeads[id]; dup {
			continue // the same key given twice
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("encryption key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encryption key: %w", err)
		}
		kr.aeads[id] = aead
	}
	return kr, nil
}

// idOf names a key without revealing it: a prefix of a domain-separated
// SHA-256 of a random 256-bit key gives nothing away.
func idOf(key []byte) keyID {
	h := sha256.New()
	h.Write([]byte("bwsagent store key id\x00"))
	h.Write(key)
	var id keyID
	copy(id[:], h.Sum(nil))
	return id
}

// seal encrypts plaintext for the record at path with the current key.
func (kr *keyring) seal(random io.Reader, plaintext, path []byte) ([]byte, error) {
	aead := kr.aeads[kr.current]
	out := make([]byte, sealHeader, sealHeader+len(plaintext)+aead.Overhead())
	out[0] = sealFormat
	copy(out[1:], kr.current[:])
	if _, err := io.ReadFull(random, out[1+sealIDLen:sealHeader]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(out, out[1+sealIDLen:sealHeader], plaintext, aad(out[:1+sealIDLen], path)), nil
}

// open decrypts a record sealed for path. A record sealed with a key not in
// the ring is ErrWrongKey; any other failure is ErrCorrupt.
func (kr *keyring) open(rec, path []byte) ([]byte, error) {
	if len(rec) < sealOverhead || rec[0] != sealFormat {
		return nil, fmt.Errorf("sealed record %q: %w", path, ErrCorrupt)
	}
	var id keyID
	copy(id[:], rec[1:])
	aead, ok := kr.aeads[id]
	if !ok {
		return nil, fmt.Errorf("sealed record %q: key %x: %w", path, id[:], ErrWrongKey)
	}
	pt, err := aead.Open(nil, rec[1+sealIDLen:sealHeader], rec[sealHeader:], aad(rec[:1+sealIDLen], path))
	if err != nil {
		return nil, fmt.Errorf("sealed record %q: %w", path, ErrCorrupt)
	}
	return pt, nil
}

// sealedWithCurrent reports whether rec was sealed with the current key.
func (kr *keyring) sealedWithCurrent(rec []byte) bool {
	return len(rec) >= sealHeader && bytes.Equal(rec[1:1+sealIDLen], kr.current[:])
}

func aad(header, path []byte) []byte {
	a := make([]byte, 0, len(header)+len(path))
	return append(append(a, header...), path...)
}

// withCurrent returns a ring that seals with key and still opens
// everything kr opens.
func (kr *keyring) withCurrent(key []byte) (*keyring, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("new key must be %d bytes: %w", KeySize, ErrInvalid)
	}
	id := idOf(key)
	nk := &keyring{current: id, aeads: maps.Clone(kr.aeads)}
	if _, ok := nk.aeads[id]; !ok {
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		nk.aeads[id] = aead
	}
	return nk, nil
}
