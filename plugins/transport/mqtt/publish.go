package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"

	"github.com/iotod/iotod/pipeline"
)

// propUUID is the MQTT v5 user property carrying the watermill message
// UUID. The message's other metadata travel as user properties of their
// own names, except pipeline.MetaSite: the topic carries the site.
const propUUID = "iotod_uuid"

// reasonPacketTooLarge is the PUBACK reason code of a broker refusing a
// message for its size.
const reasonPacketTooLarge = 0x95

// Publish sends msg with QoS 1 on the topic of ch and site and waits for
// the broker's PUBACK, for at most publish_timeout (and ctx). While the
// transport is not connected it waits for the connection until ctx ends.
// The payload is msg's payload; msg's UUID and metadata travel as user
// properties; the metadata's pipeline.MetaSite is ignored. msg itself is
// not changed.
//
// Permanent failures, which the caller must not retry as they are: a
// payload over max_payload, or a packet over the broker's maximum, wraps
// pipeline.ErrTooLargeForTransport; a site, UUID or metadata that cannot
// travel in a topic or a user property (checkString's rules, MaxSiteLen,
// MaxUUIDLen, MaxMetaKeyLen, MaxMetaValueLen, MaxMetadata,
// MaxMetadataBytes) wraps pipeline.ErrInvalid; so does a message the
// session guard dropped after the broker closed the connection on it
// dropAfter times (pipeline.ErrTooLargeForTransport when the broker said
// it was too large, or gave no reason), and a later Publish of the same
// UUID on the same topic.
func (t *Transport) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	switch {
	case msg == nil:
		return fmt.Errorf("%w: mqtt publish on %s: nil message", pipeline.ErrInvalid, ch)
	case !knownChannel(ch):
		return fmt.Errorf("%w: mqtt publish: unknown channel %s", pipeline.ErrInvalid, quoted(string(ch)))
	case site == "":
		return fmt.Errorf("%w: mqtt publish on %s: empty site", pipeline.ErrInvalid, ch)
	}
	if err := validLevel(site); err != nil {
		t.metrics.refused.WithLabelValues(refusedInvalid).Inc()
		return fmt.Errorf("%w: mqtt publish on %s: site %v", pipeline.ErrInvalid, ch, err)
	}
	if err := checkMessage(msg); err != nil {
		t.metrics.refused.WithLabelValues(refusedInvalid).Inc()
		return fmt.Errorf("%w: mqtt publish on %s for %s: %v", pipeline.ErrInvalid, ch, site, err)
	}
	if n := len(msg.Payload); n > int(t.cfg.MaxPayload) {
		t.metrics.refused.WithLabelValues(refusedTooLarge).Inc()
		return fmt.Errorf("mqtt publish on %s for %s: payload of %d bytes, max_payload is %s: %w",
			ch, site, n, t.cfg.MaxPayload, pipeline.ErrTooLargeForTransport)
	}
	p := &paho.Publish{QoS: 1, Topic: t.topics.topic(ch, site), Payload: msg.Payload, Properties: publishProps(msg)}
	return t.publishPacket(ctx, p, msg.UUID, fmt.Sprintf("on %s for %s", ch, site))
}

