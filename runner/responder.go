package runner

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	json "github.com/goccy/go-json"
	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// responder answers devices' sync requests on the cloud: every change of
// the device's down models (its own items and those without an owner)
// above its cursor, in catch-up batches, then a synced marker. It serves
// several devices at once (at most maxCatchUps), one catch-up per device
// at a time: a request from a device whose catch-up is running waits, and
// later ones replace it, so a flood of requests costs one more catch-up,
// started no sooner than minInterval after the last. No device can slow
// the others' catch-ups by asking often.
type responder struct {
	name   string
	t      pipeline.Transport
	db     *db.DB
	schema *schema.Schema
	owner  string
	log    *slog.Logger
	m      *metrics
	fleet  *Fleet // records each device's requests and cursors
	limit  int    // changes per catch-up batch
	done   chan struct{}

	// minInterval is the least time between two catch-ups of one device
	// (default 1s); maxCatchUps bounds the catch-ups running at once
	// (default 4).
	minInterval time.Duration
	maxCatchUps int
	// windowBatches and windowBytes bound a catch-up's batches sent and
	// not yet acknowledged by the device (defaults 4 and 1 MB); ackStall is
	// how long a catch-up waits for an ack before it ends (default 10s).
	// A device whose catch-ups stall waits minInterval doubled per stall
	// in a row (at most maxStallWait, default 5m) before its next one, so
	// a device that never acknowledges holds a catch-up slot rarely.
	windowBatches int
	windowBytes   int
	ackStall      time.Duration
	maxStallWait  time.Duration

	mu        sync.Mutex
	sites     map[string]*siteCatchUp
	windows   map[string]*ackWindow // by site, while its catch-up runs
	stalls    map[string]int        // by site: catch-ups stalled in a row
	notBefore map[string]time.Time  // by site: no catch-up before, after a stall
	slots     chan struct{}
	wg        sync.WaitGroup
}

// siteCatchUp is the running catch-up of one device and the request
// waiting behind it.
type siteCatchUp struct {
	pending *pipeline.SyncRequest
}

func (r *responder) start(ctx context.Context) error {
	if r.minInterval <= 0 {
		r.minInterval = time.Second
	}
	if r.maxCatchUps <= 0 {
		r.maxCatchUps = 4
	}
	if r.windowBatches <= 0 {
		r.windowBatches = 4
	}
	if r.windowBytes <= 0 {
		r.windowBytes = 1 << 20
	}
	if r.ackStall <= 0 {
		r.ackStall = 10 * time.Second
	}
	if r.maxStallWait <= 0 {
		r.maxStallWait = 5 * time.Minute
	}
	r.sites = map[string]*siteCatchUp{}
	r.windows = map[string]*ackWindow{}
	r.stalls = map[string]int{}
	r.notBefore = map[string]time.Time{}
	r.slots = make(chan struct{}, r.maxCatchUps)
	// The devices' acks of catch-up batches open their windows.
	acks, err := r.t.Subscribe(ctx, pipeline.ChanDownAck, "")
	if err != nil {
		return err
	}
	go func() {
		for msg := range acks {
			r.acked(msg)
			msg.Ack()
		}
	}()
	msgs, err := r.t.Subscribe(ctx, pipeline.ChanSync, "")
	if err != nil {
		return err
	}
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		defer r.wg.Wait()
		for msg := range msgs {
			r.take(ctx, msg)
			msg.Ack()
		}
	}()
	return nil
}

// acked passes a device's ack to its catch-up's window.
func (r *responder) acked(msg *message.Message) {
	site := msg.Metadata.Get(pipeline.MetaSite)
	r.mu.Lock()
	w := r.windows[site]
	r.mu.Unlock()
	if w == nil {
		return
	}
	if ack, err := pipeline.DecodeAck(msg.Payload, 0); err == nil {
		w.ack(ack.Batch)
	}
}

// take reads a request and starts its device's catch-up, or queues it
// behind the running one (replacing what was queued).
func (r *responder) take(ctx context.Context, msg *message.Message) {
	site := msg.Metadata.Get(pipeline.MetaSite)
	req, err := pipeline.DecodeSyncRequest(msg.Payload)
	r.fleet.syncRequest(site, req)
	if err != nil {
		r.m.syncRequests.WithLabelValues(r.name, "refused").Inc()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sc, busy := r.sites[site]; busy {
		if sc.pending != nil {
			r.m.syncRequests.WithLabelValues(r.name, "coalesced").Inc()
		}
		sc.pending = req
		return
	}
	r.m.syncRequests.WithLabelValues(r.name, "served").Inc()
	r.sites[site] = &siteCatchUp{}
	r.wg.Add(1)
	go r.serveSite(ctx, site, req)
}

// serveSite runs a device's catch-ups until none waits.
func (r *responder) serveSite(ctx context.Context, site string, req *pipeline.SyncRequest) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		wait := time.Until(r.notBefore[site])
		r.mu.Unlock()
		if wait > 0 { // its last catch-up stalled: not yet, and no slot held
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		began := time.Now()
		select {
		case r.slots <- struct{}{}:
			err := r.handle(ctx, site, req)
			<-r.slots
			r.afterCatchUp(site, err)
		case <-ctx.Done():
		}
		r.mu.Lock()
		sc := r.sites[site]
		if sc.pending == nil || ctx.Err() != nil {
			delete(r.sites, site)
			r.mu.Unlock()
			return
		}
		req, sc.pending = sc.pending, nil
		r.mu.Unlock()
		select {
		case <-time.After(time.Until(began.Add(r.minInterval))):
		case <-ctx.Done():
		}
	}
}

