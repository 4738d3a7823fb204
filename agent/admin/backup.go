package admin

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/store"
)

// A backup file is the store's bbolt snapshot encrypted with a key derived
// from the template key, so that the app list and the audit log are as
// private as the (already sealed) templates:
//
//	header  "BWSBAK01" | key id (8 bytes) | salt (32 bytes)
//	chunks  flag (1: last, else 0) | length (uint32 BE) | AES-256-GCM ciphertext
//
// The chunk key is HKDF-SHA256(template key, salt); chunk i's nonce is i
// (8 bytes BE), three zero bytes and the flag; the header, flag and length
// are associated data. Reordered, dropped or appended chunks and a missing
// last chunk fail authentication.
const (
	backupMagic    = "BWSBAK01"
	backupIDLen    = 8
	backupSaltLen  = 32
	backupHeader   = len(backupMagic) + backupIDLen + backupSaltLen
	backupChunk    = 64 << 10
	backupOverhead = 16 // GCM tag
)

// ErrBackup: a backup file is damaged, truncated or not a backup.
var ErrBackup = errors.New("bad backup file")

// backupKeyID names a template key without revealing it.
func backupKeyID(key []byte) []byte {
	h := sha256.Sum256(append([]byte("bwsagent backup key id\x00"), key...))
	return h[:backupIDLen]
}

func backupAEAD(key, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key, salt, "bwsagent backup v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func chunkNonce(i uint64, last bool) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n, i)
	if last {
		n[11] = 1
	}
	return n
}

func chunkAAD(header []byte, last bool, length uint32) []byte {
	a := append(bytes.Clone(header), 0, 0, 0, 0, 0)
	if last {
		a[len(header)] = 1
	}
	binary.BigEndian.PutUint32(a[len(header)+1:], length)
	return a
}

// sealWriter encrypts a stream into chunks.
type sealWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	header []byte
	buf    []byte
	i      uint64
}

func newSealWriter(w io.Writer, key []byte) (*sealWriter, error) {
	header := make([]byte, backupHeader)
	copy(header, backupMagic)
	copy(header[len(backupMagic):], backupKeyID(key))
	if _, err := io.ReadFull(rand.Reader, header[len(backupMagic)+backupIDLen:]); err != nil {
		return nil, err
	}
	aead, err := backupAEAD(key, header[len(backupMagic)+backupIDLen:])
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(header); err != nil {
		return nil, err
	}
	return &sealWriter{w: w, aead: aead, header: header, buf: make([]byte, 0, backupChunk)}, nil
}

func (s *sealWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), backupChunk-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(s.buf) == backupChunk {
			if err := s.flush(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (s *sealWriter) flush(last bool) error {
	length := uint32(len(s.buf) + backupOverhead)
	aad := chunkAAD(s.header, last, length)
	out := make([]byte, 5, 5+int(length))
	copy(out, aad[len(s.header):])
	out = s.aead.Seal(out, chunkNonce(s.i, last), s.buf, aad)
	s.i++
	s.buf = s.buf[:0]
	_, err := s.w.Write(out)
	return err
}

// Close writes the last chunk.
func (s *sealWriter) Close() error { return s.flush(true) }

// openReader decrypts a backup stream.
type openReader struct {
	r      io.Reader
	aead   cipher.AEAD
	header []byte
	i      uint64
	buf    []byte // decrypted, not yet read
	done   bool
}

// readBackupHeader reads the header and returns the key id.
func readBackupHeader(r io.Reader) (header []byte, err error) {
	header = make([]byte, backupHeader)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, fmt.Errorf("%w: no header: %w", ErrBackup, err)
	}
	if string(header[:len(backupMagic)]) != backupMagic {
		return nil, fmt.Errorf("%w: not a bwsagent backup (made by 'bwsagent backup')", ErrBackup)
	}
	return header, nil
}

func newOpenReader(r io.Reader, header, key []byte) (*openReader, error) {
	aead, err := backupAEAD(key, header[len(backupMagic)+backupIDLen:])
	if err != nil {
		return nil, err
	}
	return &openReader{r: r, aead: aead, header: header}, nil
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.buf) == 0 {
		if o.done {
			return 0, io.EOF
		}
		if err := o.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, o.buf)
	o.buf = o.buf[n:]
	return n, nil
}

