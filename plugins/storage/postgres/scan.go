package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// Pages of a scan: the first is small (a find often wants a few), the
// next ones grow up to the last.
const (
	firstPage = 64
	lastPage  = 1024
)

// Scan calls fn for each live record q selects, in key order (or
// reverse), strictly after q.After, until fn returns false or an error.
// The primary index walks items by (pk, sk); a secondary index walks its
// entries by (hash, sort, pk, sk): byte order, as badger orders its keys.
// It reads a page at a time (a keyset query resuming after the last row,
// in the transaction's one snapshot), so fn may use the transaction.
func (t *readTx) Scan(ctx context.Context, q pipeline.Query, fn func(*pipeline.Record, pipeline.Position) (bool, error)) error {
	if err := q.Sort.Validate(); err != nil {
		return fmt.Errorf("%s: scan: %w", t.s.where, err)
	}
	if err := t.flush(ctx); err != nil {
		return err
	}
	after, size := q.After, firstPage
	for {
		page, err := t.scanPage(ctx, q, after, size)
		if err != nil {
			return err
		}
		for i := range page {
			more, err := fn(page[i].rec, page[i].pos)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < size {
			return nil
		}
		after = &page[len(page)-1].pos
		size = min(size*4, lastPage)
		// fn may have written: the next page reads those writes too.
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
}

type scanned struct {
	rec *pipeline.Record
	pos pipeline.Position
}

// scanPage reads up to limit records of q after position after.
func (t *readTx) scanPage(ctx context.Context, q pipeline.Query, after *pipeline.Position, limit int) ([]scanned, error) {
	primary := q.Index == "" || q.Index == pipeline.PrimaryIndex
	var sb strings.Builder
	var args []any
	arg := func(v []byte) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	hashCol, sortCol := "r.pk", "r.sk"
	if primary {
		sb.WriteString("SELECT " + recordColumns + ", r.pk, r.sk FROM " + t.s.n.items + " r WHERE ")
	} else {
		hashCol, sortCol = "e.hash", "e.sort"
		sb.WriteString("SELECT " + recordColumns + ", e.hash, e.sort FROM " + t.s.n.entries + " e JOIN " + t.s.n.items +
			" r ON r.pk = e.pk AND r.sk = e.sk WHERE e.ix = " + arg([]byte(q.Index)) + " AND ")
	}
	// The hash key: equal, or a prefix as a range.
	if q.HashPrefix {
		sb.WriteString(hashCol + " >= " + arg([]byte(q.Hash)))
		if end := pipeline.PrefixEnd([]byte(q.Hash)); end != nil {
			sb.WriteString(" AND " + hashCol + " < " + arg(end))
		}
	} else {
		sb.WriteString(hashCol + " = " + arg([]byte(q.Hash)))
	}
	sortCondition(&sb, sortCol, q.Sort, arg)
	args = append(args, t.now)
	sb.WriteString(" AND (r.expires = 0 OR r.expires > $" + strconv.Itoa(len(args)) + ")")
	cmp, desc := " > ", ""
	if q.Reverse {
		cmp, desc = " < ", " DESC"
	}
	if a := after; a != nil {
		if primary {
			sb.WriteString(" AND (r.pk, r.sk)" + cmp + "(" + arg([]byte(a.Key.PK)) + ", " + arg([]byte(a.Key.SK)) + ")")
		} else {
			// With ix, so the row comparison starts at the index's first column.
			sb.WriteString(" AND (e.ix, e.hash, e.sort, e.pk, e.sk)" + cmp + "(" + arg([]byte(q.Index)) + ", " + arg([]byte(a.Hash)) + ", " +
				arg([]byte(a.Sort)) + ", " + arg([]byte(a.Key.PK)) + ", " + arg([]byte(a.Key.SK)) + ")")
		}
	}
	if primary {
		sb.WriteString(" ORDER BY r.pk" + desc + ", r.sk" + desc)
	} else {
		sb.WriteString(" ORDER BY e.hash" + desc + ", e.sort" + desc + ", e.pk" + desc + ", e.sk" + desc)
	}
	args = append(args, limit)
	sb.WriteString(" LIMIT $" + strconv.Itoa(len(args)))
	rows, err := t.q.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, t.s.fail("scan "+pipeline.Quote(q.Hash), err)
	}
	page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (scanned, error) {
		var hash, sort []byte
		r, err := scanRecord(rowPlus{row, []any{&hash, &sort}})
		if err != nil {
			return scanned{}, err
		}
		return scanned{rec: r, pos: pipeline.Position{Hash: string(hash), Sort: string(sort), Key: r.Key}}, nil
	})
	if err != nil {
		return nil, t.s.fail("scan "+pipeline.Quote(q.Hash), err)
	}
	return page, nil
}

// rowPlus scans a row of recordColumns followed by more columns.
type rowPlus struct {
	pgx.Row
	more []any
}

func (r rowPlus) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.more...)...) }

// sortCondition adds c on col to the query, its values as bytea.
func sortCondition(sb *strings.Builder, col string, c pipeline.SortCond, arg func([]byte) string) {
	v := func(i int) []byte { return []byte(c.Values[i]) }
	switch c.Op {
	case pipeline.SortBegins:
		sb.WriteString(" AND " + col + " >= " + arg(v(0)))
		if end := pipeline.PrefixEnd(v(0)); end != nil {
			sb.WriteString(" AND " + col + " < " + arg(end))
		}
	case pipeline.SortBetween:
		sb.WriteString(" AND " + col + " >= " + arg(v(0)) + " AND " + col + " <= " + arg(v(1)))
	case pipeline.SortEQ, pipeline.SortLT, pipeline.SortLE, pipeline.SortGE, pipeline.SortGT:
		sb.WriteString(" AND " + col + " " + string(c.Op) + " " + arg(v(0)))
	}
}
