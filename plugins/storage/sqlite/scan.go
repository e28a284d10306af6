package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// Scan calls fn for each live record q selects, in key order (or
// reverse), strictly after q.After, until fn returns false or an error.
// The primary index walks records by (pk, sk); a secondary index walks its
// entries by (hash, sort, pk, sk), as badger orders its keys.
func (t *readTx) Scan(ctx context.Context, q pipeline.Query, fn func(*pipeline.Record, pipeline.Position) (bool, error)) error {
	if err := q.Sort.Validate(); err != nil {
		return fmt.Errorf("sqlite storage: scan: %w", err)
	}
	primary := q.Index == "" || q.Index == pipeline.PrimaryIndex
	var sb strings.Builder
	var args []any
	hashCol, sortCol, order := "r.pk", "r.sk", []string{"r.pk", "r.sk"}
	if primary {
		sb.WriteString("SELECT r.pk, r.sk, r.model, r.item, r.wall, r.counter, r.origin, r.expires, r.indexes, r.pk, r.sk FROM records r WHERE ")
	} else {
		hashCol, sortCol, order = "e.hash", "e.sort", []string{"e.hash", "e.sort", "e.pk", "e.sk"}
		sb.WriteString("SELECT r.pk, r.sk, r.model, r.item, r.wall, r.counter, r.origin, r.expires, r.indexes, e.hash, e.sort " +
			"FROM entries e JOIN records r ON r.pk = e.pk AND r.sk = e.sk WHERE e.ix = ? AND ")
		args = append(args, []byte(q.Index))
	}
	// The hash key: equal, or a prefix as a range.
	if q.HashPrefix {
		sb.WriteString(hashCol + " >= ?")
		args = append(args, []byte(q.Hash))
		if end := pipeline.PrefixEnd([]byte(q.Hash)); end != nil {
			sb.WriteString(" AND " + hashCol + " < ?")
			args = append(args, end)
		}
	} else {
		sb.WriteString(hashCol + " = ?")
		args = append(args, []byte(q.Hash))
	}
	args = sortCondition(&sb, sortCol, q.Sort, args)
	sb.WriteString(" AND (r.expires = 0 OR r.expires > ?)")
	args = append(args, t.now)
	if a := q.After; a != nil {
		cmp := ">"
		if q.Reverse {
			cmp = "<"
		}
		if primary {
			sb.WriteString(" AND (r.pk, r.sk) " + cmp + " (?, ?)")
			args = append(args, []byte(a.Key.PK), []byte(a.Key.SK))
		} else {
			sb.WriteString(" AND (e.hash, e.sort, e.pk, e.sk) " + cmp + " (?, ?, ?, ?)")
			args = append(args, []byte(a.Hash), []byte(a.Sort), []byte(a.Key.PK), []byte(a.Key.SK))
		}
	}
	sb.WriteString(" ORDER BY ")
	for i, c := range order {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c)
		if q.Reverse {
			sb.WriteString(" DESC")
		}
	}
	rows, err := t.q.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return fmt.Errorf("sqlite storage: scan %s: %w", q.Hash, err)
	}
	defer rows.Close()
	for rows.Next() {
		var hash, sort []byte
		var pk, sk, item, indexes []byte
		r := &pipeline.Record{}
		var counter int64
		if err := rows.Scan(&pk, &sk, &r.Model, &item, &r.Version.Wall, &counter, &r.Version.Origin, &r.Expires, &indexes, &hash, &sort); err != nil {
			return fmt.Errorf("sqlite storage: scan %s: %w", q.Hash, err)
		}
		r.Key = pipeline.Key{PK: string(pk), SK: string(sk)}
		r.Version.Counter = uint32(counter)
		r.Item = item
		if err := decodeIndexes(r, indexes); err != nil {
			return err
		}
		more, err := fn(r, pipeline.Position{Hash: string(hash), Sort: string(sort), Key: r.Key})
		if err != nil || !more {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite storage: scan %s: %w", q.Hash, err)
	}
	return nil
}

// sortCondition adds c on col to the query.
func sortCondition(sb *strings.Builder, col string, c pipeline.SortCond, args []any) []any {
	v := func(i int) []byte { return []byte(c.Values[i]) }
	switch c.Op {
	case pipeline.SortBegins:
		sb.WriteString(" AND " + col + " >= ?")
		args = append(args, v(0))
		if end := pipeline.PrefixEnd(v(0)); end != nil {
			sb.WriteString(" AND " + col + " < ?")
			args = append(args, end)
		}
	case pipeline.SortBetween:
		sb.WriteString(" AND " + col + " >= ? AND " + col + " <= ?")
		args = append(args, v(0), v(1))
	case pipeline.SortEQ, pipeline.SortLT, pipeline.SortLE, pipeline.SortGE, pipeline.SortGT:
		sb.WriteString(" AND " + col + " " + string(c.Op) + " ?")
		args = append(args, v(0))
	}
	return args
}
