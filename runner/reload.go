package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// ErrRestartNeeded marks a reload refused because the new plan changes
// what only a restart can change: the stores, the embedded broker, the
// site. Nothing was changed.
var ErrRestartNeeded = errors.New("a restart is needed")

// Reloaded says what a reload did, by pipeline and transport name.
type Reloaded struct {
	Added      []string `json:"added"`
	Removed    []string `json:"removed"`
	Restarted  []string `json:"restarted"`
	Unchanged  []string `json:"unchanged"`
	Transports []string `json:"transports_replaced"`
	// Undrained is what the stopped pipelines did not get acknowledged
	// before the drain's deadline: it stays in their outboxes and the
	// pipelines that replace them send it.
	Undrained string `json:"undrained,omitempty"`
}

// Changed reports whether the reload changed anything.
func (d Reloaded) Changed() bool {
	return len(d.Added)+len(d.Removed)+len(d.Restarted)+len(d.Transports) > 0
}

// Reload applies next, a checked plan of the same config files, to the
// running pipelines: the pipelines added, removed or changed (or whose
// transport changed) are drained and stopped, then the new ones built and
// started; unchanged pipelines run on and the stores, the broker and the
// fleet stay open. The new pipelines are built before anything is
// stopped, so a plugin that will not start changes nothing; a transport
// that changed is replaced after the pipelines on it stopped, so an error
// creating it leaves them stopped, and the error says so.
//
// A plan that changes what cannot change live (a store, the broker, the
// site, the clock skew, the dead-letter file) is refused, wrapping
// ErrRestartNeeded, and nothing changes. ctx bounds the drain of the
// pipelines stopped: what they did not get acknowledged stays in their
// outboxes for their successors (Reloaded.Undrained).
func (r *Runner) Reload(ctx context.Context, next Plan) (Reloaded, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out Reloaded
	switch {
	case r.shutdown:
		return out, fmt.Errorf("reload: %w", pipeline.ErrClosed)
	case !r.started || r.starting == nil:
		return out, errors.New("reload: the pipelines are not started yet; try again")
	}
	if !waitOrEnd(ctx, r.starting) {
		return out, fmt.Errorf("reload: waiting for the pipelines' start: %w", ctx.Err())
	}
	if refused := restartNeeded(r.plan, next); len(refused) > 0 {
		return out, fmt.Errorf("reload refused, nothing changed: %s: %w", strings.Join(refused, "; "), ErrRestartNeeded)
	}
	next.Schema = r.plan.Schema // checked equal by the caller, and the stores hold this one

	// What changes.
	replaced := changedTransports(r.plan.Transports, next.Transports)
	old := map[string]*unit{}
	for _, u := range r.unitList() {
		old[u.plan.Name] = u
	}
	var stopping []*unit
	var early, late []PipelinePlan // built before the stop, or after the transports
	for _, p := range next.Pipelines {
		u, had := old[p.Name]
		onReplaced := usesAny(p, replaced)
		switch {
		case !had:
			out.Added = append(out.Added, p.Name)
		case !samePipeline(u.plan, p) || onReplaced || usesAny(u.plan, replaced):
			out.Restarted = append(out.Restarted, p.Name)
			stopping = append(stopping, u)
		default:
			out.Unchanged = append(out.Unchanged, p.Name)
			continue
		}
		if onReplaced {
			late = append(late, p)
		} else {
			early = append(early, p)
		}
	}
	for _, u := range old {
		if !slices.ContainsFunc(next.Pipelines, func(p PipelinePlan) bool { return p.Name == u.plan.Name }) {
			out.Removed = append(out.Removed, u.plan.Name)
			stopping = append(stopping, u)
		}
	}
	slices.Sort(out.Removed)
	out.Transports = replaced
	if !out.Changed() {
		r.plan = next
		return out, nil
	}

	// Build what can be built while the old pipelines run: a plugin that
	// fails here changes nothing.
	built, err := r.buildUnits(ctx, early)
	if err != nil {
		return Reloaded{}, fmt.Errorf("reload refused, nothing changed: %w", err)
	}

	// Stop the old, then replace the transports and build on them.
	if err := stopUnits(ctx, stopping, nil); err != nil {
		out.Undrained = err.Error()
		r.log.Warn("reload: pipelines stopped before every change was acknowledged; it stays in their outboxes", "err", err)
	}
	r.umu.Lock()
	r.units = slices.DeleteFunc(r.units, func(u *unit) bool { return slices.Contains(stopping, u) })
	r.umu.Unlock()
	for _, name := range sortedKeys(r.plan.Transports) {
		if !slices.Contains(replaced, name) {
			continue
		}
		r.umu.Lock()
		ot := r.transports[name]
		delete(r.transports, name)
		r.umu.Unlock()
		if err := closeTransport(ctx, name, ot); err != nil {
			r.log.Warn("reload: closing the replaced transport", "transport", name, "err", err)
		}
	}
	// The plan follows what runs: a transport that fails to be created is
	// not in it, so that the next reload creates it.
	r.plan.Transports = maps.Clone(r.plan.Transports)
	for _, name := range replaced {
		delete(r.plan.Transports, name)
	}
	for _, name := range sortedKeys(next.Transports) {
		if !slices.Contains(replaced, name) {
			continue
		}
		ot, err := r.createTransport(ctx, name, next.Transports[name])
		if err != nil {
			return out, r.halfApplied(built, late, err)
		}
		r.umu.Lock()
		r.transports[name] = ot
		r.umu.Unlock()
		r.plan.Transports[name] = next.Transports[name]
	}
	lateUnits, err := r.buildUnits(ctx, late)
	if err != nil {
		return out, r.halfApplied(built, late, err)
	}
	built = append(built, lateUnits...)

	// Start the new ones.
	r.plan = next
	r.umu.Lock()
	r.units = append(r.units, built...)
	// In the plan's order, as at start (a sync goes through the senders in
	// it).
	slices.SortStableFunc(r.units, func(a, b *unit) int {
		return cmp.Compare(pipelineAt(next, a.plan.Name), pipelineAt(next, b.plan.Name))
	})
	r.umu.Unlock()
	r.setLocalTriggers()
	for _, u := range stopping {
		if slices.Contains(out.Removed, u.plan.Name) {
			var queues []string
			for _, q := range u.triggers {
				queues = append(queues, q.name)
			}
			r.m.forget(u.plan.Name, queues)
		}
	}
	if err := r.startUnits(built); err != nil {
		return out, fmt.Errorf("reload: %w (fix the config and reload again, or restart)", err)
	}
	for _, name := range slices.Concat(out.Added, out.Restarted) {
		r.log.Info("pipeline started", "pipeline", name, "reload", true)
	}
	return out, nil
}

