// Package broker is iotod's embedded MQTT broker (mochi-mqtt): devices and
// cloud workers connect to it with their credentials, and a per-site ACL
// lets a device use only its own site's topics while cloud workers use
// every site's, shared subscriptions included.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"
)

// Broker is a running embedded broker.
type Broker struct {
	server *mqtt.Server
	addr   string
	log    *slog.Logger

	once sync.Once
	done chan struct{}
}

// Start checks cfg, opens the persistence folder if any, binds the
// listener and serves in the background until Close. metrics may be nil.
func Start(ctx context.Context, cfg Config, logger *slog.Logger, metrics prometheus.Registerer) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	topics, err := ParseTemplate(cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("broker topic: %w", err)
	}
	m, err := newMetrics(metrics)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := loadTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	caps := mqtt.NewDefaultServerCapabilities()
	// mochi compares the size a fixed header announces with this before
	// it reads (and allocates) the rest of the packet.
	caps.MaximumPacketSize = uint32(cfg.MaxPacket)
	server := mqtt.New(&mqtt.Options{InlineClient: false, Capabilities: caps, Logger: slog.New(demote{Handler: logger.Handler()})})
	hook := newACLHook(&cfg, topics, logger, m)
	hook.server = server
	if err := server.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("broker: acl hook: %w", err)
	}
	b := &Broker{server: server, log: logger, done: make(chan struct{})}
	if cfg.Persistence != "" {
		if err := addPersistence(server, cfg.Persistence); err != nil { // persistence*.go
			_ = server.Close()
			return nil, fmt.Errorf("broker persistence %s: %w", cfg.Persistence, err)
		}
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "iotod", Address: cfg.Listen, TLSConfig: tlsConfig})
	if err := server.AddListener(tcp); err != nil {
		_ = server.Close()
		return nil, fmt.Errorf("broker listen %s: %w", cfg.Listen, err)
	}
	if err := server.Serve(); err != nil {
		_ = server.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.addr = tcp.Address()
	logger.Info("broker listening", "addr", b.addr, "tls", tlsConfig != nil, "users", len(cfg.Users),
		"anonymous", cfg.Anonymous, "persistence", cfg.Persistence, "topic", cfg.Topic, "max_packet", cfg.MaxPacket)
	if cfg.Anonymous {
		logger.Info("broker accepts anonymous clients as the site of their client id: for local development only")
	}
	return b, nil
}

// Addr is the address the broker listens on (with the port chosen when
// the config said :0).
func (b *Broker) Addr() string { return b.addr }

// Close disconnects every client, stops listening and closes the
// persistence store. It is safe to call twice; it returns ctx's error if
// ctx ends first (closing goes on in the background).
func (b *Broker) Close(ctx context.Context) error {
	b.once.Do(func() {
		go func() {
			defer close(b.done)
			if err := b.server.Close(); err != nil {
				b.log.Error("broker close", "err", err)
			}
		}()
	})
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker close: %w", ctx.Err())
	}
}

// loadTLS builds the listener's TLS config (nil without tls).
func loadTLS(c *TLSConfig) (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("broker tls: %w", err)
	}
	out := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("broker tls client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker tls client_ca_file %s: %w", c.ClientCAFile, errors.New("no PEM certificate in it"))
		}
		out.ClientCAs = pool
		out.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return out, nil
}

// demote is a slog handler that logs mochi's info lines (hooks added,
// listener attached, badger's chatter) at debug; warnings and errors stay,
// except those whose error only says a connection closed (the client went
// away, or the broker closed it at shutdown): debug too. mochi's listener
// reports the end of each client connection with an empty message: that
// line gets one.
type demote struct {
	slog.Handler
	listener bool // the listener's logger (mochi adds its "listener")
}

func (d demote) Enabled(ctx context.Context, l slog.Level) bool {
	return d.Handler.Enabled(ctx, d.level(l))
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	r.Level = d.level(r.Level)
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "error" && closedConn(err) {
			r.Level = min(r.Level, slog.LevelDebug)
		}
		return true
	})
	if r.Message == "" && d.listener {
		r.Message = "client connection ended"
	}
	if !d.Handler.Enabled(ctx, r.Level) {
		return nil // lowered below what Enabled was asked
	}
	return d.Handler.Handle(ctx, r)
}

func (d demote) WithAttrs(attrs []slog.Attr) slog.Handler {
	listener := d.listener || slices.ContainsFunc(attrs, func(a slog.Attr) bool { return a.Key == "listener" })
	return demote{d.Handler.WithAttrs(attrs), listener}
}

func (d demote) WithGroup(name string) slog.Handler {
	return demote{d.Handler.WithGroup(name), d.listener}
}

func (demote) level(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

// closedConn reports whether err only says a connection closed: the peer
// went away or stopped answering, or the broker closed it.
func closedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrDeadlineExceeded)
}
