package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
)

const devicesPage = `{"devices":[
 {"site":"pump-1","first_seen":"2026-01-02T10:00:00Z","last_seen":"2026-01-02T15:04:02Z","last_up":"2026-01-02T15:04:02Z",
  "last_sync":"2026-01-02T15:00:00Z","cursor":"0001767365700000.00000000.cloud","cursor_time":"2026-01-02T14:55:00Z",
  "changes":120,"refused":2,"last_refused_at":"2026-01-02T15:03:05Z",
  "last_refusal":"Reading 'reading#pump-2' belongs to \"pump-2\", not the sending site \"pump-1\"","pending":3,"connected":true},
 {"site":"pump-2","last_seen":"2026-01-01T13:04:05Z","last_sync":"2026-01-01T13:04:05Z","full_sync":true,"changes":0,"refused":0,"pending":0,"connected":false}],
 "total":5,"known":7,"sort":"last_seen","limit":2,"next":"bGFzdF9zZWVufDF8cHVtcC0y","restored":true}`

func TestPrintDevices(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	var p api.Devices
	require.NoError(t, json.Unmarshal([]byte(devicesPage), &p))
	var out bytes.Buffer
	require.NoError(t, printDevices(&out, &p, api.DevicesQuery{Sort: "last_seen", Filter: "pump", Limit: 2}, now))
	assert.Equal(t, `SITE    LAST SEEN  CONNECTED  CATCH-UP FROM  PENDING  CHANGES  REFUSED  LAST REFUSAL
pump-1  3s ago     yes        9m5s back      3        120      2        1m0s ago: Reading 'reading#pump-2' belongs to "pump-2", not the sending site "pump-1"
pump-2  1d2h ago   no         full           0        0        0        -
2 shown of 5 matching (7 devices)
next page: iotod devices --sort last_seen --filter "pump" --limit 2 --after bGFzdF9zZWVufDF8cHVtcC0y
`, out.String())

	out.Reset()
	require.NoError(t, printDevices(&out, &api.Devices{Devices: nil, Total: 3, Known: 3, Page: 9}, api.DevicesQuery{}, now))
	assert.Equal(t, "0 shown of 3, page 9\nthe devices saved before this worker's start are not read back yet\n", out.String())
}

func TestDevicesCommand(t *testing.T) {
	url, seen := fakeAPI(t, map[string]http.HandlerFunc{"GET /v1/devices": reply(200, devicesPage)})
	out, err := runCmd(t, "devices", "--addr", url, "--sort", "-refused", "--limit", "2", "--filter", "pump", "--page", "3")
	require.NoError(t, err)
	assert.Contains(t, out, "pump-1  ")
	out, err = runCmd(t, "devices", "--addr", url, "--json", "--after", "abc")
	require.NoError(t, err)
	var got api.Devices
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Len(t, got.Devices, 2)
	assert.Equal(t, []string{
		"GET /v1/devices?filter=pump&limit=2&page=3&sort=-refused",
		"GET /v1/devices?after=abc",
	}, seen())

	bad, _ := fakeAPI(t, map[string]http.HandlerFunc{"GET /v1/devices": reply(404,
		`{"error":"no fleet here: devices are listed by a cloud worker (a pipeline from a transport into a cloud store)","code":"not_found"}`)})
	_, err = runCmd(t, "devices", "--addr", bad)
	assert.ErrorContains(t, err, "cloud worker")
}
