package external

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

func newTransport(t *testing.T, c *Config) *Transport {
	t.Helper()
	require.NoError(t, c.Validate())
	set, _ := settings(t, pipeline.KindTransport, "bus")
	tr, err := NewTransportFactory().Create(context.Background(), set, c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.(*Transport).Close(context.Background()) })
	return tr.(*Transport)
}

// next waits for a message on msgs.
func next(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		require.True(t, ok, "the subscription ended")
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message in 5s")
		return nil
	}
}

// A transport in a plugin process: messages cross with their UUID,
// metadata, payload and the site the plugin's transport vouches for; a
// nack brings the same message again, an ack the next; the plugin's
// maximum payload and connection state reach iotod, and its too-large
// refusal is the one the sender splits batches on.
func TestExternalTransport(t *testing.T) {
	bin := binaries(t)
	tr := newTransport(t, testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "ok"}))
	ctx := context.Background()
	assert.Equal(t, 1024, tr.MaxPayload())
	assert.True(t, tr.Connected())

	msgs, err := tr.Subscribe(ctx, pipeline.ChanDown, "dev-1")
	require.NoError(t, err)
	for _, id := range []string{"m1", "m2"} {
		m := message.NewMessage(id, []byte("payload "+id))
		m.Metadata.Set("k", "v-"+id)
		m.Metadata.Set(pipeline.MetaSite, "forged")
		require.NoError(t, tr.Publish(ctx, pipeline.ChanDown, "dev-1", m))
	}
	m := next(t, msgs)
	assert.Equal(t, "m1", m.UUID)
	assert.Equal(t, "payload m1", string(m.Payload))
	assert.Equal(t, "v-m1", m.Metadata.Get("k"))
	assert.Equal(t, "dev-1", m.Metadata.Get(pipeline.MetaSite), "the site is the transport's, not the message's")
	m.Nack()
	again := next(t, msgs)
	assert.Equal(t, "m1", again.UUID, "a nacked message comes again")
	again.Ack()
	assert.Equal(t, "m2", next(t, msgs).UUID)

	err = tr.Publish(ctx, pipeline.ChanDown, "dev-1", message.NewMessage("big", make([]byte, 2000)))
	require.ErrorIs(t, err, pipeline.ErrTooLargeForTransport)
	assert.Contains(t, err.Error(), "plugin")
}

// Closing ends the subscriptions; the transport refuses use after.
func TestExternalTransportClose(t *testing.T) {
	bin := binaries(t)
	tr := newTransport(t, testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "ok"}))
	ctx := context.Background()
	msgs, err := tr.Subscribe(ctx, pipeline.ChanUp, "")
	require.NoError(t, err)
	require.NoError(t, tr.Close(ctx))
	select {
	case _, ok := <-msgs:
		assert.False(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription did not end")
	}
	require.NoError(t, tr.Close(ctx), "twice")
	require.ErrorIs(t, tr.Publish(ctx, pipeline.ChanUp, "dev-1", message.NewMessage("x", nil)), pipeline.ErrClosed)
	_, err = tr.Subscribe(ctx, pipeline.ChanUp, "")
	require.ErrorIs(t, err, pipeline.ErrClosed)
}

// A transport plugin that dies: the publish it died in fails (retryable:
// the sender publishes again), the subscription stays open and is made
// again in the restarted plugin, and what is published then arrives once.
func TestExternalTransportCrash(t *testing.T) {
	bin := binaries(t)
	marker := filepath.Join(t.TempDir(), "crashed")
	tr := newTransport(t, testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "crash-once", "marker": marker}))
	ctx := context.Background()
	msgs, err := tr.Subscribe(ctx, pipeline.ChanUp, "")
	require.NoError(t, err)

	err = tr.Publish(ctx, pipeline.ChanUp, "dev-1", message.NewMessage("m1", []byte("one")))
	require.Error(t, err, "the plugin died in the call")
	assert.False(t, pipeline.IsPermanent(err), "retryable: %v", err)
	_, statErr := os.Stat(marker)
	require.NoError(t, statErr, "it crashed")

	// The sender's retries, each a message of its own, until one arrives:
	// the plugin is back and the subscription made again in it (what is
	// published before that is dropped by its bus; the sender resends).
	seen := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 0; len(seen) == 0; attempt++ {
		require.True(t, time.Now().Before(deadline), "nothing arrived after the restart")
		id := fmt.Sprintf("m1-%d", attempt)
		if tr.Publish(ctx, pipeline.ChanUp, "dev-1", message.NewMessage(id, []byte("one"))) != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		select {
		case m := <-msgs:
			assert.Equal(t, "dev-1", m.Metadata.Get(pipeline.MetaSite))
			seen[m.UUID]++
			m.Ack()
		case <-time.After(200 * time.Millisecond):
		}
	}
	for quiet := time.After(500 * time.Millisecond); ; {
		select {
		case m := <-msgs:
			seen[m.UUID]++
			m.Ack()
			continue
		case <-quiet:
		}
		break
	}
	for id, n := range seen {
		assert.Equal(t, 1, n, "%s arrived %d times", id, n)
	}
}

// A subscription the plugin refuses fails Subscribe, naming the plugin.
func TestExternalTransportRefusedSubscription(t *testing.T) {
	bin := binaries(t)
	tr := newTransport(t, testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "ok"}))
	_, err := tr.Subscribe(context.Background(), "", "dev-1")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "plugin") && strings.Contains(err.Error(), "empty channel"), "%v", err)
}
