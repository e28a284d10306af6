package runner

import (
	"context"
	"fmt"
	"sort"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// buildPipelines makes the stages, triggers, senders and receivers.
func (r *Runner) buildPipelines(ctx, runCtx context.Context) error {
	for _, p := range r.plan.Pipelines {
		switch {
		case p.From.Kind == pipeline.KindStorage && p.To.Kind == pipeline.KindTransport:
			if err := r.buildSender(ctx, p); err != nil {
				return fmt.Errorf("pipeline %s: %w", p.Name, err)
			}
		case p.From.Kind == pipeline.KindTransport && p.To.Kind == pipeline.KindStorage:
			if err := r.buildReceiver(ctx, runCtx, p); err != nil {
				return fmt.Errorf("pipeline %s: %w", p.Name, err)
			}
		default:
			return fmt.Errorf("pipeline %s: goes from %s to %s; a pipeline goes from a storage to a transport or back", p.Name, p.From, p.To)
		}
	}
	return nil
}

func (r *Runner) buildSender(ctx context.Context, p PipelinePlan) error {
	src, ok := r.stores[p.From.Name]
	t, tok := r.transports[p.To.Name]
	if !ok || !tok {
		return fmt.Errorf("%s or %s is not defined", p.From, p.To)
	}
	spec := senderSpec{Name: p.Name, Direction: p.Direction, Site: src.plan.Site, Storage: p.From.Name,
		Transport: p.To.Name, Store: src.store, Out: t, AckTimeout: p.AckTimeout, MaxInFlight: p.MaxInFlight, MaxInFlightBytes: p.MaxInFlightBytes,
		Keep: func(c *pipeline.Change) bool { return src.db.Replicates(c.Model) }}
	side := sideName(src.plan.Side)
	seenBatcher := false
	for _, sp := range p.Stages {
		st, err := r.makeStage(ctx, p, sp, side)
		if err != nil {
			return err
		}
		if _, isBatcher := st.(pipeline.Batcher); isBatcher {
			if seenBatcher {
				return fmt.Errorf("stage %s: only one batch stage per pipeline", sp.ID)
			}
			seenBatcher = true
			spec.NewBatcher = func() (pipeline.Batcher, error) {
				b, err := r.makeStage(ctx, p, sp, side) // one per target site
				if err != nil {
					return nil, err
				}
				return b.(pipeline.Batcher), nil
			}
			continue
		}
		stage, ok := st.(pipeline.Stage)
		if !ok {
			return fmt.Errorf("stage %s: type %s made a %T, not a stage", sp.ID, sp.Factory.Type(), st)
		}
		if seenBatcher {
			spec.Post = append(spec.Post, namedStage{name: sp.ID.String(), stage: stage})
		} else {
			spec.Stages = append(spec.Stages, namedStage{name: sp.ID.String(), stage: stage})
		}
	}
	if src.plan.Side == schema.SideCloud {
		// The cloud fans changes out to every device; a device's own
		// changes are not sent back to it (the receiver also drops them).
		spec.Route = ownerRoute(ownerAttr(p))
		spec.AckSite, spec.FanOut = "", true
	} else {
		own := src.plan.Site
		spec.Route = func(*pipeline.Change) string { return own }
		spec.AckSite = own
	}
	// Its triggers fire on the storage's local writes.
	triggers, err := r.makeTriggers(ctx, p, src)
	if err != nil {
		return err
	}
	if len(triggers) > 0 {
		names := make([]string, len(triggers))
		for i, nt := range triggers {
			names[i] = nt.name
		}
		src.db.SetLocalTriggers(names)
		r.closers = append(r.closers, closeFunc(src.db.OnChange("", func(_ context.Context, ev db.Event) {
			if !ev.Remote {
				for _, nt := range triggers {
					nt.queue.poke()
				}
			}
		})))
	}
	snd := newSender(spec, r.m, r.log.With("pipeline", p.Name), r.dl)
	r.senders = append(r.senders, snd)
	if spec.FanOut {
		snd.fleet = r.fleet // the devices' acks and what waits for them
		r.responders = append(r.responders, &responder{name: p.Name, t: t, db: src.db, schema: r.plan.Schema,
			owner: ownerAttr(p), log: r.log.With("pipeline", p.Name), m: r.m, limit: 500, fleet: r.fleet})
	}
	return nil
}

func (r *Runner) buildReceiver(ctx, runCtx context.Context, p PipelinePlan) error {
	dst, ok := r.stores[p.To.Name]
	t, tok := r.transports[p.From.Name]
	if !ok || !tok {
		return fmt.Errorf("%s or %s is not defined", p.From, p.To)
	}
	spec := receiverSpec{Name: p.Name, Direction: p.Direction, Site: dst.plan.Site, Storage: p.To.Name,
		Transport: p.From.Name, In: t, DB: dst.db, Owner: ownerAttr(p)}
	if dst.plan.Side != schema.SideCloud {
		spec.From = dst.plan.Site // a device hears only its own (and broadcast) messages
	}
	side := sideName(dst.plan.Side)
	for _, sp := range p.Stages {
		st, err := r.makeStage(ctx, p, sp, side)
		if err != nil {
			return err
		}
		stage, ok := st.(pipeline.Stage)
		if _, isBatcher := st.(pipeline.Batcher); isBatcher || !ok {
			return fmt.Errorf("stage %s: a %s stage cannot run on a receiving pipeline", sp.ID, sp.Factory.Type())
		}
		spec.Stages = append(spec.Stages, namedStage{name: sp.ID.String(), stage: stage})
	}
	triggers, err := r.makeTriggers(ctx, p, dst)
	if err != nil {
		return err
	}
	spec.Triggers = triggers
	if r.router == nil {
		router, err := newRouter(r.log, r.dl, r.m)
		if err != nil {
			return err
		}
		r.router = router
	}
	rc := newReceiver(spec, r.m, r.log.With("pipeline", p.Name), r.dl)
	rc.runCtx = runCtx
	if dst.plan.Side == schema.SideCloud {
		rc.fleet = r.fleet // what devices send up
	}
	if p.Direction == pipeline.Down && dst.plan.Side != schema.SideCloud {
		rc.catchUp = newCatchUp(p.Name, dst.plan.Site, t, dst.db, r.log.With("pipeline", p.Name))
	}
	r.router.AddConsumerHandler(p.Name, p.Name, subscriber{t: t, ch: pipeline.Channel(p.Direction), site: spec.From}, rc.handle)
	r.receivers = append(r.receivers, rc)
	return nil
}

func (r *Runner) makeStage(ctx context.Context, p PipelinePlan, sp ComponentPlan, side string) (any, error) {
	c, err := sp.Factory.Create(ctx, r.settings(pipeline.KindStage, sp.ID, r.plan.Site), sp.Config)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", sp.ID, err)
	}
	r.closeLater(c)
	if b, ok := c.(pipeline.StageBinder); ok {
		ss := pipeline.StageSettings{Pipeline: p.Name, Direction: p.Direction, Side: side, Receiving: p.From.Kind == pipeline.KindTransport}
		if err := b.Bind(ss); err != nil {
			return nil, fmt.Errorf("stage %s: %w", sp.ID, err)
		}
	}
	return c, nil
}

