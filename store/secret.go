package store

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashParams is the argon2id cost of app secret hashes.
type HashParams struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultHashParams follows OWASP's argon2id minimum (19 MiB, 2 passes, 1
// thread): an app authenticates on every call, on a small kiosk machine.
// Secrets are 256-bit random strings, so the hash guards a leaked file, not
// guessable passwords.
func DefaultHashParams() HashParams {
	return HashParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}
}

// Bounds applied to parameters read back from a hash, so a tampered record
// cannot make authentication allocate gigabytes.
const (
	maxHashMemoryKiB = 256 * 1024
	maxHashTime      = 16
	saltLen          = 16
	hashLen          = 32
	secretLen        = 32   // random bytes in a generated secret
	maxSecretLen     = 1024 // longest secret Authenticate will hash
)

func (p HashParams) withDefaults() HashParams {
	d := DefaultHashParams()
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	return p
}

func (p HashParams) validate() error {
	if p.Time < 1 || p.Time > maxHashTime || p.MemoryKiB < 8*uint32(p.Threads) ||
		p.MemoryKiB > maxHashMemoryKiB || p.Threads < 1 {
		return fmt.Errorf("argon2id t=%d m=%d p=%d out of range: %w", p.Time, p.MemoryKiB, p.Threads, ErrInvalid)
	}
	return nil
}

// hashSecret returns a PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func (p HashParams) hashSecret(random io.Reader, secret string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(random, salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	sum := argon2.IDKey([]byte(secret), salt, p.Time, p.MemoryKiB, p.Threads, hashLen)
	return p.encode(salt, sum), nil
}

func (p HashParams) encode(salt, sum []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// dummy is a well-formed hash no secret matches in practice, verified for
// unknown app ids so that they cost as much as known ones.
func (p HashParams) dummy() string {
	return p.encode(make([]byte, saltLen), make([]byte, hashLen))
}

var errBadHash = errors.New("malformed secret hash")

// parseHash reads a PHC argon2id string within our bounds.
func parseHash(s string) (p HashParams, salt, sum []byte, err error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadHash
	}
	var threads uint32
	if n, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &threads); err != nil || n != 3 {
		return p, nil, nil, errBadHash
	}
	if threads < 1 || threads > 255 {
		return p, nil, nil, errBadHash
	}
	p.Threads = uint8(threads)
	// Sscanf accepts trailing junk and other spellings; require ours.
	if f[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Time, p.Threads) || p.validate() != nil {
		return p, nil, nil, errBadHash
	}
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(f[4]); err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errBadHash
	}
	if sum, err = base64.RawStdEncoding.Strict().DecodeString(f[5]); err != nil || len(sum) < 16 || len(sum) > 64 {
		return p, nil, nil, errBadHash
	}
	return p, salt, sum, nil
}

// verifySecret compares in constant time.
func verifySecret(hash, secret string) bool {
	p, salt, sum, err := parseHash(hash)
	if err != nil || len(secret) > maxSecretLen {
		return false
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(sum)))
	return subtle.ConstantTimeCompare(got, sum) == 1
}

// newSecret returns a random app secret: 32 bytes, base64url (43 chars), so
// it fits Basic auth without escaping.
func newSecret(random io.Reader) (string, error) {
	b := make([]byte, secretLen)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
