package mqtt

import (
	"context"
	"errors"
	"net/url"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/iotod/iotod/pipeline"
)

// requestProblemInfo asks for problem information in CONNECT. autopaho
// sends a properties block whose RequestProblemInfo is false when a
// session expiry is set, and mochi then strips user properties from every
// PUBLISH it sends the client (the metadata, UUID included).
func requestProblemInfo(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
	if cp.Properties == nil {
		cp.Properties = &paho.ConnectProperties{}
	}
	cp.Properties.RequestProblemInfo = true
	return cp, nil
}

// Connected reports whether the transport is connected to the broker with
// its subscriptions in place.
func (t *Transport) Connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.isReady
}

// ConnectionChanges counts the connection's ups and downs: one who reads
// a different count knows the connection went and came back, however
// quickly (runner.ConnectionCounter; a device's catch-up asks again then).
func (t *Transport) ConnectionChanges() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gen
}

// onConnectionUp restores the subscriptions (the broker may have lost the
// session), then lets publishers through: what a transport publishes
// after a reconnect finds its own subscriptions in place.
func (t *Transport) onConnectionUp(cm *autopaho.ConnectionManager, ack *paho.Connack) {
	t.mu.Lock()
	t.gen++
	gen := t.gen
	filters := t.liveFilters()
	if t.failing {
		t.failing = false
		t.failed = make(chan struct{})
	}
	t.maxPacket = 0
	if ack.Properties != nil && ack.Properties.MaximumPacketSize != nil && !t.cfg.ignoreBrokerMax {
		t.maxPacket = *ack.Properties.MaximumPacketSize
	}
	t.mu.Unlock()
	t.metrics.connects.Inc()
	t.log.Info("mqtt connected", "session_present", ack.SessionPresent, "subscriptions", len(filters))
	go func() {
		if len(filters) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), t.cfg.PublishTimeout)
			err := t.subscribe(ctx, cm, filters)
			cancel()
			if err != nil {
				t.log.Warn("mqtt: restoring subscriptions failed", "err", err)
			}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.gen == gen && !t.isReady && !t.closed {
			t.isReady = true
			close(t.ready)
			t.metrics.connected.Set(1)
		}
	}()
}

func (t *Transport) onConnectionDown() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	if t.isReady {
		t.isReady = false
		t.ready = make(chan struct{})
	}
	t.metrics.connected.Set(0)
	if !t.closed {
		t.log.Warn("mqtt connection lost; reconnecting")
	}
	return true
}

// onConnectError logs the first failed attempt after a connection (or at
// start) as a warning, and the retries at debug level.
func (t *Transport) onConnectError(err error) {
	t.mu.Lock()
	first := !t.failing && !t.closed
	if !t.failing {
		t.failing = true
		close(t.failed)
	}
	t.mu.Unlock()
	if first {
		t.log.Warn("mqtt connect failed; retrying with backoff", "err", err)
		return
	}
	t.log.Debug("mqtt connect failed", "err", err)
}

// awaitReady waits until the transport is connected with its
// subscriptions restored, ctx ends or the transport closes.
func (t *Transport) awaitReady(ctx context.Context) error {
	return t.awaitReadyOr(ctx, false)
}

// errUnreachable reports that a connection attempt failed while waiting.
var errUnreachable = errors.New("mqtt: broker unreachable")

// awaitReadyOr is awaitReady that, with failFast, also returns
// errUnreachable once a connection attempt has failed since the last
// connection (at once if one already has).
func (t *Transport) awaitReadyOr(ctx context.Context, failFast bool) error {
	t.mu.Lock()
	ready, failed, closed := t.ready, t.failed, t.closed
	t.mu.Unlock()
	if closed {
		return pipeline.ErrClosed
	}
	if !failFast {
		failed = nil // a nil channel is never ready
	}
	select {
	case <-ready:
		return nil
	case <-failed:
		return errUnreachable
	case <-t.closing:
		return pipeline.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}
