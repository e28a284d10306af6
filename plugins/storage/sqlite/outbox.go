package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// outbox is the pipeline.Outbox of a Store: the outbox table.
type outbox struct{ s *Store }

// Read returns up to max changes with Seq > after, in Seq order. The one
// writer assigns Seqs in commit order, so a reader never sees a gap that a
// later commit fills.
func (o outbox) Read(ctx context.Context, after uint64, max int) ([]pipeline.Change, error) {
	if err := o.s.enter(); err != nil {
		return nil, err
	}
	defer o.s.leave()
	if max <= 0 {
		return nil, nil
	}
	rows, err := o.s.reader.QueryContext(ctx, "SELECT seq, model, op, pk, sk, item, wall, counter, vorigin, origin, time FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", int64(after), max)
	if err != nil {
		return nil, fmt.Errorf("sqlite storage %s: outbox read: %w", o.s.cfg.Path, err)
	}
	defer rows.Close()
	var out []pipeline.Change
	for rows.Next() {
		var ch pipeline.Change
		var seq, counter int64
		var op string
		var pk, sk, item []byte
		if err := rows.Scan(&seq, &ch.Model, &op, &pk, &sk, &item, &ch.Version.Wall, &counter, &ch.Version.Origin, &ch.Origin, &ch.Time); err != nil {
			return nil, fmt.Errorf("sqlite storage %s: outbox read: %w", o.s.cfg.Path, err)
		}
		ch.Seq, ch.Op, ch.Version.Counter = uint64(seq), pipeline.Op(op), uint32(counter)
		ch.Key = pipeline.Key{PK: string(pk), SK: string(sk)}
		if item != nil {
			ch.Item = item
		}
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite storage %s: outbox read: %w", o.s.cfg.Path, err)
	}
	return out, nil
}

// Trim deletes every change with Seq <= upTo, through the writer (its own
// update, so it commits with the others waiting).
func (o outbox) Trim(ctx context.Context, upTo uint64) error {
	return o.s.Update(ctx, func(tx pipeline.Tx) error {
		_, err := tx.(*writeTx).q.ExecContext(ctx, "DELETE FROM outbox WHERE seq <= ?", int64(min(upTo, 1<<63-1)))
		if err != nil {
			return fmt.Errorf("sqlite storage %s: outbox trim: %w", o.s.cfg.Path, writeErr(err))
		}
		return nil
	})
}

// Stats reports the outbox's depth and bounds; Last is the highest Seq
// ever assigned, kept by SQLite across trims and restarts.
func (o outbox) Stats(ctx context.Context) (pipeline.OutboxStats, error) {
	if err := o.s.enter(); err != nil {
		return pipeline.OutboxStats{}, err
	}
	defer o.s.leave()
	var st pipeline.OutboxStats
	var first, oldest sql.NullInt64
	var last sql.NullInt64
	err := o.s.reader.QueryRowContext(ctx, `SELECT count(*), min(seq), (SELECT time FROM outbox ORDER BY seq LIMIT 1),
		(SELECT seq FROM sqlite_sequence WHERE name = 'outbox') FROM outbox`).Scan(&st.Depth, &first, &oldest, &last)
	if err != nil {
		return st, fmt.Errorf("sqlite storage %s: outbox stats: %w", o.s.cfg.Path, err)
	}
	st.First, st.Last = uint64(first.Int64), uint64(last.Int64)
	if oldest.Valid {
		st.Oldest = time.UnixMilli(oldest.Int64)
	}
	return st, nil
}

// Notify receives a value after commits that emitted changes.
func (o outbox) Notify() <-chan struct{} { return o.s.notify }
