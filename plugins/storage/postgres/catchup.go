package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/iotod/iotod/pipeline"
)

// findPage is how many records one query of a catch-up reads.
const findPage = 500

// FindChanges answers a catch-up from the indexes items_owner and
// items_model (pipeline.ChangeFinder): the records whose owner is
// q.Site, those of the q.Broadcast models and the tombstones without an
// owner (another device's are none of this one's business), each changed
// (version wall time) at or after q.Since, or without a version. Each
// group is read in pages, each page a statement of its own (no
// transaction held while fn works); a record rewritten meanwhile may
// show up in a later page too, and is passed to fn only once.
func (s *Store) FindChanges(ctx context.Context, q pipeline.ChangeQuery, fn func(*pipeline.Record) (bool, error)) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	switch {
	case s.cfg.OwnerAttribute == "":
		return fmt.Errorf("%s: owner_attribute is empty, no catch-up index: %w", s.where, errors.ErrUnsupported)
	case q.Owner != s.cfg.OwnerAttribute:
		return fmt.Errorf("%s: the catch-up index is on %q, the pipeline's owner is %q: %w", s.where, s.cfg.OwnerAttribute, q.Owner, errors.ErrUnsupported)
	}
	since := int64(0)
	if !q.Since.IsZero() {
		since = max(q.Since.UnixMilli(), 1)
	}
	now := nowMillis()
	seen := map[pipeline.Key]bool{}
	// visit passes on each live record once; false stops everything.
	visit := func(r *pipeline.Record) (bool, error) {
		if seen[r.Key] || (r.Expires != 0 && r.Expires <= now) {
			return true, nil
		}
		seen[r.Key] = true
		return fn(r)
	}
	type group struct {
		what string
		cond string // on r, with $1 and $2 args
		args []any
	}
	groups := []group{}
	if q.Site != "" {
		groups = append(groups, group{"owner " + pipeline.Quote(q.Site), "r.owner = $1", []any{q.Site}})
	}
	for _, m := range q.Broadcast {
		// Those owned by the device were read with its own.
		groups = append(groups, group{"model " + pipeline.Quote(m), "r.model = $1 AND (r.owner IS NULL OR r.owner <> $2)", []any{m, q.Site}})
	}
	groups = append(groups, group{"tombstones", "r.model = $1 AND r.owner IS NULL", []any{tombstoneModel}})
	for _, g := range groups {
		// Records without a version first (wall 0, written as they are),
		// then those changed since q.Since.
		ranges := [][2]int64{{since, math.MaxInt64}}
		if since > 0 {
			ranges = [][2]int64{{0, 0}, {since, math.MaxInt64}}
		}
		for _, r := range ranges {
			more, err := s.findRange(ctx, g.cond, g.args, r[0], r[1], visit)
			if err != nil {
				return s.fail("catch-up of "+pipeline.Quote(q.Site)+" by "+g.what, err)
			}
			if !more {
				return nil
			}
		}
	}
	return nil
}

// findRange walks the records matching cond (on args) with a wall time in
// [lo, hi] in (wall, pk, sk) order, a page per query; it returns false
// when visit stopped.
func (s *Store) findRange(ctx context.Context, cond string, args []any, lo, hi int64, visit func(*pipeline.Record) (bool, error)) (bool, error) {
	n := len(args)
	query := "SELECT " + recordColumns + " FROM " + s.n.items + " r WHERE " + cond +
		fmt.Sprintf(" AND r.wall >= $%d AND r.wall <= $%d AND (r.wall, r.pk, r.sk) > ($%d, $%d, $%d) ORDER BY r.wall, r.pk, r.sk LIMIT %d",
			n+1, n+2, n+3, n+4, n+5, findPage)
	wall, pk, sk := lo-1, []byte{}, []byte{}
	for {
		rows, err := s.pool.Query(ctx, query, append(args[:n:n], lo, hi, wall, pk, sk)...)
		if err != nil {
			return false, err
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*pipeline.Record, error) { return scanRecord(row) })
		if err != nil {
			return false, err
		}
		for _, r := range page {
			more, err := visit(r)
			if err != nil || !more {
				return false, err
			}
		}
		if len(page) < findPage {
			return true, nil
		}
		last := page[len(page)-1]
		wall, pk, sk = last.Version.Wall, []byte(last.Key.PK), []byte(last.Key.SK)
	}
}

var _ pipeline.ChangeFinder = (*Store)(nil)
