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

// load writes Readings to a device through its API from several
// goroutines, each upserting its own keys with a rising value, and
// remembers per key the last value the API acknowledged and the last one
// it tried (a write whose call failed may still have committed).
type load struct {
	n    *node
	site string

	mu    sync.Mutex
	acked map[string]int
	tried map[string]int

	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startLoad starts workers writers against n.
func startLoad(t *testing.T, n *node, site string, workers int) *load {
	l := &load{n: n, site: site, acked: map[string]int{}, tried: map[string]int{}, stop: make(chan struct{})}
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
		_, err := c.Upsert(ctx, "Reading", db.Item{"deviceId": l.site, "id": id, "value": i}, nil)
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

// check compares the device's and the cloud's Readings after a sync:
// the same keys at the same versions (every write is in the cloud exactly
// once, at its latest version), and every acknowledged write is there
// with its value or a later one that was tried (values only rise).
func (l *load) check(t *testing.T, what string, device, cloud map[string]db.Item) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Greater(t, len(l.acked), 50, "%s: the load ran (%d writes acknowledged, %d failed)", what, l.ok.Load(), l.failed.Load())
	sameItems(t, what+": device vs cloud", device, cloud)
	var lost []string
	for id, v := range l.acked {
		it, ok := cloud["reading#"+l.site+"|reading#"+id]
		got := -1
		if ok {
			fmt.Sscan(fmt.Sprint(it["value"]), &got)
		}
		if got < v || got > l.tried[id] {
			lost = append(lost, fmt.Sprintf("%s: acked %d (tried %d), cloud has %d", id, v, l.tried[id], got))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%s: %d acknowledged writes not in the cloud at their latest value: %s", what, len(lost), strings.Join(first(lost, 10), "; "))
	}
	t.Logf("%s: %d keys, %d writes acknowledged, %d calls failed", what, len(l.acked), l.ok.Load(), l.failed.Load())
}

// settle stops the load and syncs the device.
func (l *load) settle(t *testing.T, what string, timeout time.Duration) {
	t.Helper()
	l.halt()
	t0 := time.Now()
	l.n.sync(timeout)
	t.Logf("%s: sync took %s; device: %v resends, %v mqtt connections", what, time.Since(t0).Round(time.Millisecond),
		l.n.metric("iotod_resends_total"), l.n.metric("iotod_mqtt_connections_total"))
}

// converge syncs the device, then compares its Readings with the cloud's.
func (l *load) converge(t *testing.T, what string, cloud *api.Client, timeout time.Duration) {
	t.Helper()
	l.settle(t, what, timeout)
	props := db.Item{"deviceId": l.site}
	l.check(t, what, items(t, l.n.client(), "Reading", props), items(t, cloud, "Reading", props))
}
