package api

import (
	"sync"
	"time"
)

// limiter locks a key (an app id, a class) after max failures within
// window. A lockout lasts window; with backoff, each lockout that follows
// another within 4 × its duration doubles, up to maxLock. The state is in
// memory and bounded to maxKeys keys: when full, the key idle longest goes.
type limiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	backoff bool
	maxLock time.Duration
	maxKeys int
	keys    map[string]*limitEntry
}

type limitEntry struct {
	failures    []time.Time // within window, oldest first
	lockedUntil time.Time
	lastLock    time.Duration // length of the last lockout
	last        time.Time     // last activity, for eviction
}

func newLimiter(max int, window time.Duration, backoff bool, maxLock time.Duration) *limiter {
	return &limiter{max: max, window: window, backoff: backoff, maxLock: maxLock, maxKeys: 10000, keys: map[string]*limitEntry{}}
}

// locked reports whether key is locked at now and for how long still.
func (l *limiter) locked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil || !now.Before(e.lockedUntil) {
		return 0, false
	}
	return e.lockedUntil.Sub(now), true
}

// fail records a failure and reports whether key is now locked, and for
// how long.
func (l *limiter) fail(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= l.maxKeys {
			l.evictLocked(now)
		}
		e = &limitEntry{}
		l.keys[key] = e
	}
	e.last = now
	if now.Before(e.lockedUntil) {
		return e.lockedUntil.Sub(now), true
	}
	cut := 0
	for cut < len(e.failures) && now.Sub(e.failures[cut]) >= l.window {
		cut++
	}
	e.failures = append(e.failures[cut:], now)
	if len(e.failures) < l.max {
		return 0, false
	}
	d := l.window
	if l.backoff && e.lastLock > 0 && now.Sub(e.lockedUntil) < 4*e.lastLock {
		d = min(2*e.lastLock, l.maxLock)
	}
	e.failures = e.failures[:0]
	e.lockedUntil = now.Add(d)
	e.lastLock = d
	return d, true
}

// reset forgets key (a success, a deleted class).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// evictLocked drops keys with nothing left to remember, or else the one
// idle longest.
func (l *limiter) evictLocked(now time.Time) {
	var oldest string
	var oldestT time.Time
	for k, e := range l.keys {
		if !now.Before(e.lockedUntil) && (len(e.failures) == 0 || now.Sub(e.failures[len(e.failures)-1]) >= l.window) &&
			(e.lastLock == 0 || now.Sub(e.lockedUntil) >= 4*e.lastLock) {
			delete(l.keys, k)
			continue
		}
		if oldest == "" || e.last.Before(oldestT) {
			oldest, oldestT = k, e.last
		}
	}
	if len(l.keys) >= l.maxKeys && oldest != "" {
		delete(l.keys, oldest)
	}
}
