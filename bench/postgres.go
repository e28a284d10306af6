//go:build !device

package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/postgres"
	"github.com/iotod/iotod/schema"
)

// PostgresOptions configure `iotod bench postgres`.
type PostgresOptions struct {
	// URL is the PostgreSQL server and database (postgres://...). The
	// bench creates schemas of its own there and drops them at the end.
	URL string
	// Changes applied per run (50,000).
	Changes int
	// Appliers is the number of concurrent appliers, each on its own
	// keys, for iotod and for the baseline's writers (8).
	Appliers int
	// Batch is the changes per db.Apply call, and the rows per statement
	// of the baseline (500, the ingest pipeline's batch).
	Batch int
	// Runs per figure; the median is reported (3).
	Runs int
	// Dir is a folder for the device store the changes are made in
	// (default: a new temporary folder).
	Dir string
	// Out receives the report.
	Out io.Writer
	// JSON prints the figures as one JSON document on Out instead of the
	// text report.
	JSON bool
}

// maxRawBatch is the most rows one baseline statement takes: six
// parameters a row, and a statement has at most 65,535.
const maxRawBatch = 65_535 / 6

func (o *PostgresOptions) defaults() {
	if o.Changes == 0 {
		o.Changes = 50_000
	}
	if o.Appliers == 0 {
		o.Appliers = 8
	}
	if o.Batch == 0 {
		o.Batch = applyBatch
	}
	if o.Runs == 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

// PostgresReport is `iotod bench postgres --json`: every figure of the
// text report.
type PostgresReport struct {
	Machine string `json:"machine"`
	// Server is host:port/database and the server's version (never the
	// URL: it may hold a password).
	Server   string `json:"server"`
	Changes  int    `json:"changes"`
	Appliers int    `json:"appliers"`
	Batch    int    `json:"batch"`
	Runs     int    `json:"runs"`
	// Iotod is db.Apply on the postgres store, in changes/s.
	Iotod PostgresFigure `json:"iotod"`
	// Raw is the pgx INSERT ... ON CONFLICT loop, in changes/s.
	Raw PostgresFigure `json:"raw"`
	// Ratio is iotod's rate over the raw rate, per run (the median of the
	// runs' ratios).
	Ratio PostgresFigure `json:"ratio"`
	// Updates is, per run, how many store updates iotod's applies made,
	// and Retried how many of them ran again after a serialization
	// failure or deadlock.
	Updates []int64 `json:"iotod_updates"`
	Retried []int64 `json:"iotod_updates_retried"`
}

// PostgresFigure is a median and the runs it is the median of.
type PostgresFigure struct {
	Median float64   `json:"median"`
	Runs   []float64 `json:"runs"`
}

func postgresFigure(xs []float64) PostgresFigure { return PostgresFigure{Median: median(xs), Runs: xs} }

// rawRow is one row of the baseline: what the store wrote for a change.
type rawRow struct {
	pk, sk, item  []byte
	wall, counter int64
	origin        string
}

// RunPostgres measures P6 on PostgreSQL: device changes applied through
// db.Apply on a cloud database over the postgres store (validation,
// last-writer-wins against what is stored, SERIALIZABLE updates) against
// a raw pgx loop writing the same rows with one multi-row INSERT ... ON
// CONFLICT DO UPDATE ... WHERE (last-writer-wins in the statement) per
// batch, at the same concurrency and batch size, each in a fresh schema,
// alternating in the same run. The schemas are dropped afterwards.
func RunPostgres(ctx context.Context, o PostgresOptions) error {
	o.defaults()
	if o.URL == "" {
		return fmt.Errorf("%w: bench postgres: no server URL (--url, or $IOTOD_POSTGRES_URL: start PostgreSQL with scripts/services.sh start)", pipeline.ErrInvalid)
	}
	switch {
	case o.Changes < 1, o.Appliers < 1, o.Runs < 1:
		return fmt.Errorf("%w: bench postgres: --changes, --appliers and --runs must be at least 1", pipeline.ErrInvalid)
	case o.Batch < 1 || o.Batch > maxRawBatch:
		return fmt.Errorf("%w: bench postgres: --batch must be 1 to %d (the baseline's statement takes 6 parameters a row)", pipeline.ErrInvalid, maxRawBatch)
	}
	pc, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return fmt.Errorf("%w: bench postgres: the URL is not a valid postgres URL (not shown: it may hold a password)", pipeline.ErrInvalid)
	}
	where := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))) + "/" + pc.ConnConfig.Database
	sch, err := schema.ParseBytes([]byte(benchSchema), "json", "bench")
	if err != nil {
		return err
	}
	changes, err := deviceChanges(ctx, o.Dir, o.Changes)
	if err != nil {
		return fmt.Errorf("making the device changes: %w", err)
	}
	// The baseline's writers, one connection each, and one for the
	// bench's own statements (schemas, counts, checkpoints).
	pc.MaxConns = int32(o.Appliers + 1)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("bench postgres: %s: %w", where, err)
	}
	defer pool.Close()
	var version string
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return fmt.Errorf("bench postgres: %s: %w", where, err)
	}
	server := fmt.Sprintf("%s (PostgreSQL %s)", where, version)
	text := o.Out
	if o.JSON {
		text = io.Discard
	}
	report := &PostgresReport{Machine: fmt.Sprintf("%s/%s, %d CPUs, Go %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		Server: server, Changes: o.Changes, Appliers: o.Appliers, Batch: o.Batch, Runs: o.Runs}
	fmt.Fprintf(text, "iotod bench postgres: %s, server %s, %d changes, %d appliers, batches of %d, median of %d runs\n",
		report.Machine, server, o.Changes, o.Appliers, o.Batch, o.Runs)

	// A checkpoint before each measurement, so that neither side pays
	// more of one; skipped when the role may not (superuser or
	// pg_checkpoint).
	checkpoint := true
	settle := func() {
		if checkpoint {
			if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
				checkpoint = false
				fmt.Fprintf(text, "(no CHECKPOINT before each measurement: %v)\n", err)
			}
		}
	}

	prefix := fmt.Sprintf("iotod_bench_%d", time.Now().UnixNano())
	var plugin, raw, ratios []float64
	var rows []rawRow
	for r := 0; r < o.Runs; r++ {
		measurePlugin := func() (float64, error) {
			name := fmt.Sprintf("%s_%d_iotod", prefix, r)
			defer dropBenchSchema(pool, name)
			settle()
			rate, updates, retried, err := pgIotodApply(ctx, sch, name, changes, o)
			if err == nil {
				report.Updates, report.Retried = append(report.Updates, updates), append(report.Retried, retried)
				err = checkCount(ctx, pool, "SELECT count(*) FROM "+pgx.Identifier{name, "items"}.Sanitize()+" WHERE model = 'Bench'", len(changes))
			}
			if err == nil && rows == nil {
				// The baseline writes exactly what the store wrote.
				rows, err = storedRows(ctx, pool, name, changes)
			}
			if err != nil {
				return 0, fmt.Errorf("P6 iotod, run %d: %w", r+1, err)
			}
			return rate, nil
		}
		measureRaw := func() (float64, error) {
			name := fmt.Sprintf("%s_%d_raw", prefix, r)
			defer dropBenchSchema(pool, name)
			settle()
			rate, err := rawUpserts(ctx, pool, name, rows, o)
			if err == nil {
				err = checkCount(ctx, pool, "SELECT count(*) FROM "+pgx.Identifier{name, "t"}.Sanitize(), len(rows))
			}
			if err != nil {
				return 0, fmt.Errorf("P6 baseline, run %d: %w", r+1, err)
			}
			return rate, nil
		}
		// The order alternates so neither side always comes first (the
		// first run must apply first, to have the rows).
		p, b, err := alternate(r, measurePlugin, measureRaw)
		if err != nil {
			return err
		}
		plugin, raw, ratios = append(plugin, p), append(raw, b), append(ratios, p/b)
	}
	report.Iotod, report.Raw, report.Ratio = postgresFigure(plugin), postgresFigure(raw), postgresFigure(ratios)
	if o.JSON {
		return printJSON(o.Out, report)
	}
	retried := make([]string, len(report.Retried))
	for i, n := range report.Retried {
		retried[i] = fmt.Sprintf("%d of %d", n, report.Updates[i])
	}
	fmt.Fprintf(o.Out, "\nP6 cloud apply into PostgreSQL (~200-byte items, batches of %d, %d appliers on distinct keys, a fresh schema per run)\n", o.Batch, o.Appliers)
	label := func(s string) string { return fmt.Sprintf("  %-44s", s) }
	fmt.Fprintf(o.Out, "%s%9.0f changes/s  (runs: %s)\n", label("iotod db.Apply, postgres store"), report.Iotod.Median, runList(plugin, "%.0f"))
	fmt.Fprintf(o.Out, "%s%9.0f changes/s  (runs: %s)\n", label(fmt.Sprintf("raw pgx INSERT ... ON CONFLICT, %d rows/stmt", o.Batch)), report.Raw.Median, runList(raw, "%.0f"))
	fmt.Fprintf(o.Out, "%s%9.2fx  (median of each run's ratio; runs: %s; bar: >= 0.9x)\n", label("ratio"), report.Ratio.Median, runList(ratios, "%.2f"))
	fmt.Fprintf(o.Out, "  iotod's updates run again after a serialization failure or deadlock: %s (per run)\n", strings.Join(retried, ", "))
	return nil
}

