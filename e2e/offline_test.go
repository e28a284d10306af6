package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
)

// offlineChanges is how many device changes queue while it is offline.
const offlineChanges = 100_000

// TestOfflineDeviceCatchesUp cuts a device's network (a TCP proxy between
// it and the broker) while 100,000 changes queue in its outbox and the
// cloud writes commands for it, then brings the network back: every
// device change reaches the cloud and every command the device.
func TestOfflineDeviceCatchesUp(t *testing.T) {
	r := newCloud(t, inCloud, 1, "dev-1")
	px := startProxy(t, r.addr)
	dev := r.addDeviceVia("dev-1", px.addr)
	cloud := r.cloud().client()
	ctx := context.Background()
	_, err := dev.client().Create(ctx, "Reading", db.Item{"deviceId": "dev-1", "id": "online", "value": 0}, nil)
	require.NoError(t, err)
	dev.sync(30 * time.Second)

	px.down()
	eventually(t, 20*time.Second, "the device sees it is offline", func() bool { return !connected(t, dev, "apply") })
	t0 := time.Now()
	const chunk = 2000
	for start := 0; start < offlineChanges; start += chunk {
		ops := make([]db.WriteOp, 0, chunk)
		for i := start; i < start+chunk; i++ {
			ops = append(ops, db.WriteOp{Op: "upsert", Model: "Reading", Item: db.Item{"deviceId": "dev-1", "id": fmt.Sprintf("o%06d", i), "value": i}})
		}
		_, err := dev.client().Batch(ctx, ops)
		require.NoError(t, err, "batch write at %d", start)
	}
	const commands = 1000
	for i := range commands {
		_, err := cloud.Create(ctx, "Command", db.Item{"deviceId": "dev-1", "id": fmt.Sprintf("c%04d", i), "command": "set", "n": i}, nil)
		require.NoError(t, err)
	}
	t.Logf("offline: %d changes written in %s", offlineChanges, time.Since(t0).Round(time.Millisecond))
	// iotod status shows what waits while the device is offline.
	eventually(t, 5*time.Second, "the status shows the outbox", func() bool {
		st, err := dev.client().Status(ctx)
		require.NoError(t, err)
		up := pipelineOf(st.Pipelines, "up")
		return up != nil && up.Outbox != nil && up.Outbox.Depth >= offlineChanges
	})

	px.up()
	t1 := time.Now()
	dev.sync(2 * time.Minute)
	t.Logf("back online: synced in %s (%v resends)", time.Since(t1).Round(time.Millisecond), dev.metric("iotod_resends_total"))

	props := db.Item{"deviceId": "dev-1"}
	require.Equal(t, offlineChanges+1, count(t, cloud, "Reading", props), "every device change is in the cloud")
	sameItems(t, "readings", items(t, dev.client(), "Reading", props), items(t, cloud, "Reading", props))
	assert.Equal(t, commands, count(t, dev.client(), "Command", props), "every command is on the device")
	sameItems(t, "commands", items(t, cloud, "Command", props), items(t, dev.client(), "Command", props))
}

// connected reports a node's pipeline's transport connection state.
func connected(t *testing.T, n *node, pipeline string) bool {
	t.Helper()
	st, err := n.client().Status(context.Background())
	require.NoError(t, err)
	p := pipelineOf(st.Pipelines, pipeline)
	return p != nil && p.Connected != nil && *p.Connected
}
