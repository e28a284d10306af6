package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/store/file"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/pipeline"
)

func TestCheckString(t *testing.T) {
	for _, ok := range []string{"", "batch-01J", "é€😀", "a b", "\u00a0", "\U0010fffd"} {
		if err := checkString(ok, 64); err != nil {
			t.Errorf("checkString(%q): %v", ok, err)
		}
	}
	for _, tc := range []struct{ s, want string }{
		{"a\xffb", "not valid UTF-8 at byte 1"},
		{"a\xc0\xafb", "not valid UTF-8"},     // overlong '/'
		{"a\xed\xa0\x80b", "not valid UTF-8"}, // surrogate U+D800
		{"a\xf4\x90\x80\x80", "not valid UTF-8"},
		{"a\x00b", "U+0000 at byte 1"},
		{"a\x01b", "control character U+0001"},
		{"a\tb", "control character U+0009"},
		{"a\nb", "control character U+000A"},
		{"a\x7fb", "control character U+007F"},
		{"a\u0085b", "control character U+0085"},
		{"a\ufdd0b", "non-character U+FDD0"},
		{"a\ufffeb", "non-character U+FFFE"},
		{"a\uffffb", "non-character U+FFFF"},
		{"a\U0001fffeb", "non-character U+1FFFE"},
		{strings.Repeat("x", 65), "65 bytes, at most 64"},
	} {
		if err := checkString(tc.s, 64); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkString(%q) = %v, want %q", tc.s, err, tc.want)
		}
	}
}

// TestPacketOverhead: a message at every bound, on the longest topic,
// makes a packet of at most max_payload + PacketOverhead (the encoded
// size, as paho writes it, within packetSize's bound), and the embedded
// broker's allowance covers it.
func TestPacketOverhead(t *testing.T) {
	tail := "/{site}/{channel}"
	ts, err := parseTemplate(strings.Repeat("t", MaxTopicTemplateLen-len(tail)) + tail)
	if err != nil {
		t.Fatal(err)
	}
	site := strings.Repeat("s", MaxSiteLen)
	msg := message.NewMessage(strings.Repeat("u", MaxUUIDLen), make([]byte, 1000))
	for i := range MaxMetadata {
		k := fmt.Sprintf("k%05d", i)
		msg.Metadata.Set(k, strings.Repeat("v", MaxMetadataBytes/MaxMetadata-len(k)))
	}
	if err := checkMessage(msg); err != nil {
		t.Fatalf("the worst-case message is refused: %v", err)
	}
	if err := validLevel(site); err != nil {
		t.Fatal(err)
	}
	p := &paho.Publish{QoS: 1, Topic: ts.topic(pipeline.ChanDownAck, site), Payload: msg.Payload, Properties: publishProps(msg)}
	var buf bytes.Buffer
	pb := p.Packet()
	pb.PacketID = 65535
	if _, err := pb.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > packetSize(p) {
		t.Errorf("encoded packet of %d bytes, packetSize says at most %d", buf.Len(), packetSize(p))
	}
	if over := packetSize(p) - len(p.Payload); over > int(PacketOverhead) {
		t.Errorf("the packet holds up to %d bytes besides its payload, PacketOverhead is %d", over, int(PacketOverhead))
	}
	if broker.PacketAllowance < PacketOverhead {
		t.Errorf("the broker's allowance %s is under the transport's overhead %s", broker.PacketAllowance, PacketOverhead)
	}
}

// TestPublishRefusesInvalid: a message whose UUID, metadata or site
// cannot travel in an MQTT topic or user property fails at once with a
// permanent pipeline.ErrInvalid naming the fault; the connection stays
// up, the next message is delivered, and nothing is left in the session
// store to send after a restart. Nothing gets past the session guard
// either when Publish's checks are bypassed.
func TestPublishRefusesInvalid(t *testing.T) {
	t.Run("mochi", func(t *testing.T) { testPublishRefusesInvalid(t, startMochi(t, "", nil).url, nil) })
	t.Run("embedded", func(t *testing.T) {
		testPublishRefusesInvalid(t, startEmbedded(t, broker.DefaultMaxPacket), asCloud(nil))
	})
	t.Run("mosquitto", func(t *testing.T) { testPublishRefusesInvalid(t, mosquittoURL(t), nil) })
}