// retryCounter counts the runs of Update's function: more runs than
// updates are updates the store ran again after a conflict.
type retryCounter struct {
	pipeline.Store
	updates, runs atomic.Int64
}

func (s *retryCounter) Update(ctx context.Context, fn func(tx pipeline.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, func(tx pipeline.Tx) error {
		s.runs.Add(1)
		return fn(tx)
	})
}

// pgIotodApply opens a cloud database on the postgres store in a fresh
// schema (created by the store, with its defaults: listen and the feed
// lease on, as a cloud worker runs it) and applies the changes through
// db.Apply, o.Appliers appliers each on its own share in batches of
// o.Batch. Opening the store is not timed. It returns changes/s, the
// store updates made and how many of them ran again after a conflict.
func pgIotodApply(ctx context.Context, sch *schema.Schema, name string, changes []pipeline.Change, o PostgresOptions) (rate float64, updates, retried int64, err error) {
	cfg := postgres.NewDefaultConfig()
	cfg.URL, cfg.Schema = o.URL, name
	cfg.MaxConns = max(cfg.MaxConns, o.Appliers)
	st, err := postgres.Open(ctx, cfg, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	defer st.Close(ctx)
	counted := &retryCounter{Store: st}
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: counted, Site: "cloud", Side: schema.SideCloud})
	if err != nil {
		return 0, 0, 0, err
	}
	defer cloud.Close(ctx)
	elapsed, err := applyAll(ctx, cloud, changes, o.Appliers, o.Batch)
	if err != nil {
		return 0, 0, 0, err
	}
	updates = counted.updates.Load()
	return float64(len(changes)) / elapsed.Seconds(), updates, counted.runs.Load() - updates, nil
}

