package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// TestDevices: a cloud worker's GET /v1/devices lists the devices it
// heard from, with what they sent and what it refused, paged, sorted and
// filtered; bad parameters are 400s; a device has no fleet (404).
func TestDevices(t *testing.T) {
	ctx := context.Background()
	plan, bus := testPlan(t, "dev1", true)
	r := startRunner(t, plan)
	url, c := serveRunner(t, r, "dev1")
	for i := range 3 {
		_, err := c.Create(ctx, "Status", db.Item{"temp": i}, nil)
		require.NoError(t, err)
	}
	require.NoError(t, c.Sync(ctx, 10*time.Second))
	// dev9 sends a batch the cloud refuses, and an unreadable one.
	bad := `{"v":1,"id":"b2","changes":[{"model":"Status","op":"explode","key":{"pk":"x","sk":"y"}}]}`
	require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, "dev9", message.NewMessage("bad1", []byte(bad))))
	require.NoError(t, bus.Publish(ctx, pipeline.ChanUp, "dev9", message.NewMessage("bad2", []byte(`{not json`))))

	var list *api.Devices
	require.Eventually(t, func() bool {
		var err error
		list, err = c.Devices(ctx, api.DevicesQuery{})
		require.NoError(t, err)
		return list.Total == 2 && list.Devices[1].Refused == 2
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 2, list.Known)
	assert.Equal(t, "site", list.Sort)
	assert.Equal(t, 100, list.Limit, "the default page")
	assert.Empty(t, list.Next)
	d1, d9 := list.Devices[0], list.Devices[1]
	assert.Equal(t, "dev1", d1.Site)
	assert.EqualValues(t, 3, d1.Changes)
	assert.Zero(t, d1.Refused)
	assert.WithinDuration(t, time.Now(), d1.LastSeen, 10*time.Second)
	assert.Equal(t, d1.LastSeen, d1.LastUp)
	assert.Equal(t, "dev9", d9.Site)
	assert.Contains(t, d9.LastRefusal, "not valid JSON", "the last refusal")
	assert.False(t, d9.LastRefusedAt.IsZero())

	// The raw JSON.
	code, _, body := get(t, url+"/v1/devices?sort=-refused&limit=1")
	require.Equal(t, http.StatusOK, code, body)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &raw))
	assert.Equal(t, "-refused", raw["sort"])
	assert.EqualValues(t, 2, raw["total"])
	assert.NotEmpty(t, raw["next"])
	devs := raw["devices"].([]any)
	require.Len(t, devs, 1)
	first := devs[0].(map[string]any)
	assert.Equal(t, "dev1", first["site"], "-refused: the least refused first")
	assert.NotContains(t, first, "connected", "no embedded broker: unknown, left out")
	assert.Contains(t, first, "pending")

	// Paging by cursor and by page; a page far past the end.
	p1, err := c.Devices(ctx, api.DevicesQuery{Limit: 1, Sort: "refused"})
	require.NoError(t, err)
	require.Len(t, p1.Devices, 1)
	assert.Equal(t, "dev9", p1.Devices[0].Site)
	p2, err := c.Devices(ctx, api.DevicesQuery{Limit: 1, Sort: "refused", After: p1.Next})
	require.NoError(t, err)
	require.Len(t, p2.Devices, 1)
	assert.Equal(t, "dev1", p2.Devices[0].Site)
	assert.Empty(t, p2.Next)
	pg, err := c.Devices(ctx, api.DevicesQuery{Limit: 1, Page: 2})
	require.NoError(t, err)
	assert.Equal(t, "dev9", pg.Devices[0].Site)
	code, _, body = get(t, url+"/v1/devices?page=10000")
	require.Equal(t, http.StatusOK, code, body)
	var far map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &far))
	delete(far, "saved_at") // when the index was last saved: every 5s
	assert.Equal(t, map[string]any{"devices": []any{}, "total": 2.0, "known": 2.0, "sort": "site", "limit": 100.0,
		"page": 10000.0, "restored": true}, far, "an empty page with the totals")
	f, err := c.Devices(ctx, api.DevicesQuery{Filter: "V9"})
	require.NoError(t, err)
	assert.Equal(t, 1, f.Total)
	assert.Equal(t, "dev9", f.Devices[0].Site)

	for _, q := range []string{"limit=1001", "limit=-1", "limit=x", "page=0", "page=x", "sort=age", "after=zzz",
		"page=2&after=" + p1.Next, "sort=site&after=" + p1.Next, "filter=" + strings.Repeat("x", 300), "color=red", "limit=1&limit=2"} {
		code, _, body := get(t, url+"/v1/devices?"+q)
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", q, body)
		assert.Contains(t, body, `"code":"invalid"`, q)
	}

	// A device keeps no fleet; a server without pipelines neither.
	dplan, _ := testPlan(t, "dev2", false)
	durl, _ := serveRunner(t, startRunner(t, dplan), "dev2")
	code, _, body = get(t, durl+"/v1/devices")
	assert.Equal(t, http.StatusNotFound, code, body)
	assert.Contains(t, body, "cloud worker")
	nurl, _ := startHTTP(t)
	code, _, body = get(t, nurl+"/v1/devices")
	assert.Equal(t, http.StatusNotFound, code, body)
}
