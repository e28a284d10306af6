package mqtt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iotod/iotod/pipeline"
)

func TestSharedSubscriptionMochi(t *testing.T) {
	testSharedSubscription(t, startMochi(t, "", nil).url)
}

func TestSharedSubscriptionMosquitto(t *testing.T) {
	testSharedSubscription(t, mosquittoURL(t))
}

// testSharedSubscription: two cloud workers subscribed to every site's up
// channel in one share group split the messages of several devices
// between them; after acks, each message arrived exactly once, with the
// site of its topic. Only totals are checked: brokers split unevenly.
func testSharedSubscription(t *testing.T, url string) {
	const sites, each = 4, 25
	o := newOpener(t, url, nil)
	w1, w2 := o.open(t, "w1"), o.open(t, "w2")
	if w1.cfg.ShareGroup != w2.cfg.ShareGroup || w1.cfg.ShareGroup == "" {
		t.Fatalf("workers in groups %q and %q", w1.cfg.ShareGroup, w2.cfg.ShareGroup)
	}
	in1, in2 := subscribe(t, w1, pipeline.ChanUp, ""), subscribe(t, w2, pipeline.ChanUp, "")
	run := watermill.NewShortUUID()

	var wg sync.WaitGroup
	want := map[string]string{} // uuid -> site
	for s := range sites {
		site := fmt.Sprintf("dev%d-%s", s, run)
		dev := o.open(t, fmt.Sprintf("dev%d", s))
		msgs := make([]*message.Message, each)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(site))
			want[msgs[i].UUID] = site
		}
		wg.Go(func() {
			for _, m := range msgs {
				publish(t, dev, pipeline.ChanUp, site, m)
			}
		})
	}
	defer wg.Wait()

	got := map[string]int{}
	per := [2]int{}
	deadline := time.After(20 * time.Second)
	for len(got) < sites*each {
		var m *message.Message
		select {
		case m = <-in1:
			per[0]++
		case m = <-in2:
			per[1]++
		case <-deadline:
			t.Fatalf("received %d of %d distinct messages (split %v)", len(got), sites*each, per)
		}
		site, ok := want[m.UUID]
		if !ok {
			t.Fatalf("unknown message %s", m.UUID)
		}
		if m.Metadata.Get(pipeline.MetaSite) != site || string(m.Payload) != site {
			t.Errorf("message %s: site %q, payload %q, want %q", m.UUID, m.Metadata.Get(pipeline.MetaSite), m.Payload, site)
		}
		got[m.UUID]++
		m.Ack()
	}
	quiet(t, in1, 300*time.Millisecond)
	quiet(t, in2, 100*time.Millisecond)
	for id, n := range got {
		if n != 1 {
			t.Errorf("message %s arrived %d times", id, n)
		}
	}
	if per[0]+per[1] != sites*each {
		t.Errorf("workers received %d + %d, want %d in all", per[0], per[1], sites*each)
	}
	t.Logf("split between the workers: %d / %d", per[0], per[1])
}
