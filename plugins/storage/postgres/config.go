package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iotod/iotod/pipeline"
)

// DefaultSchema is the PostgreSQL schema holding the tables when the
// config names none.
const DefaultSchema = "iotod"

// schemaPattern is the schema names accepted: plain lower-case SQL
// identifiers, so that psql, pg_dump and MigrationSQL need no quoting
// subtleties.
var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Config is the user configuration of a PostgreSQL store.
type Config struct {
	// URL is the server and database, postgres://user:password@host:port/db
	// (libpq's URL or key=value forms). Required. The password is never
	// logged nor put in an error.
	URL string `yaml:"url" desc:"postgres://user:password@host:5432/database?sslmode=verify-full (required; the password is never logged)"`
	// Schema is the PostgreSQL schema holding the store's tables. Default
	// iotod.
	Schema string `yaml:"schema" desc:"PostgreSQL schema holding the tables (lower-case identifier)"`
	// CreateTables creates the schema, tables and indexes at start when
	// they are missing. Default true; false refuses to start without them
	// (create them with the SQL of MigrationSQL).
	CreateTables bool `yaml:"create_tables" desc:"create the schema, tables and indexes at start when missing; false: refuse to start without them"`
	// MaxConns bounds the connections of the pool. Default 10. The
	// listener of listen takes one more.
	MaxConns int `yaml:"max_conns" desc:"connections of the pool at most, 1 to 1000 (listen takes one more)"`
	// ConnectTimeout bounds each connection attempt, so a start against an
	// unreachable server fails in bounded time. Default 10s. It replaces
	// the URL's connect_timeout.
	ConnectTimeout time.Duration `yaml:"connect_timeout" desc:"bound of one connection attempt (replaces the URL's connect_timeout)"`
	// ConflictRetries is how many times an Update runs its function again
	// after PostgreSQL aborted it for a serialization failure or a
	// deadlock (SQLSTATE 40001, 40P01). Default 20.
	ConflictRetries int `yaml:"conflict_retries" desc:"times an update is run again after a serialization failure or deadlock, 0 to 1000"`
	// SweepInterval is how often expired items are deleted (reads hide
	// them from the moment they expire). Default 1m.
	SweepInterval time.Duration `yaml:"sweep_interval" desc:"how often expired items are deleted (reads hide them at once)"`
	// TombstoneTTL is the least time a remove's tombstone is kept: until
	// the later of its writer's expiry and now + TombstoneTTL. Zero keeps
	// the writer's expiry (7 days from iotod's database).
	TombstoneTTL time.Duration `yaml:"tombstone_ttl" desc:"least time a remove's tombstone is kept (it beats late, older updates); 0 keeps the writer's expiry (7 days from iotod's database)"`
	// OwnerAttribute is the item attribute naming the owning device; its
	// value is kept in an indexed column so a device's catch-up reads only
	// its items. It must be the cloud pipelines' owner. Default deviceId;
	// empty: catch-ups walk every item.
	OwnerAttribute string `yaml:"owner_attribute" desc:"item attribute naming an item's device (the pipelines' owner), indexed for catch-ups; empty: catch-ups walk every item"`
	// Listen has the store LISTEN for the outbox commits of other
	// processes on the same schema (their NOTIFY), so that Notify fires
	// for them too, on a connection of its own. Default true.
	Listen bool `yaml:"listen" desc:"LISTEN for other processes' outbox commits on the same schema (one more connection)"`
	// FeedLease has the workers sharing the schema read its outbox one at
	// a time, so each change goes down once: the one holding a lease (a
	// session advisory lock on a connection of its own) sends, the others
	// take over within seconds when its session ends. Default true; false
	// has every worker send every change.
	FeedLease bool `yaml:"feed_lease" desc:"one worker at a time sends the outbox (the down feed), another takes over when it dies (one more connection); false: every worker sends every change"`

	_ struct{}
}

// NewDefaultConfig returns the defaults; URL must still be set.
func NewDefaultConfig() Config {
	return Config{
		Schema:          DefaultSchema,
		CreateTables:    true,
		MaxConns:        10,
		ConnectTimeout:  10 * time.Second,
		ConflictRetries: 20,
		SweepInterval:   time.Minute,
		OwnerAttribute:  "deviceId",
		Listen:          true,
		FeedLease:       true,
	}
}

// Validate reports every fault of c, each as "field: message" wrapping
// pipeline.ErrInvalid. A fault of the URL never quotes it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fieldError{field: field, msg: msg}) }
	if c.URL == "" {
		bad("url", "must be set")
	} else if msg := checkURL(c.URL); msg != "" {
		bad("url", msg)
	}
	if !schemaPattern.MatchString(c.Schema) {
		bad("schema", fmt.Sprintf("%q is not a lower-case identifier: a-z or _, then a-z 0-9 _, at most 63", pipeline.Truncate(c.Schema, 64)))
	} else if strings.HasPrefix(c.Schema, "pg_") {
		bad("schema", fmt.Sprintf("%q: names starting with pg_ are PostgreSQL's", c.Schema))
	}
	if c.MaxConns < 1 || c.MaxConns > 1000 {
		bad("max_conns", fmt.Sprintf("must be 1 to 1000, got %d", c.MaxConns))
	}
	if c.ConnectTimeout < 100*time.Millisecond || c.ConnectTimeout > 5*time.Minute {
		bad("connect_timeout", fmt.Sprintf("must be 100ms to 5m, got %s", c.ConnectTimeout))
	}
	if c.ConflictRetries < 0 || c.ConflictRetries > 1000 {
		bad("conflict_retries", fmt.Sprintf("must be 0 to 1000, got %d", c.ConflictRetries))
	}
	if c.SweepInterval < time.Second {
		bad("sweep_interval", fmt.Sprintf("must be at least 1s, got %s", c.SweepInterval))
	}
	if c.TombstoneTTL < 0 {
		bad("tombstone_ttl", fmt.Sprintf("must not be negative, got %s", c.TombstoneTTL))
	}
	if len(c.OwnerAttribute) > 255 || strings.ContainsFunc(c.OwnerAttribute, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }) {
		bad("owner_attribute", fmt.Sprintf("%q is longer than 255 bytes or holds a control or invalid character", pipeline.Truncate(c.OwnerAttribute, 64)))
	}
	return errors.Join(errs...)
}

// checkURL says what is wrong with a connection string, without quoting
// it: it may hold a password.
func checkURL(s string) string {
	if _, err := pgxpool.ParseConfig(s); err != nil {
		return "is not a valid postgres URL or connection string (it is not shown: it may hold a password)"
	}
	return ""
}

// fieldError is a fault of one config field.
type fieldError struct{ field, msg string }

func (e fieldError) Error() string { return e.field + ": " + e.msg }
func (e fieldError) Unwrap() error { return pipeline.ErrInvalid }
