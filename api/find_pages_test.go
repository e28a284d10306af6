package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// Finds through the HTTP API are paged like db.Find: a default page, a
// maximum page whatever the limit, a next whenever more match, and counts
// that count every match.
func TestFindPagesOverHTTP(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	const n = 1050
	for from := 0; from < n; from += 350 {
		var ops []db.WriteOp
		for i := from; i < from+350; i++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Status",
				Item: db.Item{"id": fmt.Sprintf("01J%023d", i), "temp": i, "state": "on"}})
		}
		_, err := d.Transact(ctx, ops)
		require.NoError(t, err)
	}
	srv, err := api.NewServer(api.Options{DB: d, Site: "test-site"})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	cases := []struct {
		query     string
		status    int
		items     int
		count     int
		next      bool
		errSubstr string
	}{
		{query: "", status: 200, items: 100, count: 100, next: true},
		{query: "limit=0", status: 200, items: 100, count: 100, next: true},
		{query: "limit=7", status: 200, items: 7, count: 7, next: true},
		{query: "limit=1000", status: 200, items: 1000, count: 1000, next: true},
		{query: "limit=5000", status: 200, items: 1000, count: 1000, next: true},
		{query: "limit=5000&where=%24%7Btemp%7D+%3E%3D+%7B1000%7D", status: 200, items: 50, count: 50, next: false},
		{query: "count", status: 200, items: 0, count: n, next: false},
		{query: "count&limit=10", status: 200, items: 0, count: 10, next: true},
		{query: "limit=-1", status: 400, errSubstr: `limit: want a non-negative integer, got "-1" (0: the default page of 100 items; over 1000: pages of 1000)`},
		{query: "limit=lots", status: 400, errSubstr: `got "lots"`},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			status, body := post(t, hs.URL+"/v1/models/Status/find?"+tc.query, `{}`)
			require.Equal(t, tc.status, status, body)
			if tc.errSubstr != "" {
				var e struct{ Error, Code string }
				require.NoError(t, json.Unmarshal([]byte(body), &e))
				assert.Equal(t, "invalid", e.Code)
				assert.Contains(t, e.Error, tc.errSubstr)
				return
			}
			var res db.Result
			require.NoError(t, json.Unmarshal([]byte(body), &res))
			assert.Len(t, res.Items, tc.items)
			assert.Equal(t, tc.count, res.Count)
			assert.Equal(t, tc.next, res.Next != "", "next")
		})
	}

	t.Run("the client pages on next through every item once", func(t *testing.T) {
		c, err := api.NewClient(hs.URL, "")
		require.NoError(t, err)
		p := &db.Params{Limit: 5000, Fields: []string{"id"}}
		seen := map[string]bool{}
		var sizes []int
		for {
			res, err := c.Find(ctx, "Status", nil, p)
			require.NoError(t, err)
			sizes = append(sizes, len(res.Items))
			for _, it := range res.Items {
				id := it["id"].(string)
				require.False(t, seen[id], "%s twice", id)
				seen[id] = true
			}
			if res.Next == "" {
				break
			}
			p.Next = res.Next
		}
		assert.Equal(t, []int{1000, 50}, sizes)
		assert.Len(t, seen, n)
	})
}
