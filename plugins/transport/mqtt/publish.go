package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
// not changed. A payload over max_payload fails with an error wrapping
// pipeline.ErrTooLargeForTransport.
func (t *Transport) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	switch {
	case msg == nil:
		return fmt.Errorf("%w: mqtt publish on %s: nil message", pipeline.ErrInvalid, ch)
	case !knownChannel(ch):
		return fmt.Errorf("%w: mqtt publish: unknown channel %q", pipeline.ErrInvalid, ch)
	case site == "":
		return fmt.Errorf("%w: mqtt publish on %s: empty site", pipeline.ErrInvalid, ch)
	}
	if err := validLevel(site); err != nil {
		return fmt.Errorf("%w: mqtt publish on %s: site %v", pipeline.ErrInvalid, ch, err)
	}
	if n := len(msg.Payload); n > int(t.cfg.MaxPayload) {
		return fmt.Errorf("mqtt publish on %s for %s: payload of %d bytes, max_payload is %s: %w",
			ch, site, n, t.cfg.MaxPayload, pipeline.ErrTooLargeForTransport)
	}
	p := &paho.Publish{QoS: 1, Topic: t.topics.topic(ch, site), Payload: msg.Payload, Properties: publishProps(msg)}
	for {
		if err := t.awaitReady(ctx); err != nil {
			return fmt.Errorf("mqtt publish on %s for %s: waiting for the connection: %w", ch, site, err)
		}
		// A packet over the broker's maximum would make it drop the
		// connection, and paho would send it again on every reconnect.
		if limit := t.brokerMax(); limit > 0 && packetSize(p) > limit {
			return fmt.Errorf("mqtt publish on %s for %s: packet of about %d bytes, the broker takes at most %d: %w",
				ch, site, packetSize(p), limit, pipeline.ErrTooLargeForTransport)
		}
		resp, err := t.cm.Publish(ctx, p)
		if err == nil {
			return nil
		}
		switch {
		case t.isClosed():
			return fmt.Errorf("mqtt publish on %s for %s: %w", ch, site, pipeline.ErrClosed)
		case ctx.Err() != nil:
			return fmt.Errorf("mqtt publish on %s for %s: %w", ch, site, ctx.Err())
		case resp != nil && resp.ReasonCode == reasonPacketTooLarge:
			return fmt.Errorf("mqtt publish on %s for %s: broker refused %d bytes: %w", ch, site, len(p.Payload), pipeline.ErrTooLargeForTransport)
		case connectionDown(err):
			// The connection dropped before the message entered the
			// session: wait for the next one.
			select {
			case <-time.After(ackInterval):
			case <-ctx.Done():
			}
			continue
		}
		return fmt.Errorf("mqtt publish on %s for %s: %w", ch, site, err)
	}
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
// pipeline.MetaSite set to site.
func toMessage(p *paho.Publish, site string) *message.Message {
	uuid := ""
	md := message.Metadata{}
	if p.Properties != nil {
		for _, up := range p.Properties.User {
			if up.Key == propUUID {
				uuid = up.Value
			} else {
				md[up.Key] = up.Value
			}
		}
	}
	if uuid == "" {
		uuid = watermill.NewUUID()
	}
	md[pipeline.MetaSite] = site
	m := message.NewMessage(uuid, p.Payload)
	m.Metadata = md
	return m
}
