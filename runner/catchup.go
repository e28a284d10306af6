package runner

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	json "github.com/goccy/go-json"
	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// cursorMeta is where a device keeps its catch-up cursor.
const cursorMeta = "catchup-cursor"

// catchUp is a device's side of catch-up: it asks the cloud for what it
// missed on start, on reconnect, on a gap in live batches and on demand,
// counts what comes back, and moves its cursor only when a catch-up
// arrived whole.
type catchUp struct {
	name string
	site string
	t    pipeline.Transport
	db   *db.DB
	log  *slog.Logger

	mu       sync.Mutex
	active   string // id of the request in flight
	got      int    // changes received for it
	asked    time.Time
	streams  map[string]pipeline.Version // highest After seen per down stream (own site, all)
	waiters  []chan struct{}
	received int64 // catch-up changes received since start, for status
	done     chan struct{}
}

func newCatchUp(name, site string, t pipeline.Transport, d *db.DB, log *slog.Logger) *catchUp {
	return &catchUp{name: name, site: site, t: t, db: d, log: log, streams: map[string]pipeline.Version{}}
}

// start asks at once and then watches the connection: every time the
// transport comes back, it asks again.
func (c *catchUp) start(ctx context.Context) {
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		counter, counts := c.t.(ConnectionCounter)
		var changes uint64
		if counts {
			changes = counter.ConnectionChanges()
		}
		c.request(ctx)
		conn, watch := c.t.(Connector)
		up := !watch || conn.Connected()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if watch {
				now := conn.Connected()
				// Reconnected: seen down at the last look, or gone and back
				// in between (a broker restarted within the second).
				again := counts && counter.ConnectionChanges() != changes
				if now && (!up || again) {
					if counts {
						changes = counter.ConnectionChanges()
					}
					c.request(ctx)
				}
				up = now
			}
			c.mu.Lock()
			stale := c.active != "" && time.Since(c.asked) > 30*time.Second
			c.mu.Unlock()
			if stale {
				c.request(ctx) // the answer never came whole
			}
		}
	}()
}

// request sends a sync request from the stored cursor.
func (c *catchUp) request(ctx context.Context) {
	cursor, err := c.db.GetMeta(ctx, cursorMeta)
	if err != nil {
		c.log.Warn("catch-up cursor", "err", err)
		return
	}
	req := pipeline.SyncRequest{V: pipeline.ProtocolVersion, ID: ulid.Make().String(), Cursor: cursor}
	c.mu.Lock()
	c.active, c.got, c.asked = req.ID, 0, time.Now()
	c.mu.Unlock()
	payload, _ := json.Marshal(req)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.t.Publish(pctx, pipeline.ChanSync, c.site, message.NewMessage(req.ID, payload)); err != nil {
		c.log.Debug("sync request not sent; asked again later", "err", err)
	}
}

// seen is called for every down batch the receiver handled: it counts
// catch-up changes, finishes a catch-up on its marker, and watches live
// batches' cursors for gaps.
func (c *catchUp) seen(ctx context.Context, stream string, b *pipeline.Batch, received int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case b.CatchUp && b.Request == c.active && b.Kind == pipeline.KindSynced:
		if c.got != b.Count {
			c.log.Warn("catch-up incomplete; asking again", "got", c.got, "sent", b.Count)
			c.asked = time.Time{} // the ticker re-asks
			return
		}
		if b.After != "" {
			if err := c.db.SetMeta(ctx, cursorMeta, b.After); err != nil {
				c.log.Warn("catch-up cursor not saved", "err", err)
				return
			}
		}
		c.active = ""
		for _, w := range c.waiters {
			close(w)
		}
		c.waiters = nil
	case b.CatchUp && b.Request == c.active:
		c.got += received
		c.received += int64(received)
		c.asked = time.Now() // it is coming: not stale
	case !b.CatchUp:
		last, known := c.streams[stream]
		if b.Before != "" && c.active == "" {
			before, err := pipeline.ParseVersion(b.Before)
			if err == nil && known && before.Compare(last) > 0 {
				c.log.Info("gap in down batches; catching up", "stream", stream)
				c.asked = time.Time{}
				c.active = "gap" // the ticker sends the request
			}
		}
		if after, err := pipeline.ParseVersion(b.After); err == nil && after.Compare(last) > 0 {
			c.streams[stream] = after
		}
	}
}

// wait asks for a catch-up and returns once one arrived whole, or ctx ends.
func (c *catchUp) wait(ctx context.Context) error {
	w := make(chan struct{})
	c.mu.Lock()
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	c.request(ctx)
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progress reports whether a catch-up is running and how many changes it
// has brought.
func (c *catchUp) progress() (bool, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active != "", c.received
}
