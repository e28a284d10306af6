package pipeline

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Channel names one stream of the replication protocol.
type Channel string

// The protocol's channels. A pipeline that sends in direction D publishes
// on channel D and hears its acks on D+"-ack".
const (
	ChanUp      Channel = "up"
	ChanDown    Channel = "down"
	ChanUpAck   Channel = "up-ack"
	ChanDownAck Channel = "down-ack"
	ChanSync    Channel = "sync"
)

// AckChannel is the channel acks for direction d travel on.
func AckChannel(d Direction) Channel { return Channel(string(d) + "-ack") }

// Broadcast is the site a message for every device is published to.
const Broadcast = "all"

// ErrTooLargeForTransport is wrapped by Publish when a payload is over the
// transport's maximum; the sender splits the batch, or refuses a single
// change that is too large on its own.
var ErrTooLargeForTransport = fmt.Errorf("%w: payload over the transport's maximum", ErrTooLarge)

// MetaSite is the message metadata key holding the site the transport
// vouches for: the site a message came from (or is addressed to), taken
// from the topic or the connection, never from the payload.
const MetaSite = "iotod_site"

// Transport moves messages between sites. It is a watermill publisher and
// subscriber behind a topic scheme. Messages follow watermill's contract:
// a subscriber must Ack or Nack each message; a Nacked message is
// delivered again.
type Transport interface {
	// Publish sends msg on ch to site (or from site, for the device-to-
	// cloud channels); it returns once the transport has taken it (for
	// MQTT QoS 1, the PUBACK).
	Publish(ctx context.Context, ch Channel, site string, msg *message.Message) error
	// Subscribe receives the messages on ch for site; site "" receives
	// every site's, shared among the subscribers of all processes (so
	// several cloud workers split the work), except on the ack channels,
	// where every subscriber hears every ack: a sender needs the acks of
	// its own batches and ignores the rest. Each message carries MetaSite.
	// The channel closes when ctx ends or the transport closes.
	Subscribe(ctx context.Context, ch Channel, site string) (<-chan *message.Message, error)
	// Close stops the transport; it is safe to call twice.
	Close(ctx context.Context) error
}

// PayloadLimiter is implemented by transports with a maximum payload.
// Receivers refuse batches over it: the protocol has senders split them.
type PayloadLimiter interface {
	MaxPayload() int
}

// TopicPublisher is implemented by transports that publish a payload on
// a topic of their own naming (MQTT), for triggers that notify other
// clients of the same broker. PublishTopic returns once the broker has
// the message (QoS 1), or fails.
type TopicPublisher interface {
	PublishTopic(ctx context.Context, topic string, payload []byte) error
}
