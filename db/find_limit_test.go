package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// seedMany writes readings 1..n of dev in one transaction per 500.
func seedMany(t *testing.T, e *env, dev string, n int) {
	t.Helper()
	for from := 1; from <= n; from += 500 {
		var ops []db.WriteOp
		for i := from; i < from+500 && i <= n; i++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Reading",
				Item: db.Item{"deviceId": dev, "seq": i, "temp": i, "on": i%2 == 0}})
		}
		_, err := e.db.Transact(context.Background(), ops)
		require.NoError(t, err)
	}
}

// A find pages: DefaultLimit items when no limit is set, at most MaxLimit
// whatever the limit, with a next whenever more match; a count counts
// every match unless it has a limit.
func TestFindPageSizes(t *testing.T) {
	require.Equal(t, 100, db.DefaultLimit)
	require.Equal(t, 1000, db.MaxLimit)
	ctx := context.Background()
	e := newEnv(t)
	const n = 2500
	seedMany(t, e, "d1", n)
	seedMany(t, e, "d2", 100) // exactly one default page

	cases := []struct {
		name      string
		dev       string
		params    db.Params
		wantItems int
		wantFirst int // seq of the first item (0: none)
		wantCount int
		wantNext  bool
	}{
		{"no limit: the default page", "d1", db.Params{}, db.DefaultLimit, 1, db.DefaultLimit, true},
		{"nil params: the default page", "d1", db.Params{}, db.DefaultLimit, 1, db.DefaultLimit, true},
		{"a small limit", "d1", db.Params{Limit: 7}, 7, 1, 7, true},
		{"the maximum", "d1", db.Params{Limit: db.MaxLimit}, db.MaxLimit, 1, db.MaxLimit, true},
		{"over the maximum: a page of the maximum", "d1", db.Params{Limit: 5000}, db.MaxLimit, 1, db.MaxLimit, true},
		{"reverse over the maximum", "d1", db.Params{Limit: 1001, Reverse: true}, db.MaxLimit, n, db.MaxLimit, true},
		{"where filter: the limit counts matches", "d1", db.Params{Where: "${on} = {true}"}, db.DefaultLimit, 2, db.DefaultLimit, true},
		{"exactly a page: no next", "d2", db.Params{}, 100, 1, 100, false},
		{"fewer than a page: no next", "d1", db.Params{Where: "${seq} <= {30}"}, 30, 1, 30, false},
		{"count: every match, no page", "d1", db.Params{Count: true}, 0, 0, n, false},
		{"count with a filter", "d1", db.Params{Count: true, Where: "${on} = {true}"}, 0, 0, n / 2, false},
		{"count with a limit stops there", "d1", db.Params{Count: true, Limit: 10}, 0, 0, 10, true},
		{"count with a limit over the maximum", "d1", db.Params{Count: true, Limit: 2000}, 0, 0, 2000, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *db.Params
			if tc.name != "nil params: the default page" {
				p = &tc.params
			}
			res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": tc.dev}, p)
			require.NoError(t, err)
			require.Len(t, res.Items, tc.wantItems)
			if tc.wantFirst > 0 {
				assert.Equal(t, tc.wantFirst, seqs(res.Items[:1])[0])
			}
			assert.Equal(t, tc.wantCount, res.Count)
			assert.Equal(t, tc.wantNext, res.Next != "", "next: %q", res.Next)
		})
	}

	t.Run("a negative limit is invalid", func(t *testing.T) {
		_, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Limit: -1})
		require.ErrorIs(t, err, pipeline.ErrInvalid)
		require.ErrorContains(t, err, "limit -1")
	})

	t.Run("pages of the maximum walk every item once", func(t *testing.T) {
		var got []int
		p := &db.Params{Limit: 5000}
		sizes := []int{}
		for {
			res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, p)
			require.NoError(t, err)
			got = append(got, seqs(res.Items)...)
			sizes = append(sizes, len(res.Items))
			if res.Next == "" {
				break
			}
			p.Next = res.Next
		}
		require.Equal(t, []int{1000, 1000, 500}, sizes)
		require.Equal(t, span(1, n), got)
	})

	t.Run("FindAll yields every item", func(t *testing.T) {
		for _, p := range []*db.Params{nil, {Limit: 333}, {Limit: 5000, Reverse: true}} {
			var got []int
			for it, err := range e.db.FindAll(ctx, "Reading", db.Item{"deviceId": "d1"}, p) {
				require.NoError(t, err)
				got = append(got, seqs([]db.Item{it})...)
			}
			want := span(1, n)
			if p != nil && p.Reverse {
				for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
					want[i], want[j] = want[j], want[i]
				}
			}
			require.Equal(t, want, got)
		}
	})

	t.Run("FindAll stops when asked", func(t *testing.T) {
		seen := 0
		for _, err := range e.db.FindAll(ctx, "Reading", db.Item{"deviceId": "d1"}, nil) {
			require.NoError(t, err)
			seen++
			if seen == 150 {
				break
			}
		}
		require.Equal(t, 150, seen)
	})

	t.Run("FindAll passes errors on", func(t *testing.T) {
		for _, p := range []*db.Params{{Count: true}, {Limit: -1}, {Next: "%%%"}} {
			var errs []error
			for it, err := range e.db.FindAll(ctx, "Reading", db.Item{"deviceId": "d1"}, p) {
				require.Nil(t, it)
				errs = append(errs, err)
			}
			require.Len(t, errs, 1)
			require.ErrorIs(t, errs[0], pipeline.ErrInvalid)
		}
	})

	t.Run("remove many is not paged", func(t *testing.T) {
		removed, err := e.db.Remove(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Many: true})
		require.NoError(t, err)
		require.Equal(t, n, removed)
		res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Count: true})
		require.NoError(t, err)
		require.Zero(t, res.Count)
	})
}

// findAll is Find for every match: one result holding the items of every
// page, for tests that check a whole store.
func findAll(ctx context.Context, d *db.DB, model string, props db.Item, p *db.Params) (*db.Result, error) {
	res := &db.Result{Items: []db.Item{}}
	for it, err := range d.FindAll(ctx, model, props, p) {
		if err != nil {
			return nil, err
		}
		res.Items = append(res.Items, it)
	}
	res.Count = len(res.Items)
	return res, nil
}