// publishPacket publishes p (a message of uuid, "" for none), waiting for
// the connection and again after a connection dropped before the message
// entered the session. what names the message in errors.
func (t *Transport) publishPacket(ctx context.Context, p *paho.Publish, uuid, what string) error {
	if uuid != "" {
		if d, ok := t.refused.get(p.Topic, uuid); ok {
			return droppedError(what, d.kind, "already "+d.reason)
		}
	}
	for {
		if err := t.awaitReady(ctx); err != nil {
			return fmt.Errorf("mqtt publish %s: waiting for the connection: %w", what, err)
		}
		// A packet over the broker's maximum would make it drop the
		// connection.
		if limit := t.brokerMax(); limit > 0 && packetSize(p) > limit {
			t.metrics.refused.WithLabelValues(refusedTooLarge).Inc()
			return fmt.Errorf("mqtt publish %s: packet of about %d bytes, the broker takes at most %d: %w",
				what, packetSize(p), limit, pipeline.ErrTooLargeForTransport)
		}
		resp, err := t.cm.Publish(ctx, p)
		if err == nil {
			return nil
		}
		switch {
		case resp != nil && resp.Properties != nil && resp.Properties.User.Get(propDropped) != "":
			// Counted when the guard dropped it.
			return droppedError(what, resp.Properties.User.Get(propDropped), resp.Properties.ReasonString)
		case errors.Is(err, pipeline.ErrInvalid): // the session guard's check
			t.metrics.refused.WithLabelValues(refusedInvalid).Inc()
			return fmt.Errorf("mqtt publish %s: %w", what, err)
		case t.isClosed():
			return fmt.Errorf("mqtt publish %s: %w", what, pipeline.ErrClosed)
		case ctx.Err() != nil:
			return fmt.Errorf("mqtt publish %s: %w", what, ctx.Err())
		case resp != nil && resp.ReasonCode == reasonPacketTooLarge:
			t.metrics.refused.WithLabelValues(refusedTooLarge).Inc()
			return fmt.Errorf("mqtt publish %s: broker refused %d bytes: %w", what, len(p.Payload), pipeline.ErrTooLargeForTransport)
		case connectionDown(err):
			// The connection dropped before the message entered the
			// session: wait for the next one.
			select {
			case <-time.After(ackInterval):
			case <-ctx.Done():
			}
			continue
		}
		return fmt.Errorf("mqtt publish %s: %w", what, err)
	}
}

// droppedError is the permanent error of a message (what) the session
// guard dropped, of kind (propDropped's value) for reason.
func droppedError(what, kind, reason string) error {
	if kind == droppedTooLarge {
		return fmt.Errorf("mqtt publish %s: %s: %w", what, reason, pipeline.ErrTooLargeForTransport)
	}
	return fmt.Errorf("%w: mqtt publish %s: %s", pipeline.ErrInvalid, what, reason)
}

// onDropped counts a PUBLISH the session guard dropped and remembers it,
// so that the sender's next attempt with the same UUID on the same topic
// fails at once instead of taking the connection down dropAfter times
// again.
func (t *Transport) onDropped(d droppedPacket) {
	t.metrics.refused.WithLabelValues(refusedDropped).Inc()
	t.log.Debug("mqtt: message dropped from the session", "topic", quoted(d.topic), "uuid", quoted(d.uuid), "reason", d.reason)
	if d.uuid != "" {
		t.refused.add(d.topic, d.uuid, d)
	}
}

// refusalMemory is how many dropped messages the transport remembers.
const refusalMemory = 1024

// refusals remembers the last refusalMemory messages the session guard
// dropped, by topic and UUID.
type refusals struct {
	mu    sync.Mutex
	byKey map[string]droppedPacket
	order []string
}

func (r *refusals) add(topic, uuid string, d droppedPacket) {
	k := topic + "\x00" + uuid
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byKey[k]; !ok {
		r.order = append(r.order, k)
	}
	r.byKey[k] = d
	if len(r.order) > refusalMemory {
		delete(r.byKey, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *refusals) get(topic, uuid string) (droppedPacket, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.byKey[topic+"\x00"+uuid]
	return d, ok
}

// brokerMax is the broker's maximum packet size, 0 when it gave none.
func (t *Transport) brokerMax() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.maxPacket)
}

// packetSize bounds the encoded size of p from above: fixed header,
// topic, packet id, properties (each user property with its id and two
// length prefixes) and payload.
func packetSize(p *paho.Publish) int {
	n := 5 + 2 + len(p.Topic) + 2 + 4 + len(p.Payload)
	if p.Properties != nil {
		for _, u := range p.Properties.User {
			n += 5 + len(u.Key) + len(u.Value)
		}
	}
	return n
}

