package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// TestConfigValidate runs the config files of testdata/config through the
// shared config-file check.
func TestConfigValidate(t *testing.T) {
	plugintest.TestConfigFiles(t, "testdata/config/*.yaml", NewFactory())
}

func TestDefaultConfig(t *testing.T) {
	cfg := NewDefaultConfig()
	if cfg.Schema != DefaultSchema || !cfg.CreateTables || !cfg.Listen {
		t.Fatalf("defaults %+v", cfg)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "url: must be set") || !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("default config without a url: %v", err)
	}
	cfg.URL = "postgres://iotod@db.example:5432/iotod"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config with a url: %v", err)
	}
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Kind() != pipeline.KindStorage || f.Type() != TypeName || f.Description() == "" {
		t.Fatalf("kind %q type %q description %q", f.Kind(), f.Type(), f.Description())
	}
	cfg, ok := f.NewDefaultConfig().(*Config)
	if !ok || *cfg != NewDefaultConfig() {
		t.Fatalf("default config %#v", f.NewDefaultConfig())
	}
	set := pipeline.Settings{ID: pipeline.ID{Type: TypeName, Name: "cloud"}}
	if _, err := f.Create(t.Context(), set, cfg); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("create without a url: %v", err)
	}
	live := testConfig(t)
	s, err := f.Create(t.Context(), set, &live)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	st, ok := s.(*Store)
	if !ok {
		t.Fatalf("created a %T, not a *Store", s)
	}
	if err := st.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// silentServer accepts connections and never answers, as a firewall
// dropping packets or a hung server would look; it returns its address.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return l.Addr().String()
}

// Open against a server that refuses or never answers fails within
// connect_timeout, naming host and port, retryable.
func TestOpenUnreachable(t *testing.T) {
	for name, addr := range map[string]string{"refused": closedPort(t), "silent": silentServer(t)} {
		t.Run(name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			cfg.URL = "postgres://iotod:pw@" + addr + "/iotod?sslmode=disable"
			cfg.ConnectTimeout = 500 * time.Millisecond
			start := time.Now()
			s, err := Open(t.Context(), cfg, nil)
			took := time.Since(start)
			if err == nil {
				_ = s.Close(t.Context())
				t.Fatal("open succeeded")
			}
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
			if took > 3*time.Second {
				t.Errorf("open took %s, connect_timeout is %s", took, cfg.ConnectTimeout)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name %s", err, addr)
			}
			if pipeline.IsPermanent(err) {
				t.Errorf("an unreachable server is permanent: %v", err)
			}
		})
	}
}

// The password is in no error and no log line: unreachable, a missing
// database, missing tables, an invalid URL, and a store at work.
func TestPasswordNeverShown(t *testing.T) {
	const password = "Pa55:w/rd@s3cr3t"
	secrets := []string{password, url.QueryEscape(password), url.PathEscape(password), "s3cr3t"}
	base, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	withPassword := func(host, db string) string {
		u := *base
		u.User = url.UserPassword(base.User.Username(), password)
		if host != "" {
			u.Host = host
		}
		if db != "" {
			u.Path = "/" + db
		}
		return u.String()
	}
	var logs logBuffer
	check := func(what, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the password (%q): %s", what, s, text)
			}
		}
	}
	open := func(what string, cfg Config) error {
		t.Helper()
		s, err := Open(t.Context(), cfg, logs.logger())
		if err == nil {
			_ = s.Close(t.Context())
			t.Fatalf("%s: open succeeded", what)
		}
		check(what, err.Error())
		check(what+" (%+v)", fmt.Sprintf("%+v", err))
		return err
	}

	cfg := testConfig(t)
	cfg.ConnectTimeout = 500 * time.Millisecond
	cfg.URL = withPassword(closedPort(t), "")
	open("unreachable", cfg)

	cfg.URL = withPassword("", "no_such_database_iotod")
	if err := open("missing database", cfg); !pipeline.IsPermanent(err) {
		t.Errorf("a missing database is not permanent: %v", err)
	}

	cfg.URL = withPassword("", "")
	cfg.CreateTables = false
	if err := open("missing tables", cfg); !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "create_tables") {
		t.Errorf("missing tables: %v", err)
	}

	bad := cfg
	bad.URL = "postgres://u:" + url.PathEscape(password) + "@host:99999999/db"
	if err := bad.Validate(); err == nil || !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("a bad port: %v", err)
	} else {
		check("validate", err.Error())
	}
	bad.URL = "host=h password='" + password + "' port=x"
	if err := bad.Validate(); err == nil {
		t.Error("a bad key=value string is valid")
	} else {
		check("validate key=value", err.Error())
	}

	// At work (the test server trusts any password), every level logged.
	cfg.CreateTables = true
	s, err := Open(t.Context(), cfg, logs.logger())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	putAll(t, s, rec("a", "1"))
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("the logs", logs.String())
	if !strings.Contains(logs.String(), "postgres storage open") {
		t.Errorf("no open line in the logs:\n%s", logs.String())
	}

	// Whatever the driver or the server says, the password is scrubbed.
	sc := newScrubber(password)
	inner := fmt.Errorf("cannot parse `postgres://u:%s@h/db`: %w", url.PathEscape(password), pipeline.ErrInvalid)
	got := sc.wrap(inner)
	check("a scrubbed error", got.Error())
	if !errors.Is(got, pipeline.ErrInvalid) {
		t.Errorf("a scrubbed error does not wrap what it wrapped: %v", got)
	}
}

// With create_tables false, a schema without the tables is refused with
// the way out; once MigrationSQL ran, the store opens.
func TestCreateTablesOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.CreateTables = false
	_, err := Open(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "create_tables is false") || !strings.Contains(err.Error(), "items") {
		t.Fatalf("open without tables: %v", err)
	}
	conn := rawConn(t)
	if _, err := conn.Exec(t.Context(), MigrationSQL(cfg.Schema)); err != nil {
		t.Fatalf("migration SQL: %v", err)
	}
	// Twice: it changes nothing.
	if _, err := conn.Exec(t.Context(), MigrationSQL(cfg.Schema)); err != nil {
		t.Fatalf("migration SQL again: %v", err)
	}
	s := openStore(t, cfg)
	putAll(t, s, rec("m", "1"))

	// A layout of another version is refused, tables left as they are.
	if _, err := conn.Exec(t.Context(), "UPDATE "+s.n.meta+" SET value = 99 WHERE name = 'layout'"); err != nil {
		t.Fatal(err)
	}
	cfg.CreateTables = true
	if _, err := Open(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "layout 99") || !pipeline.IsPermanent(err) {
		t.Fatalf("open of layout 99: %v", err)
	}
}

// Stores starting together on a new schema all open (the DDL runs under
// an advisory lock).
func TestOpenTogether(t *testing.T) {
	cfg := testConfig(t)
	errs := make(chan error, 6)
	for range cap(errs) {
		go func() {
			s, err := Open(context.Background(), cfg, nil)
			if err == nil {
				err = s.Close(context.Background())
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
