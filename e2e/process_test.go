package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
)

// TestProcessRules writes every model on a device and on the cloud, in
// separate processes over a real broker, and checks what crosses: up and
// both models go up, down and both models come down (to the device their
// deviceId names, or to every device without one), none and device-only
// models never leave the device, and a cloud-only model does not exist in
// the device's schema view.
func TestProcessRules(t *testing.T) {
	forTransports(t, func(t *testing.T, kind brokerKind) {
		r := newRig(t, kind, 1, "dev-1", "dev-2")
		dev, dev2, cloud := r.devices["dev-1"].client(), r.devices["dev-2"].client(), r.cloud().client()
		ctx := context.Background()
		write := func(c *api.Client, model string, item db.Item) db.Item {
			t.Helper()
			out, err := c.Create(ctx, model, item, nil)
			require.NoError(t, err, "create %s %v", model, item)
			return out
		}
		d1 := db.Item{"deviceId": "dev-1"}

		// Device writes of every model it has.
		write(dev, "Reading", db.Item{"deviceId": "dev-1", "id": "r1", "value": 1})
		write(dev, "Setting", db.Item{"deviceId": "dev-1", "name": "mode", "value": "a"})
		write(dev, "Scratch", db.Item{"id": "dev-scratch"})
		write(dev, "Log", db.Item{"id": "dev-log", "message": "local"})
		write(dev, "Command", db.Item{"deviceId": "dev-1", "id": "dev-cmd", "command": "set"})
		write(dev, "Notice", db.Item{"id": "dev-notice", "text": "local"})
		_, err := dev.Create(ctx, "Report", db.Item{"id": "x", "total": 1}, nil)
		require.Error(t, err, "a cloud-only model is not in the device's schema view")
		assert.Contains(t, err.Error(), "Report")

		// Cloud writes of every model it has.
		write(cloud, "Command", db.Item{"deviceId": "dev-1", "id": "c1", "command": "reboot"})
		write(cloud, "Command", db.Item{"deviceId": "dev-2", "id": "c2", "command": "reboot"})
		write(cloud, "Setting", db.Item{"deviceId": "dev-1", "name": "limit", "value": "9"})
		write(cloud, "Notice", db.Item{"id": "n1", "text": "to all"})
		write(cloud, "Scratch", db.Item{"id": "cloud-scratch"})
		write(cloud, "Report", db.Item{"id": "rep", "total": 3})
		write(cloud, "Reading", db.Item{"deviceId": "dev-1", "id": "cloud-reading", "value": 7})
		_, err = cloud.Create(ctx, "Log", db.Item{"id": "x", "message": "m"}, nil)
		require.Error(t, err, "a device-only model is not in the cloud's schema view")

		r.devices["dev-1"].sync(30 * time.Second)
		r.devices["dev-2"].sync(30 * time.Second)

		// Up: Reading and Setting(mode) reached the cloud, at the device's
		// version; nothing else of the device's did.
		cloudReadings := items(t, cloud, "Reading", d1)
		devReadings := items(t, dev, "Reading", d1)
		assert.Len(t, devReadings, 1, "the cloud's up-only Reading did not come down")
		sameItems(t, "Reading up", devReadings, only(cloudReadings, "reading#dev-1|reading#r1"))
		assert.Len(t, cloudReadings, 2, "the device's reading and the cloud's own")
		assert.Len(t, items(t, cloud, "Scratch", nil), 1, "none: only the cloud's own Scratch")
		assert.NotContains(t, items(t, cloud, "Command", d1), "command#dev-1|command#dev-cmd", "a device's down-model write stays on the device")
		assert.NotContains(t, items(t, cloud, "Notice", nil), "notice#|notice#dev-notice")

		// Down: Command c1 and Setting(limit) to dev-1 only, Notice to both.
		sameItems(t, "Setting both ways", items(t, cloud, "Setting", d1), items(t, dev, "Setting", d1))
		assert.Len(t, items(t, dev, "Setting", d1), 2)
		devCmds := items(t, dev, "Command", d1)
		sameItems(t, "Command down", only(items(t, cloud, "Command", d1), "command#dev-1|command#c1"),
			only(devCmds, "command#dev-1|command#c1"))
		assert.Len(t, devCmds, 2, "c1 and the device's own")
		assert.Empty(t, items(t, dev, "Command", db.Item{"deviceId": "dev-2"}), "dev-2's command does not go to dev-1")
		assert.Len(t, items(t, dev2, "Command", db.Item{"deviceId": "dev-2"}), 1, "dev-2 got its command")
		assert.Empty(t, items(t, dev2, "Setting", d1), "dev-1's setting does not go to dev-2")
		sameItems(t, "Notice broadcast to dev-2", only(items(t, cloud, "Notice", nil), "notice#|notice#n1"), items(t, dev2, "Notice", nil))
		assert.Contains(t, items(t, dev, "Notice", nil), "notice#|notice#n1")
		assert.Len(t, items(t, dev, "Scratch", nil), 1, "none: only the device's own Scratch")
		assert.Len(t, items(t, dev, "Log", nil), 1)

		// Updates and removes travel too; both-ways Setting is
		// last-writer-wins.
		_, err = dev.Update(ctx, "Setting", db.Item{"deviceId": "dev-1", "name": "mode", "value": "b"}, nil)
		require.NoError(t, err)
		_, err = dev.Remove(ctx, "Reading", db.Item{"deviceId": "dev-1", "id": "r1"}, nil)
		require.NoError(t, err)
		r.devices["dev-1"].sync(30 * time.Second)
		assert.Equal(t, "b", get(t, cloud, "Setting", db.Item{"deviceId": "dev-1", "name": "mode"})["value"])
		assert.NotContains(t, items(t, cloud, "Reading", d1), "reading#dev-1|reading#r1", "the remove went up")

		_, err = cloud.Update(ctx, "Setting", db.Item{"deviceId": "dev-1", "name": "mode", "value": "c"}, nil)
		require.NoError(t, err)
		_, err = cloud.Remove(ctx, "Notice", db.Item{"id": "n1"}, nil)
		require.NoError(t, err)
		r.devices["dev-1"].sync(30 * time.Second)
		r.devices["dev-2"].sync(30 * time.Second)
		sameItems(t, "Setting after the cloud's update", items(t, cloud, "Setting", d1), items(t, dev, "Setting", d1))
		assert.Equal(t, "c", get(t, dev, "Setting", db.Item{"deviceId": "dev-1", "name": "mode"})["value"])
		assert.NotContains(t, items(t, dev, "Notice", nil), "notice#|notice#n1", "the broadcast remove reached dev-1")
		assert.Empty(t, items(t, dev2, "Notice", nil), "the broadcast remove reached dev-2")
	})
}

// only keeps the named keys of m.
func only(m map[string]db.Item, keys ...string) map[string]db.Item {
	out := map[string]db.Item{}
	for _, k := range keys {
		if it, ok := m[k]; ok {
			out[k] = it
		}
	}
	return out
}

func get(t *testing.T, c *api.Client, model string, props db.Item) db.Item {
	t.Helper()
	it, err := c.Get(context.Background(), model, props, nil)
	require.NoError(t, err, "get %s %v", model, props)
	return it
}
