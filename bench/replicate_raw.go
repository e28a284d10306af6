package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// rawTopic is where the baseline publishes: the raw site's up topic, under
// the default template, which the broker's ACL lets that user publish to.
var rawTopic = "iotod/" + rawSite + "/up"

// rawPublish is the transport limit: n QoS 1 publishes of one ~200-byte
// message per change, from publishers clients each waiting for the PUBACK
// of one message before sending the next, through the rig's broker to one
// subscribing client (a cloud user). The time runs from the first publish
// until every message is both acknowledged and delivered.
func (r *rig) rawPublish(ctx context.Context, n, publishers int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var got atomic.Int64
	delivered := make(chan struct{})
	sub, err := r.rawClient(ctx, "bench-raw-sub", cloudUser, cloudPass, func(paho.PublishReceived) (bool, error) {
		if got.Add(1) == int64(n) {
			close(delivered)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	defer disconnect(sub)
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: rawTopic, QoS: 1}}}); err != nil {
		return 0, fmt.Errorf("raw subscribe %s: %w", rawTopic, err)
	}
	pubs := make([]*autopaho.ConnectionManager, publishers)
	for i := range pubs {
		c, err := r.rawClient(ctx, fmt.Sprintf("bench-raw-pub-%d", i), rawSite, rawPass, nil)
		if err != nil {
			return 0, err
		}
		defer disconnect(c)
		pubs[i] = c
	}
	payload := make([]byte, 200)
	for i := range payload {
		payload[i] = 'p'
	}
	var wg sync.WaitGroup
	errs := make([]error, publishers)
	start := time.Now()
	for i, c := range pubs {
		count := n / publishers
		if i < n%publishers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				if _, err := c.Publish(ctx, &paho.Publish{Topic: rawTopic, QoS: 1, Payload: payload}); err != nil {
					errs[i] = fmt.Errorf("raw publish: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	acked := time.Since(start)
	select {
	case <-delivered:
		return float64(n) / time.Since(start).Seconds(), nil
	case <-time.After(10 * time.Second):
		// The broker acknowledged every publish but did not deliver them
		// all (mochi v2.7.9 can lose a delivery when packet ids clash):
		// the rate is the acknowledged one.
		return float64(n) / acked.Seconds(), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("raw publish: %d of %d delivered: %w", got.Load(), n, ctx.Err())
	}
}

// rawClient connects a plain autopaho client (clean start, memory session,
// automatic PUBACKs) to the rig's broker.
func (r *rig) rawClient(ctx context.Context, id, user, pass string, onPublish func(paho.PublishReceived) (bool, error)) (*autopaho.ConnectionManager, error) {
	u, err := url.Parse(r.url)
	if err != nil {
		return nil, fmt.Errorf("raw client %s: %w", id, err)
	}
	cc := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, CleanStartOnInitialConnection: true,
		ConnectUsername: user, ConnectPassword: []byte(pass), ConnectTimeout: 10 * time.Second,
		ClientConfig: paho.ClientConfig{ClientID: id},
	}
	if onPublish != nil {
		cc.OnPublishReceived = []func(paho.PublishReceived) (bool, error){onPublish}
	}
	c, err := autopaho.NewConnection(context.Background(), cc)
	if err != nil {
		return nil, fmt.Errorf("raw client %s: %w", id, err)
	}
	if err := c.AwaitConnection(ctx); err != nil {
		disconnect(c)
		return nil, fmt.Errorf("raw client %s: connect: %w", id, err)
	}
	return c, nil
}

func disconnect(c *autopaho.ConnectionManager) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}
