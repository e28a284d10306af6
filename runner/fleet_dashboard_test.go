package runner

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/db"
)

const fleetDashboard = "../docs/grafana-fleet.json"

var metricName = regexp.MustCompile(`\biotod_[a-z0-9_]+\b`)

// dashboardQueries returns every query of a Grafana dashboard: the expr
// of each target and the query of each templating variable.
func dashboardQueries(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch s, ok := e.(string); {
			case ok && (k == "expr" || k == "definition"):
				out = append(out, s)
			case k == "query" && ok:
				out = append(out, s)
			default:
				out = append(out, dashboardQueries(t, e)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, dashboardQueries(t, e)...)
		}
	}
	return out
}

// TestGrafanaFleetDashboard: docs/grafana-fleet.json is valid JSON, and
// every metric it queries is one a cloud worker's registry serves (read
// from the registry after some traffic, with the embedded broker); the
// fleet's metrics name no device in a label.
func TestGrafanaFleetDashboard(t *testing.T) {
	raw, err := os.ReadFile(fleetDashboard)
	require.NoError(t, err)
	var dash map[string]any
	require.NoError(t, json.Unmarshal(raw, &dash), "the dashboard is not JSON")
	assert.Equal(t, "iotod-fleet", dash["uid"])
	panels, _ := dash["panels"].([]any)
	assert.NotEmpty(t, panels)
	queries := dashboardQueries(t, dash)
	require.NotEmpty(t, queries)

	// A cloud worker with the embedded broker, after traffic: a device's
	// changes, one refused, a command down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	bc := broker.NewDefaultConfig()
	bc.Listen = addr
	plan := allInOne(t)
	plan.Broker = &bc
	r := start(t, plan)
	ctx := context.Background()
	_, err = r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1, "temp": 1}, nil)
	require.NoError(t, err)
	_, err = r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev2", "seq": 1, "temp": 1}, nil)
	require.NoError(t, err)
	_, err = r.DB("cloud").Create(ctx, "Command", db.Item{"deviceId": "dev1", "command": "reboot"}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))

	// The registry's families by name (their type is client_model's,
	// named here through Gather only).
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	families := map[string]int{}
	require.Eventually(t, func() bool {
		mfs, err = r.reg.Gather()
		require.NoError(t, err)
		clear(families)
		for i, mf := range mfs {
			families[mf.GetName()] = i
		}
		_, inFlight := families["iotod_in_flight_changes"]
		_, syncs := families["iotod_sync_requests_total"]
		return inFlight && syncs
	}, 10*time.Second, 20*time.Millisecond)

	served := func(name string) bool {
		if _, ok := families[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if i, ok := families[base]; ok && mfs[i].GetType().String() == "HISTOGRAM" {
					return true
				}
			}
		}
		return false
	}
	var used []string
	for _, q := range queries {
		for _, name := range metricName.FindAllString(q, -1) {
			if !slices.Contains(used, name) {
				used = append(used, name)
			}
		}
	}
	slices.Sort(used)
	t.Logf("the dashboard queries %s", strings.Join(used, ", "))
	for _, name := range used {
		assert.True(t, served(name), "the dashboard queries %s, which the worker does not serve", name)
	}
	for _, want := range []string{"iotod_fleet_devices", "iotod_fleet_devices_connected", "iotod_fleet_devices_stale",
		"iotod_fleet_refused_total", "iotod_fleet_last_seen_age_seconds_bucket"} {
		assert.Contains(t, used, want, "the dashboard shows %s", want)
	}

	// Bounded labels: no fleet metric has a label that could name a
	// device.
	for name, i := range families {
		if !strings.HasPrefix(name, "iotod_fleet_") {
			continue
		}
		for _, m := range mfs[i].GetMetric() {
			for _, lp := range m.GetLabel() {
				assert.Contains(t, []string{"age", "result"}, lp.GetName(), "%s has label %s", name, lp.GetName())
			}
		}
	}
	assert.EqualValues(t, 1, mfs[families["iotod_fleet_devices"]].GetMetric()[0].GetGauge().GetValue())
	assert.EqualValues(t, 1, mfs[families["iotod_fleet_refused_total"]].GetMetric()[0].GetCounter().GetValue())
}
