package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/iotod/iotod/pipeline"
)

// A PUBLISH in the session store is sent again on every connection until
// the broker acknowledges it (state.ConAckReceived resends the whole
// store, in order, before anything else). One the broker refuses by
// dropping the connection (malformed, or over a limit the client did not
// know) is therefore sent again on every reconnect, forever, and takes the
// connection down each time: nothing else gets through. sessionGuard
// stands between paho and its session state to end that:
//
//   - AddToSession lets no PUBLISH into the store unless its topic and
//     user properties are strings every broker accepts (checkPublishPacket).
//   - On each connection, before the resend, a stored PUBLISH that is not
//     valid (written by an older version) or over the maximum packet size
//     the broker announces in CONNACK is dropped.
//   - When a connection is lost within window of the oldest outstanding
//     PUBLISH being written (first send or resend), and the broker gave no
//     DISCONNECT reason that clears the packet (session taken over, server
//     shutting down...), that PUBLISH takes the blame; blamed dropAfter
//     times in a row, it is dropped.
//
// Dropping a PUBLISH ends its transaction in paho's session state as a
// refusing PUBACK would (marked with the user property propDropped), so a
// Publish waiting for it returns a permanent error, and deletes it from
// the store.
type sessionGuard struct {
	*state.State
	store  *trackedStore
	window time.Duration
	onDrop func(droppedPacket)
	// ignoreBrokerMax: see Config.ignoreBrokerMax.
	ignoreBrokerMax bool

	mu      sync.Mutex
	up      bool      // between a CONNACK and the connection's loss
	upAt    time.Time // when the connection came up (the resend)
	stopped bool      // the transport is closing: losses blame nothing
	head    headKey   // the outstanding PUBLISH last blamed
	strikes int       // losses in a row blamed on head
}

// dropAfter is how many connection losses in a row a PUBLISH may be
// blamed for before the guard drops it from the session.
const dropAfter = 3

// propDropped marks the PUBACK the guard makes up for a PUBLISH it
// dropped; its value says why.
const propDropped = "iotod_dropped"

// Values of propDropped.
const (
	droppedTooLarge = "too_large" // over a broker limit: the sender may split it
	droppedInvalid  = "invalid"   // refused by the broker for its content
)

// droppedPacket is what the guard tells the transport of a PUBLISH it
// dropped: its topic and UUID (the iotod_uuid property, "" without one),
// why and the kind of error (propDropped's value).
type droppedPacket struct {
	topic, uuid, kind, reason string
}

// headKey tells one stored PUBLISH from another that reuses its packet
// id: seq is the order of its Put (0 for a packet an earlier process
// stored).
type headKey struct {
	id  uint16
	seq uint64
}

// openSession opens the file-backed session store in dir, guarded.
func openSession(dir string, window time.Duration, onDrop func(droppedPacket)) (*sessionGuard, error) {
	client, err := newFileStore(dir, "client")
	if err != nil {
		return nil, err
	}
	server, err := newFileStore(dir, "server")
	if err != nil {
		return nil, err
	}
	ts := newTrackedStore(client)
	return &sessionGuard{State: state.New(ts, server), store: ts, window: window, onDrop: onDrop}, nil
}

// AddToSession refuses a PUBLISH that is not valid before it gets a
// packet id or a place in the store.
func (g *sessionGuard) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	if pub, ok := p.(*packets.Publish); ok {
		if err := checkPublishPacket(pub, 0); err != nil {
			return fmt.Errorf("mqtt session: not stored: %w", err)
		}
	}
	if err := g.State.AddToSession(ctx, p, resp); err != nil {
		return fmt.Errorf("mqtt session: %w", err)
	}
	return nil
}

// ConAckReceived drops the stored PUBLISHes the broker would refuse, then
// lets paho resend the rest.
func (g *sessionGuard) ConAckReceived(conn io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	if ca.SessionPresent { // otherwise paho empties the store
		limit := 0
		if ca.Properties != nil && ca.Properties.MaximumPacketSize != nil && !g.ignoreBrokerMax {
			limit = int(*ca.Properties.MaximumPacketSize)
		}
		g.screen(limit)
	}
	start := time.Now()
	err := g.State.ConAckReceived(conn, cp, ca)
	g.mu.Lock()
	g.up, g.upAt = true, start
	g.mu.Unlock()
	if err != nil {
		// The resend failed (the broker closed the connection while it
		// was written, as it may for a packet over its maximum): a loss
		// paho does not report through ConnectionLost.
		g.lost(nil)
		return fmt.Errorf("mqtt session: %w", err)
	}
	return nil
}