// halfApplied closes the units built for a reload that failed after the
// old pipelines stopped, and says which are down.
func (r *Runner) halfApplied(built []*unit, late []PipelinePlan, cause error) error {
	var down []string
	for _, u := range built {
		_ = u.close(context.Background())
		down = append(down, u.plan.Name)
	}
	for _, p := range late {
		down = append(down, p.Name)
	}
	r.setLocalTriggers()
	return fmt.Errorf("reload failed after the old pipelines stopped; %s are not running (fix the config and reload again, or restart): %w",
		strings.Join(down, ", "), cause)
}

// restartNeeded lists what next changes that a reload cannot.
func restartNeeded(cur, next Plan) []string {
	var out []string
	if cur.Site != next.Site {
		out = append(out, fmt.Sprintf("site changes from %q to %q", cur.Site, next.Site))
	}
	for _, name := range sortedKeys(cur.Storage) {
		n, ok := next.Storage[name]
		switch {
		case !ok:
			out = append(out, "storage/"+name+" is removed")
		case !sameStorage(cur.Storage[name], n):
			out = append(out, "storage/"+name+" changes")
		}
	}
	for _, name := range sortedKeys(next.Storage) {
		if _, ok := cur.Storage[name]; !ok {
			out = append(out, "storage/"+name+" is added")
		}
	}
	if !reflect.DeepEqual(cur.Broker, next.Broker) {
		out = append(out, "the embedded broker changes")
	}
	if cur.MaxClockSkew != next.MaxClockSkew {
		out = append(out, "max_clock_skew changes")
	}
	if cur.DeadLetters != next.DeadLetters || cur.DeadLetterMax != next.DeadLetterMax || cur.DeadLetterKeep != next.DeadLetterKeep {
		out = append(out, "the dead-letter file changes (or the first pipeline is added, or the last removed)")
	}
	if cur.Dir != next.Dir {
		out = append(out, "the config's folder changes")
	}
	return out
}

// changedTransports lists the transports added, removed or changed.
func changedTransports(cur, next map[string]ComponentPlan) []string {
	var out []string
	for _, name := range sortedKeys(cur) {
		if n, ok := next[name]; !ok || !sameComponent(cur[name], n) {
			out = append(out, name)
		}
	}
	for _, name := range sortedKeys(next) {
		if _, ok := cur[name]; !ok {
			out = append(out, name)
		}
	}
	return out
}

// usesAny reports whether p runs on one of the transports: as its end,
// or through a trigger (a trigger may publish on any transport).
func usesAny(p PipelinePlan, transports []string) bool {
	if len(transports) == 0 {
		return false
	}
	if len(p.Triggers) > 0 {
		return true
	}
	for _, ref := range []Ref{p.From, p.To} {
		if ref.Kind == pipeline.KindTransport && slices.Contains(transports, ref.Name) {
			return true
		}
	}
	return false
}

func sameStorage(a, b StoragePlan) bool {
	return sameComponent(a.ComponentPlan, b.ComponentPlan) && a.Side == b.Side && a.Site == b.Site && a.ReadCache == b.ReadCache
}

// sameComponent compares two plugin instances by id, type and decoded
// config (the factories of two loads are different values).
func sameComponent(a, b ComponentPlan) bool {
	return a.ID == b.ID && factoryType(a.Factory) == factoryType(b.Factory) && reflect.DeepEqual(a.Config, b.Config)
}

func factoryType(f pipeline.Factory) string {
	if f == nil {
		return ""
	}
	return f.Type()
}

// samePipeline compares two pipelines' plans.
func samePipeline(a, b PipelinePlan) bool {
	same := func(x, y []ComponentPlan) bool { return slices.EqualFunc(x, y, sameComponent) }
	if !same(a.Stages, b.Stages) || !same(a.Triggers, b.Triggers) {
		return false
	}
	a.Stages, a.Triggers, b.Stages, b.Triggers = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// pipelineAt is the index of the named pipeline in plan.
func pipelineAt(plan Plan, name string) int {
	return slices.IndexFunc(plan.Pipelines, func(p PipelinePlan) bool { return p.Name == name })
}