// storedRows reads back what the store wrote for the changes, in the
// changes' order, so that each baseline writer writes the keys of the
// iotod applier of the same share.
func storedRows(ctx context.Context, pool *pgxpool.Pool, name string, changes []pipeline.Change) ([]rawRow, error) {
	q, err := pool.Query(ctx, "SELECT pk, sk, item, wall, counter, origin FROM "+pgx.Identifier{name, "items"}.Sanitize()+" WHERE model = 'Bench'")
	if err != nil {
		return nil, err
	}
	byKey := make(map[pipeline.Key]rawRow, len(changes))
	var row rawRow
	_, err = pgx.ForEachRow(q, []any{&row.pk, &row.sk, &row.item, &row.wall, &row.counter, &row.origin}, func() error {
		byKey[pipeline.Key{PK: string(row.pk), SK: string(row.sk)}] = row
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]rawRow, len(changes))
	for i, c := range changes {
		r, ok := byKey[c.Key]
		if !ok {
			return nil, fmt.Errorf("schema %s holds no item at %s", name, c.Key)
		}
		rows[i] = r
	}
	return rows, nil
}

// rawTable is the baseline's table: the columns of the store's items
// that last-writer-wins needs, of the same types, keyed the same way.
const rawTable = `CREATE TABLE %s (
	pk bytea NOT NULL,
	sk bytea NOT NULL,
	item bytea NOT NULL,
	wall bigint NOT NULL,
	counter bigint NOT NULL,
	origin text NOT NULL,
	PRIMARY KEY (pk, sk))`

// rawUpsertSQL is the baseline's statement for n rows: one multi-row
// upsert whose update applies only when the row's version is newer
// (last-writer-wins in the statement).
func rawUpsertSQL(table string, n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table + " AS t (pk, sk, item, wall, counter, origin) VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		p := 6*i + 1
		fmt.Fprintf(&sb, "($%d,$%d,$%d,$%d,$%d,$%d)", p, p+1, p+2, p+3, p+4, p+5)
	}
	sb.WriteString(" ON CONFLICT (pk, sk) DO UPDATE SET item = EXCLUDED.item, wall = EXCLUDED.wall, counter = EXCLUDED.counter, origin = EXCLUDED.origin" +
		" WHERE (t.wall, t.counter, t.origin) < (EXCLUDED.wall, EXCLUDED.counter, EXCLUDED.origin)")
	return sb.String()
}

// rawUpserts writes rows into a fresh table t in a schema of its own with
// rawUpsertSQL, one statement (and so one transaction) per batch of
// o.Batch rows, o.Appliers writers each on its own share. Creating the
// table is not timed.
func rawUpserts(ctx context.Context, pool *pgxpool.Pool, name string, rows []rawRow, o PostgresOptions) (float64, error) {
	table := pgx.Identifier{name, "t"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		return 0, err
	}
	if _, err := pool.Exec(ctx, fmt.Sprintf(rawTable, table)); err != nil {
		return 0, err
	}
	full := rawUpsertSQL(table, o.Batch)
	elapsed, err := parallel(ctx, len(rows), o.Appliers, func(ctx context.Context, lo, hi int) error {
		args := make([]any, 0, 6*o.Batch)
		for i := lo; i < hi; i += o.Batch {
			batch := rows[i:min(i+o.Batch, hi)]
			args = args[:0]
			for _, r := range batch {
				args = append(args, r.pk, r.sk, r.item, r.wall, r.counter, r.origin)
			}
			sql := full
			if len(batch) < o.Batch {
				sql = rawUpsertSQL(table, len(batch))
			}
			if _, err := pool.Exec(ctx, sql, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(len(rows)) / elapsed.Seconds(), nil
}

// checkCount fails unless the count query q returns want.
func checkCount(ctx context.Context, pool *pgxpool.Pool, q string, want int) error {
	var n int
	if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("%s: %d rows, want %d", q, n, want)
	}
	return nil
}

// dropBenchSchema drops a schema the bench made, and everything in it.
func dropBenchSchema(pool *pgxpool.Pool, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		fmt.Fprintf(os.Stderr, "iotod bench postgres: drop schema %s: %v\n", name, err)
	}
}
