package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/journal"
)

// JournalSender sends one entry to journald: journal.Send, or a fake in
// tests.
type JournalSender func(message string, priority journal.Priority, fields map[string]string) error

// SyslogIdentifier tags the agent's journal entries (journalctl -t).
const SyslogIdentifier = "bwsagent"

func journalSend(message string, priority journal.Priority, fields map[string]string) error {
	return journal.Send(message, priority, fields)
}

func stderrIsJournal() (bool, error) { return journal.StderrIsJournalStream() }

func journalEnabled() bool { return journal.Enabled() }

// journalHandler writes records to journald natively: MESSAGE is the
// message followed by its attributes as key=value (what plain journalctl
// shows), PRIORITY follows the level, and every attribute is also a field
// of its own in upper case, groups joined by "_" (component=api →
// COMPONENT=api, for journalctl COMPONENT=api). Records the journal
// refuses go to fallback.
type journalHandler struct {
	send     JournalSender
	level    slog.Leveler
	fallback slog.Handler
	group    string // open group prefix of field names, "HTTP_"
	prefix   string // open group prefix of MESSAGE keys, "http."
	fields   map[string]string
	text     string // " key=value" of the attributes added with WithAttrs
}

func (h *journalHandler) Enabled(_ context.Context, lv slog.Level) bool {
	return lv >= h.level.Level()
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]string, len(h.fields)+r.NumAttrs()+4)
	for k, v := range h.fields {
		fields[k] = v
	}
	var msg strings.Builder
	msg.WriteString(r.Message)
	msg.WriteString(h.text)
	r.Attrs(func(a slog.Attr) bool {
		addAttr(fields, &msg, h.group, h.prefix, a)
		return true
	})
	fields["SYSLOG_IDENTIFIER"] = SyslogIdentifier
	if err := h.send(msg.String(), journalPriority(r.Level), fields); err != nil {
		return h.fallback.Handle(ctx, r)
	}
	return nil
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.fields = make(map[string]string, len(h.fields)+len(as))
	for k, v := range h.fields {
		c.fields[k] = v
	}
	var text strings.Builder
	text.WriteString(h.text)
	for _, a := range as {
		addAttr(c.fields, &text, h.group, h.prefix, a)
	}
	c.text = text.String()
	c.fallback = h.fallback.WithAttrs(as)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group += fieldName(name) + "_"
	c.prefix += name + "."
	c.fallback = h.fallback.WithGroup(name)
	return &c
}

// addAttr adds a (groups flattened) to fields and to msg as " key=value".
func addAttr(fields map[string]string, msg *strings.Builder, group, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return // slog's rule: empty attributes are ignored
	}
	if a.Value.Kind() == slog.KindGroup {
		as := a.Value.Group()
		if a.Key != "" {
			group += fieldName(a.Key) + "_"
			prefix += a.Key + "."
		}
		for _, g := range as {
			addAttr(fields, msg, group, prefix, g)
		}
		return
	}
	v := attrString(a.Value)
	fields[group+fieldName(a.Key)] = v
	msg.WriteByte(' ')
	msg.WriteString(prefix + a.Key)
	msg.WriteByte('=')
	if needsQuote(v) {
		v = strconv.Quote(v)
	}
	msg.WriteString(v)
}

func attrString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		return fmt.Sprint(v.Any())
	}
	return v.String()
}

// reservedField: fields the handler or journald sets itself; attributes
// of those names get an "ATTR_" prefix instead of overwriting them.
func reservedField(name string) bool {
	switch name {
	case "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC":
		return true
	}
	return false
}

// fieldName maps an attribute key to a valid journal field name: upper
// case letters, digits and "_", not starting with "_" or a digit, at most
// 64 bytes (sd_journal_sendv(3)). "remoteAddr" → "REMOTEADDR",
// "retry-in" → "RETRY_IN".
func fieldName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	n := b.String()
	if n == "" || n[0] == '_' || (n[0] >= '0' && n[0] <= '9') || reservedField(n) {
		n = "ATTR_" + n
	}
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r <= ' ' || r == '=' || r == '"' || r == utf8.RuneError || r > '~' {
			return true
		}
	}
	return false
}

// journalPriority maps slog levels to syslog priorities.
func journalPriority(lv slog.Level) journal.Priority {
	switch {
	case lv >= slog.LevelError:
		return journal.PriErr
	case lv >= slog.LevelWarn:
		return journal.PriWarning
	case lv >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}