// ConnectionLost blames the loss on the oldest outstanding PUBLISH when it
// fits, and drops that PUBLISH once blamed dropAfter times in a row.
func (g *sessionGuard) ConnectionLost(dp *packets.Disconnect) error {
	err := g.State.ConnectionLost(dp)
	g.lost(dp)
	if err != nil {
		return fmt.Errorf("mqtt session: %w", err)
	}
	return nil
}

// lost handles the loss of the connection, dp the broker's DISCONNECT
// (nil: none). paho may report one loss twice (DISCONNECT, then the
// closed connection): only the first counts.
func (g *sessionGuard) lost(dp *packets.Disconnect) {
	g.mu.Lock()
	if !g.up || g.stopped {
		g.up = false
		g.mu.Unlock()
		return
	}
	g.up = false
	head, sentAt, ok := g.store.head()
	if sentAt.Before(g.upAt) {
		sentAt = g.upAt // resent on this connection, in ConAckReceived
	}
	if !ok || !blames(dp) || time.Since(sentAt) > g.window {
		g.head, g.strikes = headKey{}, 0
		g.mu.Unlock()
		return
	}
	if head != g.head {
		g.head, g.strikes = head, 0
	}
	g.strikes++
	drop := g.strikes >= dropAfter
	if drop {
		g.head, g.strikes = headKey{}, 0
	}
	g.mu.Unlock()
	if drop {
		kind, why := droppedTooLarge, "the broker closed the connection without a reason"
		if dp != nil {
			why = fmt.Sprintf("the broker disconnected with reason code 0x%02X", dp.ReasonCode)
			if dp.ReasonCode != 0x95 { // packet too large
				kind = droppedInvalid
			}
		}
		g.drop(head.id, nil, kind, fmt.Sprintf("dropped from the session: %s %d times in a row while it was in flight", why, dropAfter))
	}
}

// stop makes later connection losses blame nothing (the transport is
// closing).
func (g *sessionGuard) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

// blames reports whether a loss with DISCONNECT dp (nil: the connection
// closed without one) may be the fault of a packet sent: not when the
// broker gives a reason about something else.
func blames(dp *packets.Disconnect) bool {
	if dp == nil {
		return true
	}
	switch dp.ReasonCode {
	case 0x00, // normal disconnection
		0x04, // disconnect with will message
		0x89, // server busy
		0x8B, // server shutting down
		0x8D, // keep alive timeout
		0x8E, // session taken over
		0x98, // administrative action
		0x9C, // use another server
		0x9D, // server moved
		0x9F, // connection rate exceeded
		0xA0: // maximum connect time
		return false
	}
	return true
}

// screen drops the stored PUBLISHes that are not valid or over limit
// (0: none) before paho resends them.
func (g *sessionGuard) screen(limit int) {
	ids, err := g.store.List()
	if err != nil {
		return // paho's resend meets the same error and reports it
	}
	for _, id := range ids {
		pub := g.store.publish(id)
		if pub == nil {
			continue // unreadable: paho quarantines it
		}
		if err := checkPublishPacket(pub, limit); err != nil {
			kind := droppedInvalid
			if errors.Is(err, pipeline.ErrTooLargeForTransport) {
				kind = droppedTooLarge
			}
			g.drop(id, pub, kind, "dropped from the session before its resend: "+err.Error())
		}
	}
}

// drop ends the transaction of the stored PUBLISH id as a refusing PUBACK
// would (a Publish waiting for it gets the PUBACK with propDropped),
// deletes it from the store and tells the transport. pub is the packet
// when the caller has read it.
func (g *sessionGuard) drop(id uint16, pub *packets.Publish, kind, reason string) {
	if pub == nil {
		pub = g.store.publish(id)
	}
	code := byte(0x80) // unspecified error
	if kind == droppedTooLarge {
		code = 0x95 // packet too large
	}
	ack := &packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.PUBACK},
		Content: &packets.Puback{PacketID: id, ReasonCode: code,
			Properties: &packets.Properties{ReasonString: reason, User: []packets.User{{Key: propDropped, Value: kind}}}}}
	d := droppedPacket{kind: kind, reason: reason}
	if pub != nil {
		d.topic = pub.Topic
		if pub.Properties != nil {
			for _, u := range pub.Properties.User {
				if u.Key == propUUID {
					d.uuid = u.Value
					break
				}
			}
		}
	}
	if g.onDrop != nil {
		g.onDrop(d) // first: a retry of the message must find it refused
	}
	_ = g.State.PacketReceived(ack, nil)
	_ = g.store.Delete(id) // gone already when paho knew the transaction
}

