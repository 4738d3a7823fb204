package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

type journalEntry struct {
	msg    string
	prio   journal.Priority
	fields map[string]string
}

func fakeJournal(fail error) (JournalSender, *[]journalEntry) {
	var got []journalEntry
	return func(msg string, prio journal.Priority, fields map[string]string) error {
		if fail != nil {
			return fail
		}
		got = append(got, journalEntry{msg, prio, maps.Clone(fields)})
		return nil
	}, &got
}

func TestJournalFields(t *testing.T) {
	tests := []struct {
		name   string
		log    func(*slog.Logger)
		msg    string
		prio   journal.Priority
		fields map[string]string
	}{
		{"attributes become fields and key=value in MESSAGE",
			func(l *slog.Logger) {
				l.With("component", "agent").Info("serving", "url", "http://127.0.0.1:8480", "workers", 2)
			},
			"serving component=agent url=http://127.0.0.1:8480 workers=2", journal.PriInfo,
			map[string]string{"COMPONENT": "agent", "URL": "http://127.0.0.1:8480", "WORKERS": "2"}},
		{"errors, durations, quoting",
			func(l *slog.Logger) {
				l.Error("sweep failed", "err", errors.New("disk full"), "retry_in", 1500*time.Millisecond)
			},
			`sweep failed err="disk full" retry_in=1.5s`, journal.PriErr,
			map[string]string{"ERR": "disk full", "RETRY_IN": "1.5s"}},
		{"groups prefix field names",
			func(l *slog.Logger) {
				l.WithGroup("http").Warn("slow", slog.Group("req", "path", "/x"), "ms", 12)
			},
			"slow http.req.path=/x http.ms=12", journal.PriWarning,
			map[string]string{"HTTP_REQ_PATH": "/x", "HTTP_MS": "12"}},
		{"keys mapped to valid field names, reserved ones not overwritten",
			func(l *slog.Logger) {
				l.Info("m", "remote-addr", "a", "message", "b", "2fa", "c", "_x", "d")
			},
			"m remote-addr=a message=b 2fa=c _x=d", journal.PriInfo,
			map[string]string{"REMOTE_ADDR": "a", "ATTR_MESSAGE": "b", "ATTR_2FA": "c", "ATTR__X": "d"}},
		{"debug", func(l *slog.Logger) { l.Debug("d", slog.Group("", "inline", 1)) },
			"d inline=1", journal.PriDebug, map[string]string{"INLINE": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send, got := fakeJournal(nil)
			logs, err := NewLogs(&bytes.Buffer{}, "debug", "text", send)
			if err != nil {
				t.Fatal(err)
			}
			tt.log(logs.Logger())
			if len(*got) != 1 {
				t.Fatalf("%d entries", len(*got))
			}
			e := (*got)[0]
			tt.fields["SYSLOG_IDENTIFIER"] = "bwsagent"
			if e.msg != tt.msg || e.prio != tt.prio || !maps.Equal(e.fields, tt.fields) {
				t.Errorf("got %q %d %v\nwant %q %d %v", e.msg, e.prio, e.fields, tt.msg, tt.prio, tt.fields)
			}
		})
	}
}

// A record the journal refuses goes to the fallback writer, attributes
// and groups included.
func TestJournalFallback(t *testing.T) {
	send, _ := fakeJournal(errors.New("journal socket gone"))
	var out bytes.Buffer
	logs, err := NewLogs(&out, "info", "text", send)
	if err != nil {
		t.Fatal(err)
	}
	logs.Logger().With("component", "api").WithGroup("g").Info("hello", "k", "v")
	if got := out.String(); !strings.Contains(got, "msg=hello component=api g.k=v") {
		t.Errorf("fallback got %q", got)
	}
}

// Set changes level and format for loggers derived before the change.
func TestLogsSet(t *testing.T) {
	var out bytes.Buffer
	logs, err := NewLogs(&out, "warn", "text", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := logs.Logger().With("component", "api").WithGroup("req")
	l.Info("hidden")
	if err := logs.Set("debug", "json"); err != nil {
		t.Fatal(err)
	}
	l.Debug("shown", "path", "/x")
	if got := out.String(); strings.Contains(got, "hidden") ||
		!strings.Contains(got, `"msg":"shown","component":"api","req":{"path":"/x"}`) {
		t.Errorf("got %q", got)
	}
	if !l.Enabled(context.Background(), slog.LevelDebug) || logs.Level() != slog.LevelDebug {
		t.Error("level not debug")
	}
	for _, bad := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if err := logs.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if logs.Level() != slog.LevelDebug {
		t.Error("a refused Set changed the level")
	}
}

// Outside systemd, or with stderr redirected, logs are plain lines.
func TestJournalOnlyForItsStream(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "1:1")
	if Journal(&bytes.Buffer{}) != nil {
		t.Error("journal chosen for a buffer")
	}
	// The test's stderr is not inode 1 of device 1.
	if Journal(stderrWriter()) != nil {
		t.Error("journal chosen for a stderr JOURNAL_STREAM does not name")
	}
}

func stderrWriter() io.Writer { return os.Stderr }
