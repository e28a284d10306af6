package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// layoutVersion is the layout of the tables below, kept in the meta table;
// a schema of another version is refused rather than guessed at.
const layoutVersion = 1

// names are the store's tables and indexes, qualified by its schema.
type names struct {
	schema                       string // the schema, quoted
	items, entries, outbox, meta string
}

func newNames(schema string) names {
	q := pgx.Identifier{schema}.Sanitize()
	return names{schema: q, items: q + ".items", entries: q + ".entries", outbox: q + ".outbox", meta: q + ".meta"}
}

// relations are the tables and indexes a schema must hold.
var relations = []string{
	"meta", "items", "items_expires", "items_owner", "items_model", "entries", "entries_key", "outbox", "items_json",
}

// ddl is the SQL creating the store's schema, tables and indexes, each
// statement safe to run again. Keys and index values are bytea, compared
// byte by byte (memcmp, then length) as badger orders its keys; text
// would follow the database's collation.
func ddl(schema string) []string {
	n := newNames(schema)
	return []string{
		`CREATE SCHEMA IF NOT EXISTS ` + n.schema,
		`CREATE TABLE IF NOT EXISTS ` + n.meta + ` (
	name text PRIMARY KEY,
	value bigint NOT NULL)`,
		// item: the document's exact bytes (jsonb would reorder keys and
		// respace it); indexes: the record's index entries, encoded by
		// encodeIndexes; owner: the item's owner attribute, for catch-ups.
		`CREATE TABLE IF NOT EXISTS ` + n.items + ` (
	pk bytea NOT NULL,
	sk bytea NOT NULL,
	model text NOT NULL,
	item bytea NOT NULL,
	indexes bytea,
	wall bigint NOT NULL,
	counter bigint NOT NULL,
	origin text NOT NULL,
	expires bigint NOT NULL DEFAULT 0,
	owner text,
	PRIMARY KEY (pk, sk))`,
		`CREATE INDEX IF NOT EXISTS items_expires ON ` + n.items + ` (expires) WHERE expires > 0`,
		`CREATE INDEX IF NOT EXISTS items_owner ON ` + n.items + ` (owner, wall, pk, sk) WHERE owner IS NOT NULL`,
		`CREATE INDEX IF NOT EXISTS items_model ON ` + n.items + ` (model, wall, pk, sk)`,
		`CREATE TABLE IF NOT EXISTS ` + n.entries + ` (
	ix bytea NOT NULL,
	hash bytea NOT NULL,
	sort bytea NOT NULL,
	pk bytea NOT NULL,
	sk bytea NOT NULL,
	PRIMARY KEY (ix, hash, sort, pk, sk))`,
		`CREATE INDEX IF NOT EXISTS entries_key ON ` + n.entries + ` (pk, sk)`,
		// seq: assigned in commit order (see doc.go), never reused.
		`CREATE TABLE IF NOT EXISTS ` + n.outbox + ` (
	seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	model text NOT NULL,
	op text NOT NULL,
	pk bytea NOT NULL,
	sk bytea NOT NULL,
	item bytea,
	wall bigint NOT NULL,
	counter bigint NOT NULL,
	vorigin text NOT NULL,
	origin text NOT NULL,
	time bigint NOT NULL)`,
		// items_json: the items for people and SQL tools (psql, Grafana):
		// keys as text (non-printable bytes escaped), the item as jsonb, or
		// NULL for an item jsonb refuses (a JSON string holding \u0000):
		// read items.item (bytea) then. One such item must not break every
		// query of the view, hence the function.
		`CREATE OR REPLACE FUNCTION ` + n.schema + `.item_jsonb(b bytea) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN convert_from(b, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
	RETURN NULL;
END $$`,
		`CREATE OR REPLACE VIEW ` + n.schema + `.items_json AS
	SELECT model, encode(pk, 'escape') AS pk, encode(sk, 'escape') AS sk,
		` + n.schema + `.item_jsonb(item) AS item, owner,
		to_timestamp(wall / 1000.0) AS updated, origin,
		CASE WHEN expires > 0 THEN to_timestamp(expires / 1000.0) END AS expires
	FROM ` + n.items,
		// layout: the version of this layout; outbox_trimmed: the highest
		// seq trimmed, so that the outbox's Last survives a trim emptying it.
		fmt.Sprintf(`INSERT INTO %s (name, value) VALUES ('layout', %d), ('outbox_trimmed', 0) ON CONFLICT (name) DO NOTHING`, n.meta, layoutVersion),
	}
}

// MigrationSQL returns the SQL that creates the store's tables and
// indexes in schema (DefaultSchema when empty), for a database where the
// store runs with create_tables false. Running it again changes nothing.
func MigrationSQL(schema string) string {
	if schema == "" {
		schema = DefaultSchema
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "-- iotod postgres storage, layout %d, schema %s\nBEGIN;\n", layoutVersion, schema)
	for _, q := range ddl(schema) {
		sb.WriteString(q)
		sb.WriteString(";\n")
	}
	sb.WriteString("COMMIT;\n")
	return sb.String()
}

// lockKey is the advisory lock key of what for schema: a transaction-level
// advisory lock on it serializes what across every process on the schema.
func lockKey(what, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("iotod postgres " + what + " " + schema))
	return int64(h.Sum64())
}

// ensureTables checks the schema's tables, creating what is missing when
// create_tables is on, and their layout version.
func (s *Store) ensureTables(ctx context.Context) error {
	missing, err := s.missingRelations(ctx)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		if !s.cfg.CreateTables {
			return pipeline.Permanent(fmt.Errorf("%s: schema %q lacks %s and create_tables is false: create them with the SQL of `iotod storage migrate --print` (postgres.MigrationSQL) or set create_tables: true",
				s.where, s.cfg.Schema, strings.Join(missing, ", ")))
		}
		if err := s.createTables(ctx); err != nil {
			return err
		}
	}
	var v int64
	err = s.pool.QueryRow(ctx, "SELECT value FROM "+s.n.meta+" WHERE name = 'layout'").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Permanent(fmt.Errorf("%s: schema %q: table meta has no layout row: not an iotod store, it was left as it is", s.where, s.cfg.Schema))
	}
	if err != nil {
		return s.fail("read the layout version", err)
	}
	if v != layoutVersion {
		return pipeline.Permanent(fmt.Errorf("%s: schema %q holds layout %d, this iotod reads layout %d", s.where, s.cfg.Schema, v, layoutVersion))
	}
	return nil
}

// missingRelations lists the tables and indexes the schema lacks.
func (s *Store) missingRelations(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = ANY($2)`, s.cfg.Schema, relations)
	if err != nil {
		return nil, s.fail("read the schema", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.fail("read the schema", err)
	}
	var missing []string
	for _, r := range relations {
		if !slices.Contains(found, r) {
			missing = append(missing, r)
		}
	}
	return missing, nil
}

// createTables runs the DDL in one transaction, under an advisory lock so
// that stores starting together on a new schema do not race.
func (s *Store) createTables(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail("create tables", err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("ddl", s.cfg.Schema)); err != nil {
		return s.fail("create tables", err)
	}
	for _, q := range ddl(s.cfg.Schema) {
		if _, err := tx.Exec(ctx, q); err != nil {
			return s.fail("create tables", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail("create tables", err)
	}
	s.log.Info("postgres storage: created the tables", "where", s.where, "schema", s.cfg.Schema)
	return nil
}