// afterCatchUp keeps a site's stalls in a row and the time before which
// its next catch-up may not start.
func (r *responder) afterCatchUp(site string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !errors.Is(err, errStalled) {
		if err == nil {
			delete(r.stalls, site)
			delete(r.notBefore, site)
		}
		return
	}
	r.m.syncRequests.WithLabelValues(r.name, "stalled").Inc()
	r.stalls[site]++
	wait := r.maxStallWait
	if n := r.stalls[site]; n < 20 {
		wait = min(r.minInterval<<n, r.maxStallWait)
	}
	r.notBefore[site] = time.Now().Add(wait)
}

func (r *responder) handle(ctx context.Context, site string, req *pipeline.SyncRequest) error {
	since := pipeline.Version{}
	full := req.Full || req.Cursor == ""
	if !full {
		v, err := pipeline.ParseVersion(req.Cursor)
		// A cursor older than the tombstones the cloud keeps cannot see
		// every remove since: resync the device's models fully.
		if err != nil || time.UnixMilli(v.Wall).Before(time.Now().Add(-db.TombstoneTTL)) {
			full = true
		} else {
			since = v
		}
	}
	keep := func(model string, item db.Item) bool {
		m := r.schema.Models[model]
		if m == nil || m.Process.Enable != schema.SideBoth && m.Process.Enable != "" ||
			m.Process.Sync != schema.SyncDown && m.Process.Sync != schema.SyncBoth {
			return false
		}
		if item == nil || r.owner == "" {
			return true
		}
		owner, ok := item[r.owner].(string)
		return !ok || owner == "" || owner == site
	}
	w := newAckWindow(r.windowBatches, r.windowBytes, r.ackStall)
	r.mu.Lock()
	r.windows[site] = w
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.windows, site)
		r.mu.Unlock()
	}()
	top, count := since, 0
	var held []pipeline.Change
	flush := func() error {
		if len(held) == 0 {
			return nil
		}
		sent, err := r.publishChanges(ctx, site, req.ID, held, w)
		count += sent
		held = held[:0]
		return err
	}
	err := r.db.ChangesSince(ctx, db.CatchUp{Site: site, Owner: r.owner, Since: since, Keep: keep}, func(c pipeline.Change) error {
		held = append(held, c)
		if c.Version.Compare(top) > 0 {
			top = c.Version
		}
		if len(held) >= r.limit {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		r.log.Warn("catch-up failed; the device asks again", "site", site, "err", err)
		return err
	}
	marker := &pipeline.Batch{Kind: pipeline.KindSynced, CatchUp: true, Request: req.ID, Count: count}
	if !top.IsZero() {
		marker.After = top.String()
	}
	if err := r.publish(ctx, site, marker, nil); err != nil {
		r.log.Warn("catch-up marker failed; the device asks again", "site", site, "err", err)
		return err
	}
	r.log.Info("catch-up sent", "site", site, "changes", count, "full", full)
	return nil
}

// publishChanges sends changes as catch-up batches for request, halving
// a batch the transport finds too large for its maximum payload. A single
// change too large is left out (the live sender refuses it the same way)
// and not counted. It returns how many changes went out.
func (r *responder) publishChanges(ctx context.Context, site, request string, changes []pipeline.Change, w *ackWindow) (int, error) {
	err := r.publish(ctx, site, &pipeline.Batch{Kind: pipeline.KindChanges, CatchUp: true, Request: request, Changes: changes}, w)
	switch {
	case err == nil:
		return len(changes), nil
	case !errors.Is(err, pipeline.ErrTooLargeForTransport):
		return 0, err
	case len(changes) == 1:
		r.log.Warn("catch-up: a change too large for the transport is left out", "site", site,
			"model", changes[0].Model, "key", changes[0].Key.String(), "err", err)
		return 0, nil
	}
	half := len(changes) / 2
	first, err := r.publishChanges(ctx, site, request, changes[:half], w)
	if err != nil {
		return first, err
	}
	second, err := r.publishChanges(ctx, site, request, changes[half:], w)
	return first + second, err
}

// publish sends b to site, within w (nil: at once) when w is given.
func (r *responder) publish(ctx context.Context, site string, b *pipeline.Batch, w *ackWindow) error {
	b.V, b.ID, b.Site = pipeline.ProtocolVersion, ulid.Make().String(), "cloud"
	payload, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if w != nil {
		if err := w.wait(ctx, site); err != nil {
			return err
		}
		// Counted before it goes: the device's ack may come back first.
		w.sent(b.ID, len(payload))
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = r.t.Publish(pctx, pipeline.ChanDown, site, message.NewMessage(b.ID, payload))
	if err != nil && w != nil {
		w.ack(b.ID) // not sent: not waited for
	}
	return err
}
