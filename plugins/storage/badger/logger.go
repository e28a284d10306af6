package badger

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// badgerLogger routes badger's warnings and errors to slog, its info
// messages at debug level except stalls (writes blocked behind level 0 or a
// memtable flush), which are warnings, and drops its debug chatter. Its
// lines are marked library=badger: the logger has a component already
// (storage/badger/NAME), and a key is given once.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(format string, args ...any) {
	l.emit(slog.LevelError, format, args)
}

func (l badgerLogger) Warningf(format string, args ...any) {
	l.emit(slog.LevelWarn, format, args)
}

func (l badgerLogger) Infof(format string, args ...any) {
	level := slog.LevelDebug
	if strings.Contains(format, "stalled for") && !strings.Contains(format, "Lifetime") {
		level = slog.LevelWarn
	}
	l.emit(level, format, args)
}

func (badgerLogger) Debugf(string, ...any) {}

func (l badgerLogger) emit(level slog.Level, format string, args []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	l.log.Log(context.Background(), level, msg, "library", "badger")
}
