package db

import (
	"context"

	"github.com/iotod/iotod/pipeline"
)

// Event is one committed change, as change callbacks see it.
type Event struct {
	Model   string           `json:"model"`
	Op      pipeline.Op      `json:"op"`
	Key     pipeline.Key     `json:"key"`
	Old     Item             `json:"old,omitempty"`
	New     Item             `json:"new,omitempty"`
	Version pipeline.Version `json:"version"`
	// Origin is the site that made the change; Remote is true when it is
	// not this site (the change was replicated in).
	Origin string `json:"origin"`
	Remote bool   `json:"remote"`
}

type subscription struct {
	model string
	fn    func(ctx context.Context, ev Event)
}

// OnChange calls fn after each committed change of model ("" for every
// model), in commit order per writer, on the writer's goroutine: keep fn
// quick and hand slow work to another goroutine. The returned func cancels
// the subscription.
func (d *DB) OnChange(model string, fn func(ctx context.Context, ev Event)) (cancel func()) {
	d.subMu.Lock()
	id := d.nextID
	d.nextID++
	d.subs[id] = subscription{model: model, fn: fn}
	d.subMu.Unlock()
	return func() {
		d.subMu.Lock()
		delete(d.subs, id)
		d.subMu.Unlock()
	}
}

func (d *DB) publish(ctx context.Context, evs []Event) {
	if len(evs) == 0 {
		return
	}
	d.subMu.RLock()
	defer d.subMu.RUnlock()
	if len(d.subs) == 0 {
		return
	}
	for _, ev := range evs {
		for _, s := range d.subs {
			if s.model == "" || s.model == ev.Model {
				s.fn(ctx, ev)
			}
		}
	}
}