// storer is what state.New takes for a store (the methods of
// file.Store).
type storer interface {
	Put(packetID uint16, packetType byte, w io.WriterTo) error
	Get(packetID uint16) (io.ReadCloser, error)
	Delete(id uint16) error
	Quarantine(id uint16) error
	List() ([]uint16, error)
	Reset() error
}

// trackedStore is the client store, noting for each packet when it was
// last written to a connection: paho writes a PUBLISH right after its
// Put, and again after each Get (the resend on a new connection).
type trackedStore struct {
	inner storer

	mu   sync.Mutex
	seq  uint64
	puts map[uint16]uint64    // order of each packet's Put
	sent map[uint16]time.Time // when each packet was last written
}

func newTrackedStore(inner storer) *trackedStore {
	return &trackedStore{inner: inner, puts: map[uint16]uint64{}, sent: map[uint16]time.Time{}}
}

func (s *trackedStore) Put(id uint16, typ byte, w io.WriterTo) error {
	if err := s.inner.Put(id, typ, w); err != nil {
		return fmt.Errorf("mqtt session store: %w", err)
	}
	s.mu.Lock()
	s.seq++
	s.puts[id], s.sent[id] = s.seq, time.Now()
	s.mu.Unlock()
	return nil
}

func (s *trackedStore) Get(id uint16) (io.ReadCloser, error) {
	r, err := s.inner.Get(id)
	if err != nil {
		return nil, fmt.Errorf("mqtt session store: %w", err)
	}
	s.mu.Lock()
	s.sent[id] = time.Now()
	s.mu.Unlock()
	return r, nil
}

func (s *trackedStore) Delete(id uint16) error {
	s.forget(id)
	if err := s.inner.Delete(id); err != nil {
		return fmt.Errorf("mqtt session store: %w", err)
	}
	return nil
}

func (s *trackedStore) Quarantine(id uint16) error {
	s.forget(id)
	if err := s.inner.Quarantine(id); err != nil {
		return fmt.Errorf("mqtt session store: %w", err)
	}
	return nil
}

// List lists the stored packet ids in the order they were put. file.Store
// pads its list with zeros for each file that is not a packet (such as a
// quarantined one); no packet has id 0.
func (s *trackedStore) List() ([]uint16, error) {
	ids, err := s.inner.List()
	if err != nil {
		return nil, fmt.Errorf("mqtt session store: %w", err)
	}
	out := ids[:0]
	for _, id := range ids {
		if id != 0 {
			out = append(out, id)
		}
	}
	return out, nil
}

func (s *trackedStore) Reset() error {
	s.mu.Lock()
	clear(s.puts)
	clear(s.sent)
	s.mu.Unlock()
	if err := s.inner.Reset(); err != nil {
		return fmt.Errorf("mqtt session store: %w", err)
	}
	return nil
}

func (s *trackedStore) forget(id uint16) {
	s.mu.Lock()
	delete(s.puts, id)
	delete(s.sent, id)
	s.mu.Unlock()
}

// head returns the oldest stored packet and when it was last written; ok
// is false when the store is empty.
func (s *trackedStore) head() (key headKey, sent time.Time, ok bool) {
	ids, err := s.List()
	if err != nil || len(ids) == 0 {
		return headKey{}, time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ids[0]
	return headKey{id: id, seq: s.puts[id]}, s.sent[id], true
}

// publish reads the stored PUBLISH id; nil when it cannot be read or is
// not a PUBLISH.
func (s *trackedStore) publish(id uint16) *packets.Publish {
	r, err := s.inner.Get(id)
	if err != nil {
		return nil
	}
	defer func() { _ = r.Close() }()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil
	}
	cp, err := packets.ReadPacket(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	pub, _ := cp.Content.(*packets.Publish)
	return pub
}