// startEmbedded starts iotod's embedded broker (package broker) with
// max_packet, the users of asCloud, and no anonymous clients; it returns
// its URL.
func startEmbedded(t *testing.T, maxPacket pipeline.ByteSize) string {
	t.Helper()
	cfg := broker.NewDefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Anonymous = false
	cfg.MaxPacket = maxPacket
	cfg.Users = []broker.User{{Username: "worker", Password: "pw", Role: broker.RoleCloud}}
	b, err := broker.Start(t.Context(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return "mqtt://" + b.Addr()
}

// asCloud logs in as startEmbedded's cloud user, then applies tune.
func asCloud(tune func(*Config)) func(*Config) {
	return func(c *Config) {
		c.Username, c.Password = "worker", "pw"
		if tune != nil {
			tune(c)
		}
	}
}

func testPublishRefusesInvalid(t *testing.T, url string, tune func(*Config)) {
	o := newOpener(t, url, tune)
	site := "dev-" + o.run
	in := subscribe(t, o.open(t, "sub"), pipeline.ChanUp, site)
	pub := o.open(t, "pub")
	waitFor(t, 5*time.Second, "connection", pub.Connected)

	withUUID := func(uuid string) *message.Message { return message.NewMessage(uuid, []byte("x")) }
	withMeta := func(kv ...string) *message.Message {
		m := message.NewMessage("meta-"+o.run, []byte("x"))
		for i := 0; i+1 < len(kv); i += 2 {
			m.Metadata.Set(kv[i], kv[i+1])
		}
		return m
	}
	var many, heavy []string
	for i := range MaxMetadata + 1 {
		many = append(many, fmt.Sprintf("k%d", i), "v")
	}
	for i := range 9 {
		heavy = append(heavy, fmt.Sprintf("k%d", i), strings.Repeat("v", MaxMetaValueLen))
	}
	tests := []struct {
		name, site string
		msg        *message.Message
		want       string
	}{
		{"uuid not UTF-8", site, withUUID("batch-\xff"), "uuid \"batch-\\xff\": not valid UTF-8 at byte 6"},
		{"uuid with NUL", site, withUUID("a\x00b"), "U+0000"},
		{"uuid with a newline", site, withUUID("a\nb"), "control character U+000A"},
		{"uuid with a surrogate", site, withUUID("a\xed\xa0\x80"), "not valid UTF-8"},
		{"uuid with a non-character", site, withUUID("a\uffff"), "non-character U+FFFF"},
		{"uuid too long", site, withUUID(strings.Repeat("u", MaxUUIDLen+1)), "257 bytes, at most 256"},
		{"empty uuid", site, withUUID(""), "empty uuid"},
		{"metadata key not UTF-8", site, withMeta("k\xc3", "v"), "metadata key \"k\\xc3\": not valid UTF-8"},
		{"metadata value with a tab", site, withMeta("k", "a\tb"), "metadata \"k\": value \"a\\tb\": holds the control character U+0009"},
		{"metadata value too long", site, withMeta("k", strings.Repeat("v", MaxMetaValueLen+1)), "1025 bytes, at most 1024"},
		{"too many metadata entries", site, withMeta(many...), "33 entries, at most 32"},
		{"metadata too heavy", site, withMeta(heavy...), "bytes of keys and values, at most 8192"},
		{"site not UTF-8", "dev-\xff", withUUID("s1"), "site \"dev-\\xff\": not valid UTF-8"},
		{"site with a control character", "dev-\x01", withUUID("s2"), "control character U+0001"},
		{"site too long", strings.Repeat("s", MaxSiteLen+1), withUUID("s3"), "257 bytes, at most 256"},
	}
	for _, tc := range tests {
		start := time.Now()
		err := pub.Publish(t.Context(), pipeline.ChanUp, tc.site, tc.msg)
		switch {
		case !errors.Is(err, pipeline.ErrInvalid) || !pipeline.IsPermanent(err):
			t.Errorf("%s: got %v, want a permanent ErrInvalid", tc.name, err)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: refused after %s, want at once", tc.name, d)
		}
	}
	if got := testutil.ToFloat64(pub.metrics.refused.WithLabelValues(refusedInvalid)); got != float64(len(tests)) {
		t.Errorf("refused{invalid} = %v, want %d", got, len(tests))
	}

	// Past Publish's checks, the session guard refuses the packet.
	raw := &paho.Publish{QoS: 1, Topic: pub.topics.topic(pipeline.ChanUp, site), Payload: []byte("raw"),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: propUUID, Value: "raw-\xff"}}}}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := pub.cm.Publish(ctx, raw); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("an invalid packet past Publish: got %v, want ErrInvalid from the session guard", err)
	}

	publish(t, pub, pipeline.ChanUp, site, message.NewMessage("good-"+o.run, []byte("good")))
	if m := recv(t, in, 5*time.Second); m.UUID != "good-"+o.run {
		t.Errorf("got %q, want the good message", m.UUID)
	} else {
		m.Ack()
	}
	quiet(t, in, 300*time.Millisecond)
	if n := testutil.ToFloat64(pub.metrics.connects); n != 1 || !pub.Connected() {
		t.Errorf("%v connections (connected %v): the broker dropped the connection", n, pub.Connected())
	}

	closeQuietly(pub)
	if left := storedPackets(t, o, "pub"); len(left) > 0 {
		t.Errorf("session store holds %v after close", left)
	}
	pub = o.open(t, "pub")
	waitFor(t, 5*time.Second, "reconnection", pub.Connected)
	quiet(t, in, 500*time.Millisecond)
	if n := testutil.ToFloat64(pub.metrics.connects); n != 1 {
		t.Errorf("%v connections after the restart, want 1", n)
	}
}