func (o *openReader) next() error {
	var h [5]byte
	if _, err := io.ReadFull(o.r, h[:]); err != nil {
		return fmt.Errorf("%w: truncated (chunk %d): %w", ErrBackup, o.i, err)
	}
	last := h[0] == 1
	length := binary.BigEndian.Uint32(h[1:])
	if h[0] > 1 || length < backupOverhead || length > backupChunk+backupOverhead {
		return fmt.Errorf("%w: chunk %d has a bad header", ErrBackup, o.i)
	}
	ct := make([]byte, length)
	if _, err := io.ReadFull(o.r, ct); err != nil {
		return fmt.Errorf("%w: truncated (chunk %d): %w", ErrBackup, o.i, err)
	}
	pt, err := o.aead.Open(ct[:0], chunkNonce(o.i, last), ct, chunkAAD(o.header, last, length))
	if err != nil {
		return fmt.Errorf("%w: chunk %d does not authenticate (damaged, or another key)", ErrBackup, o.i)
	}
	o.i++
	o.buf = pt
	if last {
		o.done = true
		var b [1]byte
		if n, _ := io.ReadFull(o.r, b[:]); n > 0 {
			return fmt.Errorf("%w: data after the last chunk", ErrBackup)
		}
	}
	return nil
}

// WriteBackup writes an encrypted snapshot of db to w under key (the
// current template key) and returns the snapshot's size. The snapshot is
// one read transaction: consistent while the agent keeps serving.
func WriteBackup(ctx context.Context, w io.Writer, db *store.DB, key []byte) (int64, error) {
	sw, err := newSealWriter(w, key)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	n, err := db.Backup(ctx, sw)
	if err != nil {
		return n, err
	}
	if err := sw.Close(); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// OpenBackup checks a backup's header against keys and returns the
// decrypted snapshot stream; reading it authenticates every chunk.
func OpenBackup(r io.Reader, keys config.Keys) (io.Reader, error) {
	header, err := readBackupHeader(r)
	if err != nil {
		return nil, err
	}
	id := header[len(backupMagic) : len(backupMagic)+backupIDLen]
	for _, k := range append([][]byte{keys.Current}, keys.Previous...) {
		if bytes.Equal(backupKeyID(k), id) {
			return newOpenReader(r, header, k)
		}
	}
	return nil, fmt.Errorf("%w: sealed with another template key (id %s) than the configured one (id %s); "+
		"restore with the key file of the backed-up device ('templateKeyFile')",
		ErrBackup, hex.EncodeToString(id), hex.EncodeToString(backupKeyID(keys.Current)))
}

// Restore replaces the store of cfg (resolved) with the backup read from r.
// The agent must be stopped; the template key file must be the one the
// backup was made with. The old store stays untouched unless the backup
// decrypts and checks completely (store.Restore).
func Restore(ctx context.Context, cfg config.Config, r io.Reader) error {
	kf := config.KeyFile{Path: cfg.TemplateKeyFile}
	keys, err := kf.Load(false)
	if errors.Is(err, config.ErrNoKey) {
		return fmt.Errorf("%w: copy the template key of the backed-up device there first (mode 0600)", err)
	}
	if err != nil {
		return err
	}
	snap, err := OpenBackup(r, keys)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	err = store.Restore(ctx, cfg.StorePath(), snap, store.Options{
		EncryptionKey:          keys.Current,
		PreviousEncryptionKeys: keys.Previous,
		MaxTemplatesPerClass:   cfg.API.MaxTemplatesPerClass,
	})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: %w: stop it first (systemctl stop bwsagent), then restore", ErrAgentRunning, err)
	}
	return err
}
