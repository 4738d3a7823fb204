package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
)

// Logs is the agent's logging. Its level and format can change while the
// agent runs (SIGHUP), for every logger derived from Logger. Under systemd
// it writes to the journal with structured fields instead (journal.go).
type Logs struct {
	out     io.Writer
	journal JournalSender
	level   slog.LevelVar
	root    atomic.Pointer[rootHandler]
}

// rootHandler boxes the current handler: loggers compare the box to know
// when to rebuild their derived handler.
type rootHandler struct{ h slog.Handler }

// NewLogs returns logging at level (debug, info, warn, error) in format
// (text, json) to w, or to the journal through journal when it is not nil
// (see Journal), falling back to w for entries the journal refuses.
func NewLogs(w io.Writer, level, format string, journal JournalSender) (*Logs, error) {
	l := &Logs{out: w, journal: journal}
	if err := l.Set(level, format); err != nil {
		return nil, err
	}
	return l, nil
}

// NewLogger returns a logger writing to w at level in format.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := NewLogs(w, level, format, nil)
	if err != nil {
		return nil, err
	}
	return l.Logger(), nil
}

// Set changes the level and format of every logger Logger returned.
func (l *Logs) Set(level, format string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("'logLevel': %w", err)
	}
	opts := &slog.HandlerOptions{Level: &l.level}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(l.out, opts)
	case "text", "":
		h = slog.NewTextHandler(l.out, opts)
	default:
		return fmt.Errorf("'logFormat' must be text or json, got %q", format)
	}
	if l.journal != nil {
		h = &journalHandler{send: l.journal, level: &l.level, fallback: h}
	}
	l.level.Set(lv)
	l.root.Store(&rootHandler{h})
	return nil
}

// Level is the current level.
func (l *Logs) Level() slog.Level { return l.level.Level() }

// Journaled reports whether entries go to the journal.
func (l *Logs) Journaled() bool { return l.journal != nil }

// Logger returns a logger that follows Set.
func (l *Logs) Logger() *slog.Logger { return slog.New(&switchHandler{logs: l}) }

// switchHandler forwards to the Logs' current handler with the attributes
// and groups added to this logger replayed on it. The derived handler is
// cached until the root changes, so a record costs one atomic load.
type switchHandler struct {
	logs  *Logs
	ops   []func(slog.Handler) slog.Handler // WithAttrs/WithGroup, in order
	cache atomic.Pointer[derivedHandler]
}

type derivedHandler struct {
	root *rootHandler
	h    slog.Handler
}

func (s *switchHandler) current() slog.Handler {
	root := s.logs.root.Load()
	if d := s.cache.Load(); d != nil && d.root == root {
		return d.h
	}
	h := root.h
	for _, op := range s.ops {
		h = op(h)
	}
	s.cache.Store(&derivedHandler{root: root, h: h})
	return h
}

func (s *switchHandler) Enabled(_ context.Context, lv slog.Level) bool {
	return lv >= s.logs.level.Level()
}

func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.current().Handle(ctx, r)
}

func (s *switchHandler) with(op func(slog.Handler) slog.Handler) *switchHandler {
	return &switchHandler{logs: s.logs, ops: append(slices.Clip(s.ops), op)}
}

func (s *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return s
	}
	return s.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
}

func (s *switchHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return s
	}
	return s.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

// Journal returns the journal sender when w is this process's stderr and
// systemd connected that to the journal ($JOURNAL_STREAM names it) and the
// journal's socket answers; nil otherwise (w gets plain lines). Checking
// the stream, not just the variable, keeps a child whose stderr was
// redirected from writing to its parent's journal.
func Journal(w io.Writer) JournalSender {
	if w != io.Writer(os.Stderr) {
		return nil
	}
	if ok, err := stderrIsJournal(); err != nil || !ok || !journalEnabled() {
		return nil
	}
	return journalSend
}