// storedPackets lists the packets in the client session store of o's
// transport of role.
func storedPackets(t *testing.T, o *opener, role string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(o.base, o.id(t, role), "client", "*.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestStoredInvalidPacketDropped: a session store holding a PUBLISH no
// broker accepts (written before the transport checked what it stores)
// is screened when the session resumes: the packet is dropped and
// counted, never sent, so the connection is not dropped and the next
// message flows.
func TestStoredInvalidPacketDropped(t *testing.T) {
	t.Run("mochi", func(t *testing.T) { testStoredInvalidPacket(t, startMochi(t, "", nil).url) })
	t.Run("mosquitto", func(t *testing.T) { testStoredInvalidPacket(t, mosquittoURL(t)) })
}

func testStoredInvalidPacket(t *testing.T, url string) {
	o := newOpener(t, url, nil)
	site := "old-" + o.run
	in := subscribe(t, o.open(t, "sub"), pipeline.ChanUp, site)
	pub := o.open(t, "pub")
	waitFor(t, 5*time.Second, "connection", pub.Connected)
	closeQuietly(pub) // the broker keeps the session

	st, err := file.New(filepath.Join(o.base, o.id(t, "pub"), "client"), "p", ".pkt")
	if err != nil {
		t.Fatal(err)
	}
	old := &packets.Publish{QoS: 1, PacketID: 7, Topic: "iotod/" + site + "/up", Payload: []byte("old"),
		Properties: &packets.Properties{User: []packets.User{{Key: propUUID, Value: "old-\xff-ack"}}}}
	if err := st.Put(7, packets.PUBLISH, old); err != nil {
		t.Fatal(err)
	}

	pub = o.open(t, "pub")
	waitFor(t, 5*time.Second, "the stored packet to be dropped", func() bool {
		return testutil.ToFloat64(pub.metrics.refused.WithLabelValues(refusedDropped)) == 1
	})
	waitFor(t, 5*time.Second, "connection", pub.Connected)
	publish(t, pub, pipeline.ChanUp, site, message.NewMessage("new-"+o.run, []byte("new")))
	if m := recv(t, in, 5*time.Second); m.UUID != "new-"+o.run {
		t.Errorf("got %q, want the new message (the stored one must never be sent)", m.UUID)
	} else {
		m.Ack()
	}
	quiet(t, in, 300*time.Millisecond)
	if n := testutil.ToFloat64(pub.metrics.connects); n != 1 {
		t.Errorf("%v connections, want 1: the stored packet was sent", n)
	}
	if left := storedPackets(t, o, "pub"); len(left) > 0 {
		t.Errorf("session store still holds %v", left)
	}
}

// TestBrokerRefusedPacket: a broker that drops the connection on a packet
// over a limit the client does not know (mochi enforces its maximum
// packet size without announcing it; mosquitto's is ignored here) makes
// the session guard drop that packet after 3 losses in a row: its
// Publish fails with a permanent ErrTooLargeForTransport (so the sender
// splits or rejects it) well before publish_timeout, a retry of it fails
// at once, the connection stays up, later messages flow, and a restart
// sends nothing again.
func TestBrokerRefusedPacket(t *testing.T) {
	t.Run("mochi", func(t *testing.T) {
		b := startMochiWith(t, "", nil, func(o *mochi.Options) {
			o.Capabilities = mochi.NewDefaultServerCapabilities()
			o.Capabilities.MaximumPacketSize = 64 * 1024
		})
		testBrokerRefusedPacket(t, b.url, nil)
	})
	t.Run("embedded", func(t *testing.T) {
		testBrokerRefusedPacket(t, startEmbedded(t, 64*pipeline.Kilobyte), asCloud(nil))
	})
	t.Run("mosquitto", func(t *testing.T) {
		testBrokerRefusedPacket(t, startMosquitto(t, "max_packet_size 65536").url, nil)
	})
}

func testBrokerRefusedPacket(t *testing.T, url string, tune func(*Config)) {
	o := newOpener(t, url, func(c *Config) {
		c.ignoreBrokerMax = true
		c.PublishTimeout = 30 * time.Second
		if tune != nil {
			tune(c)
		}
	})
	site := "big-" + o.run
	in := subscribe(t, o.open(t, "sub"), pipeline.ChanUp, site)
	pub := o.open(t, "pub")
	waitFor(t, 5*time.Second, "connection", pub.Connected)

	big := message.NewMessage("big-"+o.run, bytes.Repeat([]byte("b"), 100*1024))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	err := pub.Publish(ctx, pipeline.ChanUp, site, big)
	if !errors.Is(err, pipeline.ErrTooLargeForTransport) || !pipeline.IsPermanent(err) {
		t.Fatalf("publish of a packet the broker refuses: got %v, want a permanent ErrTooLargeForTransport", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the refused packet took %s to fail (publish_timeout 30s)", d)
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
	conns := settled(t, pub)
	if conns > 4 {
		t.Errorf("%v connections, want at most 4: the first, and one after each of the 3 losses", conns)
	}
	if n := testutil.ToFloat64(pub.metrics.refused.WithLabelValues(refusedDropped)); n != 1 {
		t.Errorf("refused{dropped} = %v, want 1", n)
	}

	start = time.Now()
	if err := pub.Publish(ctx, pipeline.ChanUp, site, big); !errors.Is(err, pipeline.ErrTooLargeForTransport) || time.Since(start) > time.Second {
		t.Errorf("a retry of the dropped message: got %v after %s, want ErrTooLargeForTransport at once", err, time.Since(start))
	}
	for i := range 3 {
		id := fmt.Sprintf("after-%d-%s", i, o.run)
		publish(t, pub, pipeline.ChanUp, site, message.NewMessage(id, []byte("small")))
		if m := recv(t, in, 5*time.Second); m.UUID != id {
			t.Errorf("got %q, want %q", m.UUID, id)
		} else {
			m.Ack()
		}
	}
	quiet(t, in, 500*time.Millisecond)
	if n := testutil.ToFloat64(pub.metrics.connects); n != conns {
		t.Errorf("%v connections, %v before: the packet is still sent", n, conns)
	}

	closeQuietly(pub)
	pub = o.open(t, "pub")
	waitFor(t, 5*time.Second, "connection after the restart", pub.Connected)
	quiet(t, in, 500*time.Millisecond)
	if n := testutil.ToFloat64(pub.metrics.connects); n != 1 {
		t.Errorf("%v connections after the restart, want 1: the packet was sent again", n)
	}
}

// settled waits until tr is connected and has made no new connection for
// 300ms, and returns how many it made.
func settled(t *testing.T, tr *Transport) float64 {
	t.Helper()
	last, since := -1.0, time.Now()
	waitFor(t, 10*time.Second, "the connection to settle", func() bool {
		if n := testutil.ToFloat64(tr.metrics.connects); n != last || !tr.Connected() {
			last, since = n, time.Now()
		}
		return time.Since(since) > 300*time.Millisecond
	})
	return last
}

// TestEmbeddedBrokerMaxPacket: the embedded broker announces its
// max_packet, so the transport refuses a larger publish at once, without
// sending it (the connection stays), and the next message flows.
func TestEmbeddedBrokerMaxPacket(t *testing.T) {
	o := newOpener(t, startEmbedded(t, 64*pipeline.Kilobyte), asCloud(nil))
	site := "dev-" + o.run
	in := subscribe(t, o.open(t, "sub"), pipeline.ChanUp, site)
	pub := o.open(t, "pub")
	waitFor(t, 5*time.Second, "connection", pub.Connected)
	start := time.Now()
	err := pub.Publish(t.Context(), pipeline.ChanUp, site, message.NewMessage("big-"+o.run, make([]byte, 100*1024)))
	if !errors.Is(err, pipeline.ErrTooLargeForTransport) || !strings.Contains(err.Error(), "the broker takes at most 65536") {
		t.Fatalf("got %v, want ErrTooLargeForTransport naming the broker's maximum", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refused after %s, want at once", d)
	}
	publish(t, pub, pipeline.ChanUp, site, message.NewMessage("small-"+o.run, make([]byte, 60*1024)))
	if m := recv(t, in, 5*time.Second); m.UUID != "small-"+o.run {
		t.Errorf("got %q, want the message within max_packet", m.UUID)
	} else {
		m.Ack()
	}
	if n := testutil.ToFloat64(pub.metrics.connects); n != 1 {
		t.Errorf("%v connections, want 1: the large packet was sent", n)
	}
	if n := testutil.ToFloat64(pub.metrics.refused.WithLabelValues(refusedTooLarge)); n != 1 {
		t.Errorf("refused{too_large} = %v, want 1", n)
	}
}

// TestReceivedProperties: of the user properties a publisher sets, a
// received message keeps the UUID and the metadata_keys (the first of
// each, within bounds); the rest are dropped and counted, and the site
// always comes from the topic. A UUID no iotod transport sends drops the
// message (acknowledged and counted) and the next one still comes.
func TestReceivedProperties(t *testing.T) {
	t.Run("mochi", func(t *testing.T) { testReceivedProperties(t, startMochi(t, "", nil).url) })
	t.Run("mosquitto", func(t *testing.T) { testReceivedProperties(t, mosquittoURL(t)) })
}

func testReceivedProperties(t *testing.T, url string) {
	o := newOpener(t, url, func(c *Config) { c.MetadataKeys = []string{"trace"} })
	site := "dev-" + o.run
	cloud := o.open(t, "cloud")
	in := subscribe(t, cloud, pipeline.ChanUp, site)
	dev := rawClient(t, url, "hostile-"+o.run)
	topic := "iotod/" + site + "/up"
	send := func(props ...string) {
		t.Helper()
		p := &paho.Publish{QoS: 1, Topic: topic, Payload: []byte("x"), Properties: &paho.PublishProperties{}}
		for i := 0; i+1 < len(props); i += 2 {
			p.Properties.User.Add(props[i], props[i+1])
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if _, err := dev.Publish(ctx, p); err != nil {
			t.Fatalf("raw publish: %v", err)
		}
	}
	propsDropped := func() float64 { return testutil.ToFloat64(cloud.metrics.propsDropped) }

	send(pipeline.MetaSite, "victim", propUUID, "h-1", "trace", "t1", "trace", "t2",
		"handler_poisoned", "forged", "reason_poisoned", "forged", "other", "z")
	m := recv(t, in, 5*time.Second)
	want := message.Metadata{pipeline.MetaSite: site, "trace": "t1"}
	if m.UUID != "h-1" || !maps.Equal(m.Metadata, want) {
		t.Errorf("got %s with %v, want h-1 with %v", m.UUID, m.Metadata, want)
	}
	m.Ack()
	if n := propsDropped(); n != 5 {
		t.Errorf("properties dropped: %v, want 5 (iotod_site, the second trace, handler_poisoned, reason_poisoned, other)", n)
	}

	send(propUUID, strings.Repeat("u", MaxUUIDLen+1))
	send(propUUID, "twice", propUUID, "twice")
	waitFor(t, 5*time.Second, "the messages with a bad UUID to be dropped", func() bool { return dropped(cloud, dropInvalid) == 2 })

	send("trace", strings.Repeat("t", MaxMetaValueLen+1), "x", "y")
	m = recv(t, in, 5*time.Second)
	if m.UUID == "" || m.UUID == "twice" || !maps.Equal(m.Metadata, message.Metadata{pipeline.MetaSite: site}) {
		t.Errorf("got %q with %v, want a new UUID and only the site", m.UUID, m.Metadata)
	}
	m.Ack()
	if n := propsDropped(); n != 7 {
		t.Errorf("properties dropped: %v, want 7", n)
	}
	send(propUUID, "h-last")
	if m := recv(t, in, 5*time.Second); m.UUID != "h-last" {
		t.Errorf("got %q, want h-last", m.UUID)
	} else {
		m.Ack()
	}
	quiet(t, in, 200*time.Millisecond)
}

// rawClient is a plain paho client on url: a publisher that is not an
// iotod transport.
func rawClient(t *testing.T, rawURL, id string) *paho.Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: packets.NewThreadSafeConn(conn)})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatalf("raw connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c
}
