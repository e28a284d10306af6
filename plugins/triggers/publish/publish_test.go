package publish

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/transport/mqtt"
	"github.com/iotod/iotod/plugins/triggers/filter"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults need a transport", func(*Config) {}, "transport: required"},
		{"ok", func(c *Config) { c.Transport = "cloud" }, ""},
		{"wildcard", func(c *Config) { c.Transport = "cloud"; c.Topic = "a/+/b" }, "no wildcard"},
		{"hash", func(c *Config) { c.Transport = "cloud"; c.Topics = map[string]string{"User": "a/#"} }, "topics.User"},
		{"dollar", func(c *Config) { c.Transport = "cloud"; c.Topic = "$SYS/x" }, "starts with no"},
		{"brace", func(c *Config) { c.Transport = "cloud"; c.Topic = "a/{site/b" }, "around a placeholder"},
		{"unknown placeholder", func(c *Config) { c.Transport = "cloud"; c.Topic = "a/{nope}" }, "unknown placeholder {nope}"},
		{"empty", func(c *Config) { c.Transport = "cloud"; c.Topic = "" }, "empty topic"},
		{"bad origin", func(c *Config) { c.Transport = "cloud"; c.Origin = "mars" }, "origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, pipeline.ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// The trigger publishes each selected change on its topic through a real
// mqtt transport and broker: a plain MQTT client subscribed to the
// topics gets every change as JSON; keys' '#' and '/' are escaped so
// each value stays one level.
func TestPublishesThroughABroker(t *testing.T) {
	u := os.Getenv("IOTOD_MOSQUITTO_URL")
	if u == "" {
		if testing.Short() {
			t.Skip("IOTOD_MOSQUITTO_URL is not set (make test starts mosquitto)")
		}
		t.Fatal("IOTOD_MOSQUITTO_URL is not set: start mosquitto with scripts/services.sh start")
	}
	ctx := context.Background()
	cfg := mqtt.NewDefaultConfig()
	cfg.URL = u
	cfg.ClientID = "publish-trigger-" + strings.ReplaceAll(t.Name(), "/", "-")
	tr, err := mqtt.New(cfg, pipeline.Settings{Site: "cloud"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close(context.Background()) })

	var mu sync.Mutex
	got := map[string][]byte{}
	sub := rawSubscriber(t, u, "publish-sub-"+cfg.ClientID, "events/#", func(p *paho.Publish) {
		mu.Lock()
		got[p.Topic] = p.Payload
		mu.Unlock()
	})
	_ = sub

	c := NewDefaultConfig()
	c.Transport = "cloud"
	c.Topic = "events/{site}/{model}/{op}/{pk}"
	c.Topics = map[string]string{"Command": "events/commands/{origin}/{sk}"}
	c.Models = []string{"Reading", "Command"}
	require.NoError(t, c.Validate())
	trig, err := create(ctx, pipeline.Settings{Site: "cloud", Transport: func(name string) (pipeline.Transport, bool) {
		return tr, name == "cloud"
	}}, c)
	require.NoError(t, err)

	changes := []pipeline.Change{
		{Model: "Reading", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "reading#dev/1", SK: "reading#1"}, Item: json.RawMessage(`{"temp":21}`),
			Version: pipeline.Version{Wall: 1, Origin: "dev-1"}, Origin: "dev-1"},
		{Model: "Command", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "command#dev-1", SK: "command#c+1"},
			Version: pipeline.Version{Wall: 2, Origin: "cloud"}, Origin: "cloud"},
		{Model: "User", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "u", SK: "u"}, Item: json.RawMessage(`{}`),
			Version: pipeline.Version{Wall: 3, Origin: "dev-1"}, Origin: "dev-1"}, // not selected
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, trig.(*Trigger).Fire(fctx, "ingest", changes))

	want := map[string]filter.Change{
		"events/cloud/Reading/create/reading%23dev%2F1": filter.Payload(changes[0]),
		"events/commands/cloud/command%23c%2B1":         filter.Payload(changes[1]),
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(want)
	}, 10*time.Second, 10*time.Millisecond, "both messages arrive")
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, got, 2, "the unselected change is not published")
	for topic, w := range want {
		require.Contains(t, got, topic)
		var c filter.Change
		require.NoError(t, json.Unmarshal(got[topic], &c))
		assert.Equal(t, w.Key, c.Key)
		assert.Equal(t, w.Op, c.Op)
		assert.Equal(t, w.Version, c.Version)
		if w.Item != nil {
			assert.JSONEq(t, string(w.Item), string(c.Item))
		}
	}
}

// A transport that is missing, or cannot publish on topics, is a
// configuration error naming it.
func TestCreateNeedsAnMQTTTransport(t *testing.T) {
	c := NewDefaultConfig()
	c.Transport = "bus"
	_, err := create(context.Background(), pipeline.Settings{Transport: func(string) (pipeline.Transport, bool) { return nil, false }}, c)
	assert.ErrorContains(t, err, `no transport "bus"`)
	_, err = create(context.Background(), pipeline.Settings{Transport: func(string) (pipeline.Transport, bool) { return notTopics{}, true }}, c)
	assert.ErrorContains(t, err, "cannot publish on a topic")
	assert.True(t, errors.Is(err, pipeline.ErrInvalid))
}

type notTopics struct{ pipeline.Transport }

// rawSubscriber is a plain MQTT client subscribed to filter.
func rawSubscriber(t *testing.T, rawURL, id, topicFilter string, on func(*paho.Publish)) *paho.Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	c := paho.NewClient(paho.ClientConfig{Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			on(pr.Packet)
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	_, err = c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topicFilter, QoS: 1}}})
	require.NoError(t, err)
	return c
}
