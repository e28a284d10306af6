package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// notifyChannel is the LISTEN/NOTIFY channel of outbox commits; the
// payload is the schema.
const notifyChannel = "iotod_outbox"

// writeEmits sends the update's pending writes and inserts its changes
// into the outbox, in order, as the last statements before the commit
// (in the same round trip), under the schema's advisory lock: held until
// the commit, it makes every process's outbox inserts wait for the
// previous commit, so seqs are assigned in commit order and a reader that
// sees a seq sees every lower one (doc.go). It returns the seqs, which
// Update gives the changes once the commit succeeded.
func (t *writeTx) writeEmits(ctx context.Context) ([]uint64, error) {
	if len(t.emits) == 0 {
		return nil, t.flush(ctx)
	}
	b := &pgx.Batch{}
	t.queueWrites(b)
	b.Queue("SELECT pg_advisory_xact_lock($1)", t.s.seqLock)
	seqs := make([]uint64, len(t.emits))
	for i, ch := range t.emits {
		if ch.Time == 0 {
			ch.Time = nowMillis()
		}
		var item []byte
		if ch.Item != nil {
			item = []byte(ch.Item)
		}
		b.Queue(t.s.sql.insertOutbox, ch.Model, string(ch.Op), []byte(ch.Key.PK), []byte(ch.Key.SK), item,
			ch.Version.Wall, int64(ch.Version.Counter), ch.Version.Origin, ch.Origin, ch.Time).QueryRow(func(row pgx.Row) error {
			var seq int64
			err := row.Scan(&seq)
			seqs[i] = uint64(seq)
			return err
		})
	}
	if t.s.cfg.Listen {
		b.Queue("SELECT pg_notify($1, $2)", notifyChannel, t.s.cfg.Schema)
	}
	if err := t.send(ctx, b, "outbox"); err != nil {
		return nil, err
	}
	return seqs, nil
}

// outbox is the pipeline.Outbox of a Store: the outbox table.
type outbox struct{ s *Store }

// Read returns up to max changes with Seq > after, in Seq order, from one
// statement's snapshot: seqs are assigned in commit order, so no change
// with a lower seq can commit after it. With the feed lease (feed_lease),
// a store that does not hold it reads nothing: another worker sends.
func (o outbox) Read(ctx context.Context, after uint64, max int) ([]pipeline.Change, error) {
	s := o.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if max <= 0 || (s.feed != nil && !s.feed.holds(ctx)) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT seq, model, op, pk, sk, item, wall, counter, vorigin, origin, time FROM "+s.n.outbox+
		" WHERE seq > $1 ORDER BY seq LIMIT $2", int64(min(after, 1<<63-1)), max)
	if err != nil {
		return nil, s.fail("outbox read", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pipeline.Change, error) {
		var ch pipeline.Change
		var seq, counter int64
		var op string
		var pk, sk, item []byte
		err := row.Scan(&seq, &ch.Model, &op, &pk, &sk, &item, &ch.Version.Wall, &counter, &ch.Version.Origin, &ch.Origin, &ch.Time)
		ch.Seq, ch.Op, ch.Version.Counter = uint64(seq), pipeline.Op(op), uint32(counter)
		ch.Key = pipeline.Key{PK: string(pk), SK: string(sk)}
		if item != nil {
			ch.Item = item
		}
		return ch, err
	})
	if err != nil {
		return nil, s.fail("outbox read", err)
	}
	return out, nil
}

// Trim deletes every change with Seq <= upTo and records the highest seq
// it deleted, so Last stays where it was when the outbox empties.
func (o outbox) Trim(ctx context.Context, upTo uint64) error {
	s := o.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	_, err := s.pool.Exec(ctx, "WITH gone AS (DELETE FROM "+s.n.outbox+" WHERE seq <= $1 RETURNING seq) UPDATE "+s.n.meta+
		" SET value = greatest(value, (SELECT coalesce(max(seq), 0) FROM gone)) WHERE name = 'outbox_trimmed'", int64(min(upTo, 1<<63-1)))
	if err != nil {
		return s.fail("outbox trim", err)
	}
	return nil
}

// Stats reports the outbox's depth and bounds from one snapshot; Last is
// the highest seq kept or trimmed, so it never goes backwards.
func (o outbox) Stats(ctx context.Context) (pipeline.OutboxStats, error) {
	s := o.s
	if err := s.enter(); err != nil {
		return pipeline.OutboxStats{}, err
	}
	defer s.leave()
	var st pipeline.OutboxStats
	var first, last, oldest *int64
	var trimmed int64
	err := s.pool.QueryRow(ctx, "SELECT count(*), min(seq), max(seq), (SELECT time FROM "+s.n.outbox+" ORDER BY seq LIMIT 1), "+
		"(SELECT value FROM "+s.n.meta+" WHERE name = 'outbox_trimmed') FROM "+s.n.outbox).Scan(&st.Depth, &first, &last, &oldest, &trimmed)
	if err != nil {
		return st, s.fail("outbox stats", err)
	}
	if first != nil {
		st.First = uint64(*first)
	}
	st.Last = uint64(trimmed)
	if last != nil && uint64(*last) > st.Last {
		st.Last = uint64(*last)
	}
	if oldest != nil {
		st.Oldest = time.UnixMilli(*oldest)
	}
	return st, nil
}

// Notify receives a value after commits that emitted changes: this
// store's, and with listen, those of other processes on the schema.
func (o outbox) Notify() <-chan struct{} { return o.s.notify }

// String names the outbox in messages.
func (o outbox) String() string { return fmt.Sprintf("%s schema %s outbox", o.s.where, o.s.cfg.Schema) }
