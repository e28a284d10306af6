package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

func TestHealth(t *testing.T) {
	url, c := startHTTP(t)
	h, err := c.Health(context.Background())
	require.NoError(t, err)
	assert.Equal(t, &api.Health{Status: "ok", Site: "test-site"}, h)

	req, err := http.NewRequest(http.MethodGet, url+"/v1/health", nil)
	require.NoError(t, err)
	status, body := do(t, req)
	assert.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"status":"ok","site":"test-site"}`, body)
}

func TestItemRoundTrip(t *testing.T) {
	ctx := context.Background()
	_, c := startHTTP(t)

	created, err := c.Create(ctx, "Status", db.Item{"temp": 21.5, "state": "on"}, nil)
	require.NoError(t, err)
	id, _ := created["id"].(string)
	require.Len(t, id, 26, "a ulid is generated")
	assert.Equal(t, json.Number("21.5"), created["temp"])
	assert.NotContains(t, created, "pk", "hidden attributes are left out")

	got, err := c.Get(ctx, "Status", db.Item{"id": id}, nil)
	require.NoError(t, err)
	assert.Equal(t, created, got)

	hidden, err := c.Get(ctx, "Status", db.Item{"id": id}, &db.Params{Hidden: true})
	require.NoError(t, err)
	assert.Equal(t, "status#"+id, hidden["pk"])

	updated, err := c.Update(ctx, "Status", db.Item{"id": id, "temp": 22}, nil)
	require.NoError(t, err)
	assert.Equal(t, json.Number("22"), updated["temp"])
	assert.Equal(t, "on", updated["state"], "update merges")

	up, err := c.Upsert(ctx, "Status", db.Item{"id": "01J00000000000000000000000", "temp": 5}, nil)
	require.NoError(t, err)
	assert.Equal(t, "off", up["state"], "upsert creates with defaults")

	res, err := c.Find(ctx, "Status", db.Item{}, &db.Params{Fields: []string{"id", "temp"}})
	require.NoError(t, err)
	require.Len(t, res.Items, 2)
	assert.ElementsMatch(t, []db.Item{{"id": id, "temp": json.Number("22")},
		{"id": "01J00000000000000000000000", "temp": json.Number("5")}}, res.Items)

	n, err := c.Remove(ctx, "Status", db.Item{"id": id}, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = c.Get(ctx, "Status", db.Item{"id": id}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	var apiErr *api.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.Status)
}

func TestNumbersRoundTrip(t *testing.T) {
	url, _ := startHTTP(t)
	// Neither fits a float64 exactly.
	status, body := post(t, url+"/v1/models/Status/create",
		`{"id":"01J00000000000000000000001","temp":12345678901234567891}`)
	require.Equal(t, http.StatusCreated, status, body)
	assert.Contains(t, body, `"temp":12345678901234567891`)
	status, body = post(t, url+"/v1/models/Status/upsert",
		`{"id":"01J00000000000000000000001","temp":0.30000000000000000001}`)
	require.Equal(t, http.StatusOK, status, body)
	status, body = post(t, url+"/v1/models/Status/get", `{"id":"01J00000000000000000000001"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"temp":0.30000000000000000001`)
}

func TestFindParams(t *testing.T) {
	ctx := context.Background()
	_, c := startHTTP(t)
	for i := range 5 {
		state := "off"
		if i%2 == 0 {
			state = "on"
		}
		_, err := c.Create(ctx, "Status", db.Item{"id": fmt.Sprintf("01J0000000000000000000000%d", i), "temp": i * 10, "state": state}, nil)
		require.NoError(t, err)
	}
	ids := func(res *db.Result) []string {
		var out []string
		for _, it := range res.Items {
			out = append(out, strings.TrimPrefix(it["id"].(string), "01J0000000000000000000000"))
		}
		return out
	}

	page, err := c.Find(ctx, "Status", nil, &db.Params{Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "1"}, ids(page))
	require.NotEmpty(t, page.Next)
	page, err = c.Find(ctx, "Status", nil, &db.Params{Limit: 2, Next: page.Next})
	require.NoError(t, err)
	assert.Equal(t, []string{"2", "3"}, ids(page))

	rev, err := c.Find(ctx, "Status", nil, &db.Params{Reverse: true, Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{"4"}, ids(rev))

	hot, err := c.Find(ctx, "Status", nil, &db.Params{Where: "${temp} >= @{min}", Substitutions: map[string]any{"min": 25}})
	require.NoError(t, err)
	assert.Equal(t, []string{"3", "4"}, ids(hot))

	on, err := c.Find(ctx, "Status", db.Item{"state": "on"}, &db.Params{Index: "gs1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "2", "4"}, ids(on))

	count, err := c.Find(ctx, "Status", nil, &db.Params{Count: true, Where: "${state} = {off}"})
	require.NoError(t, err)
	assert.Equal(t, 2, count.Count)

	_, err = c.Remove(ctx, "Status", nil, nil)
	require.ErrorIs(t, err, pipeline.ErrInvalid, "a partial key removes many only with many")
	n, err := c.Remove(ctx, "Status", nil, &db.Params{Many: true})
	require.NoError(t, err)
	assert.Equal(t, 5, n)
}

func TestBatchAndTransact(t *testing.T) {
	ctx := context.Background()
	_, c := startHTTP(t)
	results, err := c.Batch(ctx, []db.WriteOp{
		{Op: pipeline.OpCreate, Model: "Log", Item: db.Item{"id": "01J00000000000000000000001", "message": "one"}},
		{Op: pipeline.OpCreate, Model: "Log", Item: db.Item{"level": "loud", "message": "two"}},
		{Op: pipeline.OpCreate, Model: "Log", Item: db.Item{"id": "01J00000000000000000000001", "message": "again"}},
	})
	require.NoError(t, err)
	require.Len(t, results, 3)
	assert.Equal(t, "one", results[0].Item["message"])
	assert.Contains(t, results[1].Error, "level")
	assert.Contains(t, results[2].Error, "exists")

	_, err = c.Transact(ctx, []db.WriteOp{
		{Op: pipeline.OpCreate, Model: "Log", Item: db.Item{"id": "01J00000000000000000000002", "message": "kept?"}},
		{Op: pipeline.OpUpdate, Model: "Log", Item: db.Item{"id": "01J0000000000000000000000X", "message": "missing"}},
	})
	require.ErrorIs(t, err, pipeline.ErrConditionFailed)
	_, err = c.Get(ctx, "Log", db.Item{"id": "01J00000000000000000000002"}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound, "a failed transaction writes nothing")

	items, err := c.Transact(ctx, []db.WriteOp{
		{Op: pipeline.OpCreate, Model: "Log", Item: db.Item{"id": "01J00000000000000000000002", "message": "two"}},
		{Op: pipeline.OpUpdate, Model: "Log", Item: db.Item{"id": "01J00000000000000000000001", "level": "warn"}},
	})
	require.NoError(t, err)
	require.Len(t, items, 2)
	assert.Equal(t, "warn", items[1]["level"])
}