// makeTriggers makes p's triggers, each with its queue in st's store.
func (r *Runner) makeTriggers(ctx context.Context, p PipelinePlan, st *openStore) ([]namedTrigger, error) {
	var out []namedTrigger
	for _, tp := range p.Triggers {
		c, err := tp.Factory.Create(ctx, r.settings(pipeline.KindTrigger, tp.ID, st.plan.Site), tp.Config)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", tp.ID, err)
		}
		r.closeLater(c)
		trig, ok := c.(pipeline.Trigger)
		if !ok {
			return nil, fmt.Errorf("trigger %s: type %s made a %T, not a trigger", tp.ID, tp.Factory.Type(), c)
		}
		nt := namedTrigger{name: p.Name + ":" + tp.ID.String(), trigger: trig}
		nt.queue = newTriggerQueue(nt, p.Name, p.TriggerDelivery, st.db, r.log.With("pipeline", p.Name), r.m, r.dl)
		out = append(out, nt)
		r.triggers = append(r.triggers, nt.queue)
	}
	return out, nil
}

// closeFunc is a func run at stop.
type closeFunc func()

func (f closeFunc) Close(context.Context) error { f(); return nil }

// closeLater keeps a stage or trigger that holds resources (an external
// plugin's process) to close when the runner stops.
func (r *Runner) closeLater(c any) {
	if cl, ok := c.(interface{ Close(context.Context) error }); ok {
		r.closers = append(r.closers, cl)
	}
}

// ownerAttr is the attribute naming the device an item belongs to.
func ownerAttr(p PipelinePlan) string {
	if p.Owner != "" {
		return p.Owner
	}
	return DefaultOwner
}

func sideName(s schema.Side) string {
	if s == schema.SideCloud {
		return string(schema.SideCloud)
	}
	return string(schema.SideDevice)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
