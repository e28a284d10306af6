package mqtt

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eclipse/paho.golang/packets"

	"github.com/iotod/iotod/pipeline"
)

// Bounds of what the transport puts into a PUBLISH besides its payload.
// Together they keep every packet within max_payload + PacketOverhead, the
// allowance the embedded broker adds to max_payload for its max_packet.
const (
	// MaxUUIDLen is the longest message UUID, in bytes.
	MaxUUIDLen = 256
	// MaxMetaKeyLen is the longest metadata key, in bytes.
	MaxMetaKeyLen = 256
	// MaxMetaValueLen is the longest metadata value, in bytes.
	MaxMetaValueLen = 1024
	// MaxMetadata is the most metadata entries a message may carry
	// (pipeline.MetaSite aside: the topic carries the site).
	MaxMetadata = 32
	// MaxMetadataBytes bounds the keys and values of a message's metadata
	// together.
	MaxMetadataBytes = 8 * 1024
	// MaxSiteLen is the longest site, in bytes: a topic level.
	MaxSiteLen = 256
	// MaxTopicTemplateLen is the longest topic template, in bytes.
	MaxTopicTemplateLen = 512

	// PacketOverhead bounds what a PUBLISH of this transport holds besides
	// its payload (fixed header, topic, packet id, properties) under the
	// bounds above: a packet is at most max_payload + PacketOverhead. The
	// embedded broker's default max_packet adds the same allowance.
	PacketOverhead = 16 * pipeline.Kilobyte
)

// checkString reports why s cannot travel as an MQTT v5 UTF-8 string (a
// topic, a user property's key or value) of at most max bytes, or nil.
// The rules are the strictest of the brokers iotod runs on: mochi drops
// the connection on invalid UTF-8 and U+0000 [MQTT-1.5.4-1, -2];
// mosquitto also on the control characters U+0001..U+001F and
// U+007F..U+009F and on the non-characters U+FDD0..U+FDEF and U+xFFFE,
// U+xFFFF, which the spec lets a receiver treat as malformed
// [MQTT-1.5.4-2]. utf8.DecodeRuneInString refuses surrogates, overlong
// forms and code points past U+10FFFF.
func checkString(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes, at most %d", len(s), max)
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return fmt.Errorf("not valid UTF-8 at byte %d", i)
		case r == 0:
			return fmt.Errorf("holds U+0000 at byte %d", i)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return fmt.Errorf("holds the control character %U at byte %d", r, i)
		case (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe:
			return fmt.Errorf("holds the non-character %U at byte %d", r, i)
		}
		i += n
	}
	return nil
}

// quoted shows s in an error: quoted (so no control byte reaches a log)
// and cut to 64 bytes.
func quoted(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}

// checkMessage reports why msg's UUID or metadata cannot travel as MQTT
// user properties, naming what is wrong. pipeline.MetaSite and propUUID
// in the metadata are not sent, so not checked.
func checkMessage(msg *message.Message) error {
	if msg.UUID == "" {
		return errors.New("empty uuid")
	}
	if err := checkString(msg.UUID, MaxUUIDLen); err != nil {
		return fmt.Errorf("uuid %s: %v", quoted(msg.UUID), err)
	}
	n, size := 0, 0
	for k, v := range msg.Metadata {
		if k == pipeline.MetaSite || k == propUUID {
			continue
		}
		n++
		size += len(k) + len(v)
		if k == "" {
			return errors.New("metadata: empty key")
		}
		if err := checkString(k, MaxMetaKeyLen); err != nil {
			return fmt.Errorf("metadata key %s: %v", quoted(k), err)
		}
		if err := checkString(v, MaxMetaValueLen); err != nil {
			return fmt.Errorf("metadata %s: value %s: %v", quoted(k), quoted(v), err)
		}
	}
	if n > MaxMetadata {
		return fmt.Errorf("metadata: %d entries, at most %d", n, MaxMetadata)
	}
	if size > MaxMetadataBytes {
		return fmt.Errorf("metadata: %d bytes of keys and values, at most %d", size, MaxMetadataBytes)
	}
	return nil
}

// checkPublishPacket is the last check of a PUBLISH before it enters the
// session store (and of one read back from it, which an older version
// may have written): its topic and every user property must be strings
// the brokers accept, and its size within limit (0: none).
func checkPublishPacket(p *packets.Publish, limit int) error {
	if err := checkString(p.Topic, 65535); err != nil {
		return fmt.Errorf("%w: topic %s: %v", pipeline.ErrInvalid, quoted(p.Topic), err)
	}
	var user []packets.User
	if p.Properties != nil {
		user = p.Properties.User
	}
	for _, u := range user {
		if err := checkString(u.Key, 65535); err != nil {
			return fmt.Errorf("%w: user property key %s: %v", pipeline.ErrInvalid, quoted(u.Key), err)
		}
		if err := checkString(u.Value, 65535); err != nil {
			return fmt.Errorf("%w: user property %s: value %s: %v", pipeline.ErrInvalid, quoted(u.Key), quoted(u.Value), err)
		}
	}
	if limit > 0 {
		if n := sizeBound(p.Topic, user, len(p.Payload)); n > limit {
			return fmt.Errorf("packet of about %d bytes, the broker takes at most %d: %w", n, limit, pipeline.ErrTooLargeForTransport)
		}
	}
	return nil
}

// sizeBound bounds from above the encoded size of a PUBLISH with topic,
// user properties and a payload of n bytes: fixed header, topic, packet
// id, properties (each user property with its id and two length
// prefixes) and payload.
func sizeBound(topic string, user []packets.User, n int) int {
	size := 5 + 2 + len(topic) + 2 + 4 + n
	for _, u := range user {
		size += 5 + len(u.Key) + len(u.Value)
	}
	return size
}
