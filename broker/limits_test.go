package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// TestMaxPacket: the broker announces max_packet in CONNACK, takes a
// publish within it, and disconnects a client whose publish is larger,
// from the packet's fixed header: a client announcing 2MB and sending
// nothing more makes the broker neither wait for nor hold the 2MB (its
// heap stays well under the payload). Meanwhile another device publishes
// and a cloud worker receives as usual.
func TestMaxPacket(t *testing.T) {
	const payload = 2 << 20
	cfg := withUsers()
	require.Equal(t, DefaultMaxPacket, cfg.MaxPacket)
	b := startBroker(t, cfg, nil)
	cloud := mustDial(t, b.Addr(), cloudOpts)
	require.NoError(t, cloud.subscribe(t, "iotod/+/up"))
	d2 := mustDial(t, b.Addr(), opts{id: "d2", user: "d2-user", pass: "p2"})
	flows := func(what string) {
		t.Helper()
		for i := range 3 {
			body := fmt.Sprintf("%s %d", what, i)
			require.NoError(t, d2.publish(t, "iotod/d2/up", body, 1), "another device publishes: %s", body)
			m := cloud.next(t)
			assert.Equal(t, body, string(m.Payload), "the cloud receives: %s", body)
		}
	}
	flows("before")

	d1, ack, err := dial(t, b.Addr(), d1Opts)
	require.NoError(t, err)
	require.NotNil(t, ack.Properties.MaximumPacketSize, "CONNACK announces the maximum packet size")
	assert.Equal(t, uint32(DefaultMaxPacket), *ack.Properties.MaximumPacketSize)

	within := bytes.Repeat([]byte("w"), int(DefaultMaxPacket-PacketAllowance))
	require.NoError(t, d1.publish(t, "iotod/d1/up", string(within), 1), "a publish of max_payload's default is taken")
	assert.Len(t, cloud.next(t).Payload, len(within))

	require.True(t, refused(d1, "iotod/d1/up", bytes.Repeat([]byte("x"), payload)), "the client publishing 2MB is still connected")
	flows("after a 2MB publish")

	// A raw client announces a 2MB publish and sends nothing more.
	conn := rawConnect(t, b.Addr(), d1Opts)
	heapBefore := liveHeap()
	header := []byte{0x32} // PUBLISH, QoS 1
	for n := payload + 20; ; n >>= 7 {
		if n < 0x80 {
			header = append(header, byte(n))
			break
		}
		header = append(header, byte(n&0x7f|0x80))
	}
	_, err = conn.Write(append(header, 0, 11, 'i', 'o', 't', 'o', 'd', '/', 'd', '1', '/', 'u', 'p'))
	require.NoError(t, err)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn) // until the broker closes the connection
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Error("the broker still waits for the rest of a 2MB packet")
	}
	flows("while a 2MB packet was announced")
	grown := int64(liveHeap()) - int64(heapBefore)
	t.Logf("live heap grew by %d bytes", grown)
	assert.Less(t, grown, int64(payload/4), "the broker's heap grew by %d bytes for an announced 2MB packet", grown)
}

// refused publishes payload from c and reports whether the broker closed
// the connection (the publish then fails).
func refused(c *client, topic string, payload []byte) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
		errc <- err
	}()
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		return false
	}
	cancel()
	return <-errc != nil
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rawConnect opens a TCP connection to addr and connects with MQTT v5 as
// o's credentials, reading the CONNACK; the caller then writes raw bytes.
func rawConnect(t *testing.T, addr string, o opts) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.KeepAlive, c.CleanStart = "MQTT", 5, o.id, 30, true
	c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = o.user, o.user != "", []byte(o.pass), o.pass != ""
	_, err = cp.WriteTo(conn)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	ack, err := packets.ReadPacket(conn)
	require.NoError(t, err)
	require.Equal(t, packets.CONNACK, ack.Type)
	require.Zero(t, ack.Content.(*packets.Connack).ReasonCode)
	require.NoError(t, conn.SetReadDeadline(time.Time{}))
	return conn
}

// TestMaxPacketSet: a max_packet set in the config is the limit
// enforced and announced.
func TestMaxPacketSet(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.MaxPacket = 8 * pipeline.Kilobyte
	b := startBroker(t, cfg, nil)
	c, ack, err := dial(t, b.Addr(), opts{id: "d7"})
	require.NoError(t, err)
	require.NotNil(t, ack.Properties.MaximumPacketSize)
	assert.Equal(t, uint32(8*1024), *ack.Properties.MaximumPacketSize)
	require.NoError(t, c.publish(t, "iotod/d7/up", string(make([]byte, 7*1024)), 1))
	require.True(t, refused(c, "iotod/d7/up", make([]byte, 9*1024)), "a client over max_packet is still connected")
}
