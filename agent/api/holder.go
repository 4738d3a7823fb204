package api

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/bwsagent/bwsagent/liveness"
)

// holder keeps the analysed samples of each token in memory until a
// biometric call takes them. It is bounded per token and in total; an
// upload reserves its slot before the (slow) analysis, so parallel uploads
// cannot overshoot the bounds. Expired tokens are swept lazily on every
// use, so no goroutine is needed and tests drive expiry with the clock.
//
// In sync mode a held sample also keeps its image file, for the outbox job
// of the enrollment that consumes it; those bytes are bounded too
// (maxHeldFileBytes) and leave with the sample.
type holder struct {
	mu        sync.Mutex
	now       func() time.Time
	perToken  int
	total     int
	used      int // held + reserved, all tokens
	fileBytes int // image files held + reserved, all tokens
	seq       uint64
	tokens    map[string]*tokenSamples
	nextSweep time.Time
	closed    bool
}

type tokenSamples struct {
	expires  time.Time
	samples  []heldSample
	reserved int
}

type heldSample struct {
	index int
	seq   uint64 // arrival order
	s     liveness.Sample
	file  []byte // the image file, in sync mode only
}

// maxHeldFileBytes bounds the image files held for sync at once: enough
// for a busy kiosk's tokens (hundreds of samples of a few hundred KB), and
// far below what MaxHeldSamples × MaxUploadBytes would allow.
const maxHeldFileBytes = 256 << 20

// sweepEvery bounds how often a use walks all tokens for expired ones.
const sweepEvery = time.Second

func newHolder(now func() time.Time, perToken, total int) *holder {
	return &holder{now: now, perToken: perToken, total: total, tokens: map[string]*tokenSamples{}}
}

// reserve books a slot for one sample of token id, which expires at
// expires, and fileBytes for its image file (0 when the file is not
// kept). Call commit or cancel afterwards.
func (h *holder) reserve(id string, expires time.Time, fileBytes int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return newError(ErrClosed, msgClosed, nil)
	}
	h.sweepLocked()
	t := h.tokens[id]
	if t != nil && len(t.samples)+t.reserved >= h.perToken {
		return newError(ErrTooManySamples, msgTooMany, nil)
	}
	if h.used >= h.total || h.fileBytes+fileBytes > maxHeldFileBytes {
		return newError(ErrUnavailable, msgHeldFull, nil)
	}
	if t == nil {
		t = &tokenSamples{expires: expires}
		h.tokens[id] = t
	}
	t.reserved++
	h.used++
	h.fileBytes += fileBytes
	return nil
}

// cancel releases a reservation without a sample.
func (h *holder) cancel(id string, fileBytes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.tokens[id]
	if t == nil || t.reserved == 0 {
		return // swept or closed meanwhile
	}
	t.reserved--
	h.used--
	h.fileBytes -= fileBytes
	h.dropIfEmpty(id, t)
}

// commit turns a reservation into a held sample, with its image file when
// one was reserved for (nil otherwise). It reports false when the token
// expired or the holder closed meanwhile (the sample is dropped).
func (h *holder) commit(id string, index int, s liveness.Sample, file []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.tokens[id]
	if t == nil || t.reserved == 0 || h.closed {
		return false
	}
	t.reserved--
	if !h.now().Before(t.expires) {
		h.used--
		h.fileBytes -= len(file)
		h.dropIfEmpty(id, t)
		return false
	}
	h.seq++
	t.samples = append(t.samples, heldSample{index: index, seq: h.seq, s: s, file: file})
	return true
}

// take removes and returns the token's samples ordered by index, then
// arrival, and their image files in the same order (nil when none were
// kept). Uploads still being analysed stay reserved and arrive after.
func (h *holder) take(id string) ([]liveness.Sample, [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked()
	t := h.tokens[id]
	if t == nil || len(t.samples) == 0 {
		return nil, nil
	}
	held := t.samples
	h.release(held)
	t.samples = nil
	h.dropIfEmpty(id, t)
	if !h.now().Before(t.expires) {
		return nil, nil // expired since the last sweep
	}
	slices.SortStableFunc(held, func(a, b heldSample) int {
		if a.index != b.index {
			return a.index - b.index
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := make([]liveness.Sample, len(held))
	var files [][]byte
	for i := range held {
		out[i] = held[i].s
		if held[i].file != nil {
			files = append(files, held[i].file)
		}
	}
	return out, files
}

// release uncounts samples leaving the holder.
func (h *holder) release(held []heldSample) {
	h.used -= len(held)
	for i := range held {
		h.fileBytes -= len(held[i].file)
	}
}

// drop discards the token's held samples.
func (h *holder) drop(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.tokens[id]; t != nil {
		h.release(t.samples)
		t.samples = nil
		h.dropIfEmpty(id, t)
	}
}

// count returns the samples held, all tokens.
func (h *holder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, t := range h.tokens {
		n += len(t.samples)
	}
	return n
}

// close drops everything; later reservations fail.
func (h *holder) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	clear(h.tokens)
	h.used, h.fileBytes = 0, 0
}

// sweep drops the samples of expired tokens now.
func (h *holder) sweep() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextSweep = time.Time{}
	h.sweepLocked()
}

func (h *holder) sweepLocked() {
	now := h.now()
	if now.Before(h.nextSweep) {
		return
	}
	h.nextSweep = now.Add(sweepEvery)
	for id, t := range h.tokens {
		if !now.Before(t.expires) {
			h.release(t.samples)
			t.samples = nil
			h.dropIfEmpty(id, t)
		}
	}
}

func (h *holder) dropIfEmpty(id string, t *tokenSamples) {
	if len(t.samples) == 0 && t.reserved == 0 {
		delete(h.tokens, id)
	}
}
