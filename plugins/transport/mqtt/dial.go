package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
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
	tc, err := buildTLS(cfg.TLS, dir)
	if err != nil {
		return nil, nil, err
	}
	return u, tc, nil
}

// buildTLS reads the CA and client certificate files of c.
func buildTLS(c TLSConfig, dir string) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // asked for in the config, for tests
	}
	if c.CAFile != "" {
		path := resolve(dir, c.CAFile, "")
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", path)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(resolve(dir, c.CertFile, ""), resolve(dir, c.KeyFile, ""))
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file and tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
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