// connectionDown reports whether err says the connection was down when
// the request was made.
func connectionDown(err error) bool {
	return errors.Is(err, autopaho.ConnectionDownError) || errors.Is(err, session.ErrNoConnection) || errors.Is(err, paho.ErrConnectionLost)
}

// publishProps carries msg's UUID and metadata as user properties, in a
// stable order.
func publishProps(msg *message.Message) *paho.PublishProperties {
	keys := make([]string, 0, len(msg.Metadata))
	for k := range msg.Metadata {
		if k != pipeline.MetaSite && k != propUUID {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	props := &paho.PublishProperties{User: make(paho.UserProperties, 0, len(keys)+1)}
	props.User.Add(propUUID, msg.UUID)
	for _, k := range keys {
		props.User.Add(k, msg.Metadata[k])
	}
	return props
}

// toMessage makes the watermill message of a received publish, with
// pipeline.MetaSite set to site (from the topic, never a property). Of
// the user properties, it keeps the UUID and the metadata keys of keep
// (the first of each; values as bounded as Publish's); it returns the
// number of others, dropped. ok is false when the UUID property is not
// one Publish sends (repeated, too long, not a valid string): such a
// message comes from no iotod transport.
func toMessage(p *paho.Publish, site string, keep map[string]bool) (m *message.Message, dropped int, ok bool) {
	uuid, uuids := "", 0
	md := message.Metadata{}
	if p.Properties != nil {
		for _, up := range p.Properties.User {
			switch {
			case up.Key == propUUID:
				uuid = up.Value
				uuids++
			case !keep[up.Key]:
				dropped++
			default:
				if _, seen := md[up.Key]; seen || checkString(up.Value, MaxMetaValueLen) != nil {
					dropped++
					continue
				}
				md[up.Key] = up.Value
			}
		}
	}
	if uuids > 1 || (uuids == 1 && (uuid == "" || checkString(uuid, MaxUUIDLen) != nil)) {
		return nil, dropped, false
	}
	if uuid == "" {
		uuid = watermill.NewUUID()
	}
	md[pipeline.MetaSite] = site
	m = message.NewMessage(uuid, p.Payload)
	m.Metadata = md
	return m, dropped, true
}

// maxTopicLen bounds a topic PublishTopic takes (MQTT allows 65535 bytes).
const maxTopicLen = 1024

// PublishTopic publishes payload on topic with QoS 1
// (pipeline.TopicPublisher), for triggers that notify other MQTT clients.
// The topic is a concrete name: no wildcard, no leading '$', valid UTF-8
// without control characters, at most 1024 bytes; the payload at most
// max_payload.
func (t *Transport) PublishTopic(ctx context.Context, topic string, payload []byte) error {
	if err := validTopicName(topic); err != nil {
		t.metrics.refused.WithLabelValues(refusedInvalid).Inc()
		return fmt.Errorf("%w: mqtt publish on topic %s: %v", pipeline.ErrInvalid, quoted(topic), err)
	}
	if n := len(payload); n > int(t.cfg.MaxPayload) {
		t.metrics.refused.WithLabelValues(refusedTooLarge).Inc()
		return fmt.Errorf("mqtt publish on topic %s: payload of %d bytes, max_payload is %s: %w",
			quoted(topic), n, t.cfg.MaxPayload, pipeline.ErrTooLargeForTransport)
	}
	return t.publishPacket(ctx, &paho.Publish{QoS: 1, Topic: topic, Payload: payload}, "", "on topic "+quoted(topic))
}

func validTopicName(topic string) error {
	switch {
	case topic == "":
		return errors.New("empty")
	case strings.HasPrefix(topic, "$"):
		return errors.New("topics starting with '$' belong to the broker")
	case strings.ContainsAny(topic, "+#"):
		return errors.New("a topic name holds no wildcard ('+' or '#')")
	}
	return checkString(topic, maxTopicLen)
}

var _ pipeline.TopicPublisher = (*Transport)(nil)
