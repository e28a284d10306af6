package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/pipeline"
)

// raw is a bare MQTT v5 client that speaks the protocol by hand, as a
// device user would: it publishes batches it builds and reads the acks.
type raw struct {
	t    *testing.T
	site string
	c    *paho.Client
	msgs chan *paho.Publish
}

// dialRaw connects to addr as the device user of site, with a client id
// of its own, and subscribes to that site's up-ack topic.
func dialRaw(t *testing.T, addr, site string) *raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("raw client: %v", err)
	}
	r := &raw{t: t, site: site, msgs: make(chan *paho.Publish, 1000)}
	r.c = paho.NewClient(paho.ClientConfig{Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) {
			r.msgs <- p.Packet
			return true, nil
		}}})
	_, err = r.c.Connect(ctx, &paho.Connect{ClientID: site + "-raw", KeepAlive: 30, CleanStart: true,
		Username: site, UsernameFlag: true, Password: []byte(devicePassword(site)), PasswordFlag: true})
	if err != nil {
		t.Fatalf("raw client connect as %s: %v", site, err)
	}
	t.Cleanup(func() { _ = r.c.Disconnect(&paho.Disconnect{}) })
	sub, err := r.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic(site, "up-ack"), QoS: 1}}})
	if err != nil || len(sub.Reasons) != 1 || sub.Reasons[0] >= 0x80 {
		t.Fatalf("raw client: subscribe to its acks: %v %v", err, sub)
	}
	return r
}

func topic(site, channel string) string { return "iotod/" + site + "/" + channel }

// publish sends payload on topic at QoS 1 and returns the PUBACK's
// reason code (0x87: not authorized).
func (r *raw) publish(topic string, payload []byte) (byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	if resp != nil {
		return resp.ReasonCode, err
	}
	return 0, err
}

// send publishes b on the site's up topic and returns the ack for it.
func (r *raw) send(b *pipeline.Batch) pipeline.Ack {
	r.t.Helper()
	r.sendNoAck(b)
	return r.ack(b.ID, 10*time.Second)
}

// sendNoAck publishes b on the site's up topic.
func (r *raw) sendNoAck(b *pipeline.Batch) {
	r.t.Helper()
	payload, err := json.Marshal(b)
	if err != nil {
		r.t.Fatal(err)
	}
	if code, err := r.publish(topic(r.site, "up"), payload); err != nil || code >= 0x80 {
		r.t.Fatalf("publish batch %s: reason %#x, %v", b.ID, code, err)
	}
}

// ack waits for the ack of batch id; other acks are skipped.
func (r *raw) ack(id string, timeout time.Duration) pipeline.Ack {
	r.t.Helper()
	a, ok := r.maybeAck(id, timeout)
	if !ok {
		r.t.Fatalf("no ack for batch %s within %s", id, timeout)
	}
	return a
}

// maybeAck waits up to timeout for the ack of batch id.
func (r *raw) maybeAck(id string, timeout time.Duration) (pipeline.Ack, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-r.msgs:
			var a pipeline.Ack
			if json.Unmarshal(m.Payload, &a) == nil && a.Batch == id {
				return a, true
			}
		case <-deadline:
			return pipeline.Ack{}, false
		}
	}
}

// batchOf makes a batch of changes from site with a fresh id.
func batchOf(site string, changes ...pipeline.Change) *pipeline.Batch {
	return &pipeline.Batch{V: pipeline.ProtocolVersion, ID: ulid.Make().String(), Kind: pipeline.KindChanges, Site: site, Changes: changes}
}

// reading is a change of a Reading of deviceID with id, at version v
// (origin site), carrying value; op remove carries no item.
func reading(site, deviceID, id string, v pipeline.Version, op pipeline.Op, value any) pipeline.Change {
	key := pipeline.Key{PK: "reading#" + deviceID, SK: "reading#" + id}
	c := pipeline.Change{Model: "Reading", Op: op, Key: key, Version: v, Origin: site, Time: v.Wall}
	if op != pipeline.OpRemove {
		at := time.UnixMilli(v.Wall).UTC().Format("2006-01-02T15:04:05.000Z")
		item, _ := json.Marshal(map[string]any{"pk": key.PK, "sk": key.SK, "_type": "Reading", "_version": v.String(),
			"deviceId": deviceID, "id": id, "value": value, "created": at, "updated": at})
		c.Item = item
	}
	return c
}

// versionAt is a version of origin at wall ms plus counter.
func versionAt(origin string, wall int64, counter uint32) pipeline.Version {
	return pipeline.Version{Wall: wall, Counter: counter, Origin: origin}
}

func (r *raw) String() string { return fmt.Sprintf("raw client of %s", r.site) }
