package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/runner"
)

// TestTwoWorkersShareTheLoad runs two cloud workers, each with a store of
// its own, on one shared subscription (mosquitto, or the embedded broker
// in a third process) under a device's write load, while both workers
// send commands down. Both apply part of the load; each change the device
// sent is applied once in all (the workers' applied counts add up to what
// the device's acks settled); for every key the newest version among the
// workers is the device's; every command reaches the device.
func TestTwoWorkersShareTheLoad(t *testing.T) {
	kind := ownProcess
	if _, ok := haveMosquitto(); ok {
		kind = viaMosquitto
	}
	r := newRig(t, kind, 2, "dev-1")
	dev := r.devices["dev-1"]
	l := readingLoad(t, dev, "dev-1", 4)

	ctx := context.Background()
	const commands = 40
	for i := range commands {
		w := r.workers[i%2]
		_, err := w.client().Create(ctx, "Command", db.Item{"deviceId": "dev-1", "id": fmt.Sprintf("c%02d", i), "command": "set", "n": i}, nil)
		require.NoError(t, err)
		time.Sleep(2 * loadPhase / commands)
	}
	l.halt()
	dev.sync(2 * time.Minute)

	props := db.Item{"deviceId": "dev-1"}
	w1, w2 := items(t, r.workers[0].client(), "Reading", props), items(t, r.workers[1].client(), "Reading", props)
	l.check(t, "two workers", items(t, dev.client(), "Reading", props), newest(w1, w2))
	applied1 := r.workers[0].metric("iotod_changes_out_total", `pipeline="ingest"`)
	applied2 := r.workers[1].metric("iotod_changes_out_total", `pipeline="ingest"`)
	settled := dev.metric("iotod_acks_total", `pipeline="up"`, `result="applied"`)
	t.Logf("worker 1 applied %v changes (%d keys), worker 2 %v (%d keys); the device's acks settled %v", applied1, len(w1), applied2, len(w2), settled)
	assert.Positive(t, applied1, "worker 1 applied some")
	assert.Positive(t, applied2, "worker 2 applied some")
	if resends := dev.metric("iotod_resends_total", `pipeline="up"`); resends == 0 {
		assert.Equal(t, settled, applied1+applied2, "each change applied once, by one worker")
	} else { // a batch resent after a late ack may have gone to the other worker too
		t.Logf("%v batches resent: a change may be in both workers' stores", resends)
		assert.GreaterOrEqual(t, applied1+applied2, settled)
	}

	// Every command of both workers reached the device.
	eventually(t, time.Minute, "every command on the device", func() bool {
		return count(t, dev.client(), "Command", props) == commands
	})
	sameItems(t, "commands", newest(items(t, r.workers[0].client(), "Command", props), items(t, r.workers[1].client(), "Command", props)),
		items(t, dev.client(), "Command", props))
	// Each worker hears the device's acks of its own batches.
	for i, w := range r.workers {
		eventually(t, time.Minute, fmt.Sprintf("worker %d: every down batch acknowledged", i+1), func() bool {
			return inFlight(t, w, "down") == 0
		})
		t.Logf("worker %d: %v down resends", i+1, w.metric("iotod_resends_total", `pipeline="down"`))
	}
}

// newest merges the workers' items, keeping each key's newest version.
func newest(sets ...map[string]db.Item) map[string]db.Item {
	out := map[string]db.Item{}
	for _, set := range sets {
		for k, it := range set {
			if cur, ok := out[k]; !ok || version(it).Compare(version(cur)) > 0 {
				out[k] = it
			}
		}
	}
	return out
}

func version(it db.Item) pipeline.Version {
	v, _ := pipeline.ParseVersion(fmt.Sprint(it[db.VersionAttr]))
	return v
}

// inFlight is the changes a node's pipeline sent and has no ack for yet.
func inFlight(t *testing.T, n *node, name string) int {
	t.Helper()
	st, err := n.client().Status(context.Background())
	require.NoError(t, err)
	p := pipelineOf(st.Pipelines, name)
	require.NotNil(t, p, "%s: no pipeline %s", n.name, name)
	return p.InFlight
}

// pipelineOf finds a pipeline's status by name (nil if none).
func pipelineOf(ps []runner.PipelineStatus, name string) *runner.PipelineStatus {
	for i := range ps {
		if ps[i].Name == name {
			return &ps[i]
		}
	}
	return nil
}
