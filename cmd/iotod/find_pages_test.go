package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// `iotod db find` returns pages as the API does: 100 items by default, at
// most 1000 whatever --limit says, with a next that --next follows; a
// count counts every match; a negative limit is refused.
func TestCLIFindPages(t *testing.T) {
	bin := buildIotod(t)
	d := startDaemon(t, bin, writeConfig(t, goodConfig))
	client, err := api.NewClient(d.addr, "")
	require.NoError(t, err)
	const n = 1150
	for from := 0; from < n; from += 230 {
		var ops []db.WriteOp
		for i := from; i < from+230; i++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "User",
				Item: db.Item{"accountId": "acme", "email": fmt.Sprintf("u%04d@acme.io", i), "name": "u"}})
		}
		_, err := client.Transact(context.Background(), ops)
		require.NoError(t, err)
	}
	find := func(args ...string) map[string]any {
		return decode(t, runCLI(t, bin, append([]string{"db", "find", "User", `{"accountId": "acme"}`, "--fields", "email", "--addr", d.addr}, args...)...))
	}

	cases := []struct {
		name  string
		args  []string
		items int
		next  bool
	}{
		{"no limit: the default page", nil, db.DefaultLimit, true},
		{"a limit", []string{"--limit", "250"}, 250, true},
		{"over the maximum: a page of the maximum", []string{"--limit", "5000"}, db.MaxLimit, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page := find(tc.args...)
			assert.Len(t, page["items"], tc.items)
			_, hasNext := page["next"]
			assert.Equal(t, tc.next, hasNext)
		})
	}

	t.Run("--next follows to the last page", func(t *testing.T) {
		first := find("--limit", "5000")
		last := find("--limit", "5000", "--next", first["next"].(string))
		assert.Len(t, last["items"], n-db.MaxLimit)
		assert.NotContains(t, last, "next")
		assert.Equal(t, map[string]any{"email": "u1000@acme.io"}, last["items"].([]any)[0])
	})
	t.Run("a count counts every match", func(t *testing.T) {
		assert.Equal(t, fmt.Sprint(n), fmt.Sprint(find("--count")["count"]))
	})
	t.Run("a negative limit is refused", func(t *testing.T) {
		failsWith(t, runCLI(t, bin, "db", "find", "User", "--limit", "-5", "--addr", d.addr), "limit: want a non-negative integer")
	})
	d.stop(t)
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
