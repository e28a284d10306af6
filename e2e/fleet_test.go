package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/runner"
)

// TestFleet: a cloud worker running the embedded broker, and three
// device processes. The worker's GET /v1/devices (and `iotod devices`)
// lists each device with a recent last contact, its catch-up cursor,
// the changes it sent, its connection to the broker; a change the cloud
// refused (fleet-1 writes an item naming fleet-2) shows with its reason,
// in the table, the JSON and the metrics. A device that stops shows as
// disconnected. The numbers survive a restart of the worker, clean
// (SIGTERM: saved at shutdown) and killed (SIGKILL, after the periodic
// save of a refusal).
func TestFleet(t *testing.T) {
	sites := []string{"fleet-1", "fleet-2", "fleet-3"}
	r := newRig(t, inCloud, 1, sites...)
	worker := r.cloud()
	ctx := context.Background()
	start := time.Now()

	for i, s := range sites {
		for j := range i + 1 {
			_, err := r.devices[s].client().Create(ctx, "Reading", db.Item{"deviceId": s, "id": "r" + string(rune('a'+j)), "value": j}, nil)
			require.NoError(t, err)
		}
	}
	// fleet-1 names fleet-2 in an item: the cloud refuses it.
	_, err := r.devices["fleet-1"].client().Create(ctx, "Reading", db.Item{"deviceId": "fleet-2", "id": "not-mine", "value": 1}, nil)
	require.NoError(t, err)
	// A command down to fleet-3: its ack is contact too.
	_, err = worker.client().Create(ctx, "Command", db.Item{"deviceId": "fleet-3", "id": "c1", "command": "reboot"}, nil)
	require.NoError(t, err)
	for _, s := range sites {
		r.devices[s].sync(30 * time.Second)
	}

	devices := func(q api.DevicesQuery) *api.Devices {
		t.Helper()
		p, err := worker.client().Devices(ctx, q)
		require.NoError(t, err)
		return p
	}
	bySite := func(p *api.Devices) map[string]runner.DeviceSummary {
		out := map[string]runner.DeviceSummary{}
		for _, d := range p.Devices {
			out[d.Site] = d
		}
		return out
	}
	eventually(t, 20*time.Second, "the worker lists the three devices, fleet-3's ack and fleet-1's refusal", func() bool {
		m := bySite(devices(api.DevicesQuery{}))
		return len(m) == 3 && !m["fleet-3"].LastAck.IsZero() && m["fleet-1"].Refused == 1
	})
	list := devices(api.DevicesQuery{})
	assert.Equal(t, 3, list.Total)
	for i, d := range list.Devices {
		assert.Equal(t, sites[i], d.Site, "sorted by site")
		assert.True(t, d.LastSeen.After(start.Add(-time.Second)) && !d.LastSeen.After(time.Now()), "%s: last seen %s, the test began %s", d.Site, d.LastSeen, start)
		assert.False(t, d.FirstSeen.After(d.LastSeen), d.Site)
		assert.False(t, d.LastSync.IsZero(), "%s: a device asks for a catch-up at start", d.Site)
		require.NotNil(t, d.Connected, "%s: the worker runs the broker", d.Site)
		assert.True(t, *d.Connected, d.Site)
		assert.Zero(t, d.Pending, "%s: every down change acknowledged", d.Site)
	}
	m := bySite(list)
	assert.EqualValues(t, 2, m["fleet-1"].Changes, "its reading and the refused one")
	assert.EqualValues(t, 2, m["fleet-2"].Changes)
	assert.EqualValues(t, 3, m["fleet-3"].Changes)
	assert.Contains(t, m["fleet-1"].LastRefusal, `belongs to "fleet-2"`)
	assert.Zero(t, m["fleet-2"].Refused)

	// The CLI: the most refused first, and the JSON.
	out, err := worker.cli("devices", "--sort", "refused")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	assert.True(t, strings.HasPrefix(lines[0], "SITE "), out)
	assert.True(t, strings.HasPrefix(lines[1], "fleet-1 "), out)
	assert.Contains(t, lines[1], `"reading#not-mine": its deviceId says it belongs to "fleet-2"`, "the reason, cut to the table's width")
	assert.Equal(t, "3 shown of 3", lines[4])
	out, err = worker.cli("devices", "--json", "--filter", "T-3")
	require.NoError(t, err)
	var page api.Devices
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Len(t, page.Devices, 1)
	assert.Equal(t, "fleet-3", page.Devices[0].Site)
	out, err = worker.cli("devices", "--limit", "2", "--page", "10000")
	require.NoError(t, err)
	assert.Equal(t, "0 shown of 3, page 10000\n", out)

	// The metrics: counts, no device in a label.
	assert.EqualValues(t, 3, worker.metric("iotod_fleet_devices"))
	assert.EqualValues(t, 3, worker.metric("iotod_fleet_devices_connected"))
	assert.EqualValues(t, 1, worker.metric("iotod_fleet_refused_total"))
	assert.EqualValues(t, 0, worker.metric("iotod_fleet_devices_stale", `age="15m"`))
	assert.EqualValues(t, 3, worker.metric("iotod_fleet_last_seen_age_seconds_count"))

	// fleet-2 stops: the broker knows it is gone.
	r.devices["fleet-2"].stop()
	eventually(t, 10*time.Second, "fleet-2 shows as disconnected", func() bool {
		d := bySite(devices(api.DevicesQuery{}))["fleet-2"]
		return d.Connected != nil && !*d.Connected
	})
	assert.EqualValues(t, 2, worker.metric("iotod_fleet_devices_connected"))

	// A clean restart of the worker: saved at shutdown, read back at start.
	before := bySite(devices(api.DevicesQuery{}))
	worker.stop()
	worker.start()
	eventually(t, 10*time.Second, "the worker reads its devices back", func() bool {
		p := devices(api.DevicesQuery{})
		return p.Restored && p.Total == 3
	})
	after := bySite(devices(api.DevicesQuery{}))
	survived(t, before, after, "after a clean restart")
	assert.EqualValues(t, 3, worker.metric("iotod_fleet_devices"))
	assert.EqualValues(t, 0, worker.metric("iotod_fleet_refused_total"), "a counter since this start")

	// A second refusal, saved by the periodic save, then SIGKILL.
	_, err = r.devices["fleet-1"].client().Create(ctx, "Reading", db.Item{"deviceId": "fleet-3", "id": "not-mine-either", "value": 1}, nil)
	require.NoError(t, err)
	r.devices["fleet-1"].sync(30 * time.Second)
	var refusedAt time.Time
	eventually(t, 20*time.Second, "the second refusal is saved", func() bool {
		p := devices(api.DevicesQuery{Filter: "fleet-1"})
		if len(p.Devices) != 1 || p.Devices[0].Refused != 2 {
			return false
		}
		refusedAt = p.Devices[0].LastRefusedAt
		return !p.SavedAt.Before(refusedAt)
	})
	before = bySite(devices(api.DevicesQuery{}))
	killed := time.Now()
	worker.kill()
	worker.start()
	eventually(t, 10*time.Second, "the killed worker reads its devices back", func() bool {
		p := devices(api.DevicesQuery{})
		return p.Restored && p.Total == 3
	})
	// Contact alone is saved once a minute: what the running devices did
	// since the last save is lost to the kill, and comes back with their
	// next message (here a catch-up each).
	r.devices["fleet-1"].sync(30 * time.Second)
	r.devices["fleet-3"].sync(30 * time.Second)
	eventually(t, 10*time.Second, "the running devices' sync requests", func() bool {
		m := bySite(devices(api.DevicesQuery{}))
		return m["fleet-1"].LastSync.After(killed) && m["fleet-3"].LastSync.After(killed)
	})
	after = bySite(devices(api.DevicesQuery{}))
	assert.EqualValues(t, 2, after["fleet-1"].Refused)
	assert.Contains(t, after["fleet-1"].LastRefusal, `belongs to "fleet-3"`)
	assert.Equal(t, refusedAt, after["fleet-1"].LastRefusedAt)
	survived(t, before, after, "after SIGKILL")
}

