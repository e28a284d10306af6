package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
)

// load writes items of one model through a node's API from several
// goroutines, each upserting its own keys with a rising value, and
// remembers per key the last value the API acknowledged and the last one
// it tried (a write whose call failed may still have committed).
type load struct {
	n      *node
	device string // the deviceId of every item
	model  string
	pk     string // the items' pk
	sk     string // their sort key's prefix: sk = sk + id
	field  string // the number field that rises
	item   func(id string, value int) db.Item

	mu    sync.Mutex
	acked map[string]int
	tried map[string]int

	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

// readingLoad writes site's Readings on device n.
func readingLoad(t *testing.T, n *node, site string, workers int) *load {
	return startLoad(t, &load{n: n, device: site, model: "Reading", pk: "reading#" + site, sk: "reading#", field: "value",
		item: func(id string, v int) db.Item { return db.Item{"deviceId": site, "id": id, "value": v} }}, workers)
}

// commandLoad writes Commands for device on cloud node n.
func commandLoad(t *testing.T, n *node, device string, workers int) *load {
	return startLoad(t, &load{n: n, device: device, model: "Command", pk: "command#" + device, sk: "command#", field: "n",
		item: func(id string, v int) db.Item { return db.Item{"deviceId": device, "id": id, "command": "set", "n": v} }}, workers)
}

// startLoad starts workers writers of l.
func startLoad(t *testing.T, l *load, workers int) *load {
	l.acked, l.tried, l.stop = map[string]int{}, map[string]int{}, make(chan struct{})
	for w := range workers {
		l.wg.Add(1)
		go l.run(w)
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) run(w int) {
	defer l.wg.Done()
	var c *api.Client
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		if c == nil {
			if !l.n.running() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			c = l.n.client()
		}
		id := fmt.Sprintf("w%d-%04d", w, i/4) // each key written four times
		l.mu.Lock()
		l.tried[id] = i
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Upsert(ctx, l.model, l.item(id, i), nil)
		cancel()
		if err != nil {
			l.failed.Add(1)
			c = nil // the device may be restarting on another port
			time.Sleep(50 * time.Millisecond)
			continue
		}
		l.ok.Add(1)
		l.mu.Lock()
		l.acked[id] = i
		l.mu.Unlock()
	}
}

// halt stops the writers and waits for them.
func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check compares the items of the side written (source) with those of
// the other side after a sync: the same keys at the same versions (every
// write is there exactly once, at its latest version), and every
// acknowledged write is there with its value or a later one that was
// tried (values only rise).
func (l *load) check(t *testing.T, what string, source, replica map[string]db.Item) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Greater(t, len(l.acked), 20, "%s: the load ran (%d writes acknowledged, %d failed)", what, l.ok.Load(), l.failed.Load())
	sameItems(t, what+": "+l.model+" written vs replicated", source, replica)
	var lost []string
	for id, v := range l.acked {
		it, ok := replica[l.pk+"|"+l.sk+id]
		got := -1
		if ok {
			_, _ = fmt.Sscan(fmt.Sprint(it[l.field]), &got)
		}
		if got < v || got > l.tried[id] {
			lost = append(lost, fmt.Sprintf("%s: acked %d (tried %d), replica has %d", id, v, l.tried[id], got))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%s: %d acknowledged %s writes not replicated at their latest value: %s", what, len(lost), l.model, strings.Join(first(lost, 10), "; "))
	}
	t.Logf("%s: %s: %d keys, %d writes acknowledged, %d calls failed", what, l.model, len(l.acked), l.ok.Load(), l.failed.Load())
}

// converge stops the loads, syncs the device, and checks the Readings
// written on it against the cloud's, and the Commands written in the
// cloud against the device's.
func converge(t *testing.T, what string, dev, cloud *node, loads ...*load) {
	t.Helper()
	for _, l := range loads {
		l.halt()
	}
	t0 := time.Now()
	dev.sync(2 * time.Minute)
	t.Logf("%s: sync took %s; device: %v resends, %v mqtt connections", what, time.Since(t0).Round(time.Millisecond),
		dev.metric("iotod_resends_total"), dev.metric("iotod_mqtt_connections_total"))
	for _, l := range loads {
		props := db.Item{"deviceId": l.device}
		src, dst := dev, cloud
		if l.n != dev {
			src, dst = cloud, dev
		}
		l.check(t, what, items(t, src.client(), l.model, props), items(t, dst.client(), l.model, props))
	}
}
