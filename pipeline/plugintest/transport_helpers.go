package plugintest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

// Metadata keys the suite stamps on its messages. metaRun tells one
// subtest's messages from those of subtests running beside it on the same
// broker; receivers ack and skip messages of other runs.
const (
	metaRun = "plugintest_run"
	metaN   = "plugintest_n"
	metaPub = "plugintest_pub"
)

const quietPeriod = 250 * time.Millisecond

// TransportOpener returns a working transport, failing t otherwise.
type TransportOpener func(t *testing.T) pipeline.Transport

// transportCase is one subtest: its opener, features and unique run id.
type transportCase struct {
	t       *testing.T
	open    TransportOpener
	timeout time.Duration
	run     string
}

func newTransportCase(t *testing.T, f TransportFeatures, open TransportOpener) *transportCase {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &transportCase{t: t, open: open, timeout: timeout, run: watermill.NewShortUUID()}
}

// transport opens a transport that is closed when the test ends (Close
// is idempotent, so tests may close it first).
func (c *transportCase) transport() pipeline.Transport {
	c.t.Helper()
	tr := c.open(c.t)
	if tr == nil {
		c.t.Fatal("open returned a nil transport")
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		if err := tr.Close(ctx); err != nil {
			c.t.Errorf("close on cleanup: %v", err)
		}
	})
	return tr
}

// site returns a site name unique to this run.
func (c *transportCase) site(role string) string { return role + "-" + c.run }

// msg returns message number n of this run.
func (c *transportCase) msg(n int) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte("payload "+strconv.Itoa(n)+" "+c.run))
	m.Metadata.Set(metaRun, c.run)
	m.Metadata.Set(metaN, strconv.Itoa(n))
	return m
}

func (c *transportCase) publish(tr pipeline.Transport, ch pipeline.Channel, site string, m *message.Message) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), c.timeout)
	defer cancel()
	if err := tr.Publish(ctx, ch, site, m); err != nil {
		c.t.Fatalf("publish %s on %s for %s: %v", m.Metadata.Get(metaN), ch, site, err)
	}
}

// publishAll publishes msgs in order on a goroutine, failing the test on
// an error; the returned func waits for it to finish.
func (c *transportCase) publishAll(tr pipeline.Transport, ch pipeline.Channel, site string, msgs []*message.Message) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, m := range msgs {
			ctx, cancel := context.WithTimeout(c.t.Context(), c.timeout)
			err := tr.Publish(ctx, ch, site, m)
			cancel()
			if err != nil {
				c.t.Errorf("publish %s on %s for %s: %v", m.Metadata.Get(metaN), ch, site, err)
				return
			}
		}
	}()
	return func() { <-done }
}

// receiver reads one subscription, skipping other runs' messages.
type receiver struct {
	c    *transportCase
	name string
	in   <-chan *message.Message
}

func (c *transportCase) subscribe(ctx context.Context, tr pipeline.Transport, ch pipeline.Channel, site string) *receiver {
	c.t.Helper()
	in, err := tr.Subscribe(ctx, ch, site)
	if err != nil {
		c.t.Fatalf("subscribe to %s for %q: %v", ch, site, err)
	}
	if in == nil {
		c.t.Fatalf("subscribe to %s for %q returned a nil channel", ch, site)
	}
	return &receiver{c: c, name: string(ch) + "/" + site, in: in}
}

// next returns the next message of this run, failing the test if none
// comes in time or the subscription closes.
func (r *receiver) next() *message.Message {
	r.c.t.Helper()
	deadline := time.After(r.c.timeout)
	for {
		select {
		case m, ok := <-r.in:
			if !ok {
				r.c.t.Fatalf("%s: subscription closed while waiting for a message", r.name)
			}
			if m.Metadata.Get(metaRun) == r.c.run {
				return m
			}
			m.Ack()
		case <-deadline:
			r.c.t.Fatalf("%s: no message within %s", r.name, r.c.timeout)
		}
	}
}

// expect receives the next message, checks it is number n for site,
// and acks it.
func (r *receiver) expect(n int, site string) {
	r.c.t.Helper()
	m := r.next()
	checkMsg(r.c.t, r.name, m, n, site)
	m.Ack()
}

// none fails the test if a message of this run arrives within the quiet
// period.
func (r *receiver) none() {
	r.c.t.Helper()
	quiet := time.After(quietPeriod)
	for {
		select {
		case m, ok := <-r.in:
			if !ok {
				return
			}
			if m.Metadata.Get(metaRun) == r.c.run {
				r.c.t.Errorf("%s: unexpected message %s (site %q)", r.name, m.Metadata.Get(metaN), m.Metadata.Get(pipeline.MetaSite))
			}
			m.Ack()
		case <-quiet:
			return
		}
	}
}

// closes fails the test unless the subscription closes in time; messages
// that arrive meanwhile are dropped unacked.
func (r *receiver) closes() {
	r.c.t.Helper()
	deadline := time.After(r.c.timeout)
	for {
		select {
		case _, ok := <-r.in:
			if !ok {
				return
			}
		case <-deadline:
			r.c.t.Fatalf("%s: subscription not closed within %s", r.name, r.c.timeout)
		}
	}
}

// checkMsg checks that m is message number n of its run, for site, with
// its payload intact.
func checkMsg(t *testing.T, where string, m *message.Message, n int, site string) {
	t.Helper()
	if got := m.Metadata.Get(metaN); got != strconv.Itoa(n) {
		t.Fatalf("%s: got message %s, want %d", where, got, n)
	}
	want := "payload " + strconv.Itoa(n) + " " + m.Metadata.Get(metaRun)
	if string(m.Payload) != want {
		t.Errorf("%s: message %d payload %q, want %q", where, n, m.Payload, want)
	}
	if got := m.Metadata.Get(pipeline.MetaSite); got != site {
		t.Errorf("%s: message %d has %s %q, want %q", where, n, pipeline.MetaSite, got, site)
	}
}