// survived checks the saved fields of each device came back: counts,
// the last refusal, the first contact; the last contact, catch-up and
// ack only move forward (the devices reconnect to the restarted broker
// and ask for a catch-up again).
func survived(t *testing.T, before, after map[string]runner.DeviceSummary, when string) {
	t.Helper()
	require.Len(t, after, len(before), when)
	for site, b := range before {
		a := after[site]
		assert.Equal(t, b.Changes, a.Changes, "%s: %s changes", when, site)
		assert.Equal(t, b.Refused, a.Refused, "%s: %s refused", when, site)
		assert.Equal(t, b.LastRefusal, a.LastRefusal, "%s: %s last refusal", when, site)
		assert.Equal(t, b.LastRefusedAt, a.LastRefusedAt, "%s: %s", when, site)
		assert.Equal(t, b.FirstSeen, a.FirstSeen, "%s: %s first seen", when, site)
		assert.False(t, a.LastSeen.Before(b.LastSeen), "%s: %s last seen went back: %s, was %s", when, site, a.LastSeen, b.LastSeen)
		assert.False(t, a.LastSync.Before(b.LastSync), "%s: %s", when, site)
		assert.False(t, a.LastAck.Before(b.LastAck), "%s: %s", when, site)
		if a.LastSync.Equal(b.LastSync) {
			assert.Equal(t, b.Cursor, a.Cursor, "%s: %s cursor", when, site)
		}
	}
}
