package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// TestBadInputOnTheWire sends what a broken or hostile device could, with
// a raw MQTT client logged in as device dev-1: malformed JSON, an unknown
// protocol version, items failing the schema, models the cloud must not
// take, a change claiming another origin, an item naming another device,
// a publish on another device's topic, a batch over the transports'
// max_payload. Nothing of it is stored, a rejection comes back in the ack
// wherever the batch can be read, and the worker keeps serving: a good
// device's writes, and dev-1's own process's, still arrive.
func TestBadInputOnTheWire(t *testing.T) {
	forBrokers(t, func(t *testing.T, kind brokerKind) {
		r := newCloud(t, kind, 1, "dev-1", "dev-2")
		worker := r.cloud()
		bad := dialRaw(t, r.addr, "dev-1")
		now := time.Now().UnixMilli()
		rd := func(deviceID, id string, value any) pipeline.Change {
			return reading("dev-1", deviceID, id, versionAt("dev-1", now, 0), pipeline.OpCreate, value)
		}
		rejected := func(b *pipeline.Batch, want ...string) { // in any order
			t.Helper()
			a := bad.send(b)
			assert.Zero(t, a.Applied, "batch %s", b.ID)
			require.Len(t, a.Rejected, len(want), "batch %s: %+v", b.ID, a.Rejected)
			var reasons []string
			for _, rj := range a.Rejected {
				reasons = append(reasons, rj.Reason)
			}
			for _, w := range want {
				assert.True(t, slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, w) }),
					"batch %s: no rejection says %q: %q", b.ID, w, reasons)
			}
		}

		// Not JSON: nobody can answer it; the worker keeps it as a dead
		// letter (poison message).
		code, err := bad.publish(topic("dev-1", "up"), []byte(`{"v": 1, "id": "01NOTJSON`))
		require.NoError(t, err)
		assert.Less(t, code, byte(0x80))
		eventually(t, 10*time.Second, "the malformed message is a dead letter on the worker", func() bool {
			return worker.metric("iotod_poison_messages_total") >= 1
		})

		// An unknown protocol version with an id: every change rejected.
		v2 := batchOf("dev-1", rd("dev-1", "v2", 1))
		v2.V = 2
		rejected(v2, "unknown protocol version 2")

		// Items failing the schema, models the cloud may not take.
		log, _ := json.Marshal(map[string]any{"pk": "log#", "sk": "log#l1", "_type": "Log", "id": "l1", "message": "m"})
		rejected(batchOf("dev-1",
			rd("dev-1", "s1", "not a number"),
			pipeline.Change{Model: "Log", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "log#", SK: "log#l1"}, Item: log,
				Version: versionAt("dev-1", now, 1), Origin: "dev-1", Time: now},
			pipeline.Change{Model: "Nope", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "x", SK: "y"}, Item: json.RawMessage(`{}`),
				Version: versionAt("dev-1", now, 2), Origin: "dev-1", Time: now},
			pipeline.Change{Model: "Report", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "report#", SK: "report#r1"},
				Item:    json.RawMessage(`{"pk":"report#","sk":"report#r1","_type":"Report","id":"r1","total":1}`),
				Version: versionAt("dev-1", now, 3), Origin: "dev-1", Time: now},
		), "Reading.value", "Log", "Nope", "Report")

		// Another device's item, another origin.
		other := rd("dev-1", "o1", 1)
		other.Origin, other.Version.Origin = "dev-2", "dev-2"
		rejected(batchOf("dev-1", rd("dev-2", "n1", 1), other), `belongs to "dev-2"`, `origin "dev-2" is not the sending site "dev-1"`)

		// Another device's topic, or a topic only the cloud may publish
		// on: the broker refuses the publish.
		payload, _ := json.Marshal(batchOf("dev-2", reading("dev-2", "dev-2", "spoof", versionAt("dev-2", now, 0), pipeline.OpCreate, 1)))
		for _, tp := range []string{topic("dev-2", "up"), topic("dev-1", "down"), topic("all", "down"), topic("dev-2", "up-ack")} {
			code, err = bad.publish(tp, payload)
			t.Logf("%s: a device's publish on %s: PUBACK reason %#x, err %v", kind, tp, code, err)
			assert.Equal(t, byte(0x87), code, "%s: not authorized", tp)
		}

		// Over max_payload (128KB): the transports refuse to publish it;
		// received from a raw client, the receiver refuses it whole.
		big := batchOf("dev-1")
		for i := range 8 {
			c := rd("dev-1", "big"+string(rune('a'+i)), 1)
			var it map[string]any
			require.NoError(t, json.Unmarshal(c.Item, &it))
			it["note"] = strings.Repeat("x", 40*1024)
			c.Item, _ = json.Marshal(it)
			big.Changes = append(big.Changes, c)
		}
		bigPayload, _ := json.Marshal(big)
		code, err = bad.publish(topic("dev-1", "up"), bigPayload)
		a, acked := bad.maybeAck(big.ID, 10*time.Second)
		t.Logf("%s: a %d KB batch: PUBACK reason %#x, err %v; ack %v %+v", kind, len(bigPayload)/1024, code, err, acked, a)
		if acked {
			// The size is checked before the batch is parsed: its changes
			// are not decoded, and one rejection answers for the batch.
			assert.Zero(t, a.Applied, "refused whole")
			if assert.Len(t, a.Rejected, 1) {
				assert.Contains(t, a.Rejected[0].Reason, "maximum payload")
			}
		}

		// dev-1's own process names dev-2 in an item: the cloud refuses it
		// and the rejection comes back to the device as a dead letter.
		dev1 := r.addDevice("dev-1")
		_, err = dev1.client().Create(context.Background(), "Reading", db.Item{"deviceId": "dev-2", "id": "mine", "value": 1}, nil)
		require.NoError(t, err)
		_, err = dev1.client().Create(context.Background(), "Reading", db.Item{"deviceId": "dev-1", "id": "good", "value": 1}, nil)
		require.NoError(t, err)
		dev1.sync(30 * time.Second)
		letters, err := dev1.client().DeadLetters(context.Background(), 10)
		require.NoError(t, err)
		require.Len(t, letters.DeadLetters, 1, "the refused change")
		assert.Contains(t, letters.DeadLetters[0].Reject.Reason, `belongs to "dev-2"`)

		// The worker still serves a good device.
		dev2 := r.addDevice("dev-2")
		for _, id := range []string{"g1", "g2", "g3"} {
			_, err := dev2.client().Create(context.Background(), "Reading", db.Item{"deviceId": "dev-2", "id": id, "value": 7}, nil)
			require.NoError(t, err)
		}
		dev2.sync(30 * time.Second)

		// Nothing bad was stored.
		cloud := worker.client()
		sameItems(t, "dev-2's readings", items(t, dev2.client(), "Reading", db.Item{"deviceId": "dev-2"}),
			items(t, cloud, "Reading", db.Item{"deviceId": "dev-2"}))
		got := keysOf(items(t, cloud, "Reading", db.Item{"deviceId": "dev-1"}))
		want := []string{"reading#dev-1|reading#good"}
		if acked && a.Applied > 0 {
			for i := range 8 {
				want = append(want, "reading#dev-1|reading#big"+string(rune('a'+i)))
			}
		}
		assert.ElementsMatch(t, want, got, "dev-1's readings in the cloud")
		assertNoModel(t, cloud, "Log")
		assert.Empty(t, items(t, cloud, "Report", nil), "no Report from a device")
	})
}

func keysOf(m map[string]db.Item) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertNoModel checks the cloud does not know model at all.
func assertNoModel(t *testing.T, c *api.Client, model string) {
	t.Helper()
	_, err := c.Find(context.Background(), model, db.Item{}, nil)
	assert.Error(t, err, "%s is not a cloud model", model)
}
