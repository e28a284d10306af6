package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"time"
)

// dialConfig turns the URL and TLS settings into what autopaho dials:
// the URL with its default port, and the TLS config for a TLS scheme (nil
// otherwise). Relative file paths are read from dir.
func dialConfig(cfg Config, dir string) (*url.URL, *tls.Config, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("url %q: %w", cfg.URL, err)
	}
	secure := u.Scheme == "mqtts" || u.Scheme == "ssl"
	if u.Port() == "" {
		port := "1883"
		if secure {
			port = "8883"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if !secure {
		return u, nil, nil
	}
	tc, err := cfg.TLS.Build(dir)
	if err != nil {
		return nil, nil, err
	}
	return u, tc, nil
}

// resolve returns path (or def when path is empty) anchored at dir when
// relative.
func resolve(dir, path, def string) string {
	if path == "" {
		path = def
	}
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// backoff waits nothing before the first attempt, then a random time
// between lo and a ceiling that doubles from lo up to hi.
func backoff(lo, hi time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		if attempt <= 0 {
			return 0
		}
		ceil := lo
		for i := 1; i < attempt && ceil < hi; i++ {
			ceil *= 2
		}
		ceil = min(ceil, hi)
		return lo + rand.N(ceil-lo+1) //nolint:gosec // jitter, not a secret
	}
}

// pahoLogger sends paho's log lines to slog at debug level: its errors are
// about single packets and connections, which the transport reports
// itself.
type pahoLogger struct {
	log  *slog.Logger
	from string
}

func (l pahoLogger) Println(v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprint(v...), "from", l.from)
	}
}

func (l pahoLogger) Printf(format string, v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, v...), "from", l.from)
	}
}
