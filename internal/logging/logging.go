// Package logging sets up log/slog and adapts it to the go-kit logger that
// dskit constructors take.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	gokit "github.com/go-kit/log"
)

// New makes a logger writing logfmt ("logfmt") or JSON ("json") lines at
// level ("debug", "info", "warn", "error") or above.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "logfmt", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want logfmt or json", format)
}

// GoKit adapts l for dskit: the "level" and "msg" keys of a go-kit log line
// become the slog level and message, the other pairs its attributes.
func GoKit(l *slog.Logger) gokit.Logger { return goKitAdapter{l} }

type goKitAdapter struct{ l *slog.Logger }

func (a goKitAdapter) Log(keyvals ...any) error {
	level, msg := slog.LevelInfo, ""
	attrs := make([]any, 0, len(keyvals))
	for i := 0; i+1 < len(keyvals); i += 2 {
		k := fmt.Sprint(keyvals[i])
		switch k {
		case "level":
			switch strings.ToLower(fmt.Sprint(keyvals[i+1])) {
			case "debug":
				level = slog.LevelDebug
			case "warn", "warning":
				level = slog.LevelWarn
			case "error":
				level = slog.LevelError
			}
		case "msg":
			msg = fmt.Sprint(keyvals[i+1])
		default:
			attrs = append(attrs, k, keyvals[i+1])
		}
	}
	a.l.Log(context.Background(), level, msg, attrs...)
	return nil
}
