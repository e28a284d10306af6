package broker

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

const wait = 5 * time.Second

// opts are a test client's connection options.
type opts struct {
	id, user, pass string
	// session keeps the session (CleanStart false, an hour's expiry).
	session bool
	will    string
	tls     *tls.Config
}

// client is an MQTT v5 test client; what it receives goes to msgs.
type client struct {
	*paho.Client
	msgs chan *paho.Publish
}

// startBroker starts a broker on a free loopback port, closed when the
// test ends.
func startBroker(t *testing.T, cfg Config, reg prometheus.Registerer) *Broker {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	b, err := Start(t.Context(), cfg, nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// dial connects to addr; the error is the connection's or the CONNACK's.
func dial(t *testing.T, addr string, o opts) (*client, *paho.Connack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	var conn net.Conn
	var err error
	if o.tls != nil {
		conn, err = (&tls.Dialer{Config: o.tls}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, nil, err
	}
	c := &client{msgs: make(chan *paho.Publish, 100)}
	c.Client = paho.NewClient(paho.ClientConfig{Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
			c.msgs <- r.Packet
			return true, nil
		}}})
	cp := &paho.Connect{ClientID: o.id, KeepAlive: 30, CleanStart: !o.session,
		Username: o.user, UsernameFlag: o.user != "", Password: []byte(o.pass), PasswordFlag: o.pass != ""}
	if o.session {
		expiry := uint32(3600)
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	if o.will != "" {
		cp.WillMessage = &paho.WillMessage{Topic: o.will, Payload: []byte("gone"), QoS: 1}
	}
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		return nil, ack, err
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, ack, nil
}

// mustDial connects or fails the test.
func mustDial(t *testing.T, addr string, o opts) *client {
	t.Helper()
	c, _, err := dial(t, addr, o)
	require.NoError(t, err, "connect %s", o.id)
	return c
}

func (c *client) publish(t *testing.T, topic, payload string, qos byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	_, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)})
	return err
}

func (c *client) subscribe(t *testing.T, filter string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	_, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	return err
}

// next returns the next message received, failing the test after a while.
func (c *client) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message received")
		return nil
	}
}

// counter reads the counter name{label=value} from reg (0 when absent).
func counter(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
