package agent

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns the logger the configuration asks for (logLevel,
// logFormat), writing to w. Under systemd, stderr goes to the journal.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("'logLevel': %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("'logFormat' must be text or json, got %q", format)
}
