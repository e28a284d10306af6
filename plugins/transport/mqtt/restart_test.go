package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// shorten sets claimWait and releaseWait for one test.
func shorten(t *testing.T, claim, release time.Duration) {
	oldClaim, oldRelease := claimWait, releaseWait
	claimWait, releaseWait = claim, release
	t.Cleanup(func() { claimWait, releaseWait = oldClaim, oldRelease })
}

// TestSessionKeepsMessages: a message published while the subscriber's
// transport is closed is delivered when it reopens with the same client
// id; once acked, it is not delivered again after another restart.
func TestSessionKeepsMessages(t *testing.T) {
	b := startMochi(t, "", nil)
	o := newOpener(t, b.url, nil)
	sub := o.open(t, "sub")
	subscribe(t, sub, pipeline.ChanDown, "pump-7")
	closeQuietly(sub)

	pub := o.open(t, "pub")
	publish(t, pub, pipeline.ChanDown, "pump-7", message.NewMessage("while-closed", []byte("x")))

	sub = o.open(t, "sub")
	in := subscribe(t, sub, pipeline.ChanDown, "pump-7")
	m := recv(t, in, 5*time.Second)
	if m.UUID != "while-closed" || m.Metadata.Get(pipeline.MetaSite) != "pump-7" {
		t.Fatalf("after reopening: got %s for %q, want while-closed for pump-7", m.UUID, m.Metadata.Get(pipeline.MetaSite))
	}
	m.Ack()
	closeQuietly(sub)

	sub = o.open(t, "sub")
	quiet(t, subscribe(t, sub, pipeline.ChanDown, "pump-7"), 500*time.Millisecond)
}

// TestUnclaimedDropped: a message the session brings that no subscription
// claims within claimWait is acknowledged and counted.
func TestUnclaimedDropped(t *testing.T) {
	shorten(t, 100*time.Millisecond, releaseWait)
	b := startMochi(t, "", nil)
	o := newOpener(t, b.url, nil)
	sub := o.open(t, "sub")
	subscribe(t, sub, pipeline.ChanUpAck, "pump-7")
	closeQuietly(sub)
	publish(t, o.open(t, "pub"), pipeline.ChanUpAck, "pump-7", message.NewMessage("nobody-wants", nil))

	sub = o.open(t, "sub")
	waitFor(t, 5*time.Second, "the unclaimed message to be dropped", func() bool { return dropped(sub, dropUnclaimed) == 1 })
	quiet(t, subscribe(t, sub, pipeline.ChanUpAck, "pump-7"), 300*time.Millisecond)
}

// TestEndedSubscription: the messages a subscription held when its context
// ended are acknowledged after releaseWait (counted as abandoned); a Close
// before that leaves them to the broker, and they come again.
func TestEndedSubscription(t *testing.T) {
	shorten(t, claimWait, time.Second)
	b := startMochi(t, "", nil)
	o := newOpener(t, b.url, nil)
	for _, closeFirst := range []bool{true, false} {
		site := map[bool]string{true: "close-first", false: "released"}[closeFirst]
		sub := o.open(t, site)
		ctx, cancel := context.WithCancel(t.Context())
		in, err := sub.Subscribe(ctx, pipeline.ChanDown, site)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, sub, pipeline.ChanDown, site, message.NewMessage(site+"-1", nil))
		held := recv(t, in, 5*time.Second)
		cancel()
		if !closeFirst {
			waitFor(t, 5*time.Second, "the held message to be released", func() bool { return dropped(sub, dropAbandoned) == 1 })
		}
		closeQuietly(sub)

		sub = o.open(t, site)
		in = subscribe(t, sub, pipeline.ChanDown, site)
		if closeFirst {
			again := recv(t, in, 5*time.Second)
			if again.UUID != held.UUID {
				t.Errorf("after restart: got %s, want %s again", again.UUID, held.UUID)
			}
			again.Ack()
		} else {
			quiet(t, in, 300*time.Millisecond)
		}
	}
}

// TestPublishAcrossBrokerRestart: with the broker down, Publish waits; when
// the broker is back it completes, and the transport's own subscription,
// restored before publishers go on, receives the message. mosquitto is
// killed and started again as a process when it is installed; the
// embedded broker is restarted on the same port either way.
func TestPublishAcrossBrokerRestart(t *testing.T) {
	t.Run("mochi", func(t *testing.T) {
		b := startMochi(t, "", nil)
		testBrokerRestart(t, b.url, b.stop, func() { startMochi(t, b.addr, nil) })
	})
	t.Run("mosquitto", func(t *testing.T) {
		m := startMosquitto(t)
		testBrokerRestart(t, m.url, m.kill, m.start)
	})
}

func testBrokerRestart(t *testing.T, url string, stop, start func()) {
	o := newOpener(t, url, nil)
	tr := o.open(t, "")
	in := subscribe(t, tr, pipeline.ChanUp, "pump-7")
	publish(t, tr, pipeline.ChanUp, "pump-7", message.NewMessage("before", nil))
	recv(t, in, 5*time.Second).Ack()
	changes := tr.ConnectionChanges()

	stop()
	waitFor(t, 10*time.Second, "the transport to see the broker gone", func() bool { return !tr.Connected() })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- tr.Publish(ctx, pipeline.ChanUp, "pump-7", message.NewMessage("during", []byte("x")))
	}()
	select {
	case err := <-done:
		t.Fatalf("publish returned %v while the broker was down", err)
	case <-time.After(300 * time.Millisecond):
	}
	start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish after the broker came back: %v", err)
		}
		if got := tr.ConnectionChanges(); got < changes+2 {
			t.Errorf("connection changes %d, then %d across the restart: want a down and an up counted", changes, got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publish still waiting 30s after the broker came back")
	}
	// The consumer may see "before" again if its PUBACK was lost with the
	// broker; "during" must come.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-in:
			m.Ack()
			if m.UUID == "during" {
				return
			}
		case <-deadline:
			t.Fatal("the message published while the broker was down never arrived")
		}
	}
}
