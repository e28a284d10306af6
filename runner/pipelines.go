package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// buildUnit makes pipeline p's stages, triggers and sender or receiver,
// on a context of its own under the run context. On an error, what was
// made is closed again.
func (r *Runner) buildUnit(ctx context.Context, p PipelinePlan) (*unit, error) {
	u := &unit{plan: p, reg: newTrackedRegisterer(r.reg)}
	u.ctx, u.cancel = context.WithCancel(r.runCtx)
	var err error
	switch {
	case p.From.Kind == pipeline.KindStorage && p.To.Kind == pipeline.KindTransport:
		err = r.buildSender(ctx, u)
	case p.From.Kind == pipeline.KindTransport && p.To.Kind == pipeline.KindStorage:
		err = r.buildReceiver(ctx, u)
	default:
		err = fmt.Errorf("goes from %s to %s; a pipeline goes from a storage to a transport or back", p.From, p.To)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("pipeline %s: %w", p.Name, err), u.close(context.WithoutCancel(ctx)))
	}
	return u, nil
}

// buildUnits builds a unit for each of ps, or none: on an error, those
// built are closed again.
func (r *Runner) buildUnits(ctx context.Context, ps []PipelinePlan) ([]*unit, error) {
	var units []*unit
	for _, p := range ps {
		u, err := r.buildUnit(ctx, p)
		if err != nil {
			for _, b := range units {
				err = errors.Join(err, b.close(context.WithoutCancel(ctx)))
			}
			return nil, err
		}
		units = append(units, u)
	}
	return units, nil
}

func (r *Runner) buildSender(ctx context.Context, u *unit) error {
	p := u.plan
	src, ok := r.stores[p.From.Name]
	t, tok := r.transport(p.To.Name)
	if !ok || !tok {
		return fmt.Errorf("%s or %s is not defined", p.From, p.To)
	}
	spec := senderSpec{Name: p.Name, Direction: p.Direction, Site: src.plan.Site, Storage: p.From.Name,
		Transport: p.To.Name, Store: src.store, Out: t, AckTimeout: p.AckTimeout, MaxInFlight: p.MaxInFlight, MaxInFlightBytes: p.MaxInFlightBytes,
		Keep: func(c *pipeline.Change) bool { return src.db.Replicates(c.Model) }}
	side := sideName(src.plan.Side)
	seenBatcher := false
	for _, sp := range p.Stages {
		st, err := r.makeStage(ctx, u, sp, side)
		if err != nil {
			return err
		}
		if _, isBatcher := st.(pipeline.Batcher); isBatcher {
			if seenBatcher {
				return fmt.Errorf("stage %s: only one batch stage per pipeline", sp.ID)
			}
			seenBatcher = true
			spec.NewBatcher = func() (pipeline.Batcher, error) {
				b, err := r.makeStage(ctx, u, sp, side) // one per target site
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
	triggers, err := r.makeTriggers(ctx, u, src)
	if err != nil {
		return err
	}
	if len(triggers) > 0 {
		u.closers = append(u.closers, closeFunc(src.db.OnChange("", func(_ context.Context, ev db.Event) {
			if !ev.Remote {
				for _, nt := range triggers {
					nt.queue.poke()
				}
			}
		})))
	}
	snd := newSender(spec, r.m, r.log.With("pipeline", p.Name), r.dl)
	u.sender = snd
	if spec.FanOut {
		snd.fleet = r.fleet // the devices' acks and what waits for them
		u.responder = &responder{name: p.Name, t: t, db: src.db, schema: r.schema,
			owner: ownerAttr(p), log: r.log.With("pipeline", p.Name), m: r.m, limit: 500, fleet: r.fleet}
	}
	return nil
}

func (r *Runner) buildReceiver(ctx context.Context, u *unit) error {
	p := u.plan
	dst, ok := r.stores[p.To.Name]
	t, tok := r.transport(p.From.Name)
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
		st, err := r.makeStage(ctx, u, sp, side)
		if err != nil {
			return err
		}
		stage, ok := st.(pipeline.Stage)
		if _, isBatcher := st.(pipeline.Batcher); isBatcher || !ok {
			return fmt.Errorf("stage %s: a %s stage cannot run on a receiving pipeline", sp.ID, sp.Factory.Type())
		}
		spec.Stages = append(spec.Stages, namedStage{name: sp.ID.String(), stage: stage})
	}
	triggers, err := r.makeTriggers(ctx, u, dst)
	if err != nil {
		return err
	}
	spec.Triggers = triggers
	router, err := newRouter(r.log, r.dl, r.m)
	if err != nil {
		return err
	}
	u.router = router
	rc := newReceiver(spec, r.m, r.log.With("pipeline", p.Name), r.dl)
	rc.runCtx = u.ctx
	if dst.plan.Side == schema.SideCloud {
		rc.fleet = r.fleet // what devices send up
	}
	if p.Direction == pipeline.Down && dst.plan.Side != schema.SideCloud {
		rc.catchUp = newCatchUp(p.Name, dst.plan.Site, t, dst.db, r.log.With("pipeline", p.Name))
	}
	u.router.AddConsumerHandler(p.Name, p.Name, subscriber{t: t, ch: pipeline.Channel(p.Direction), site: spec.From}, rc.handle)
	u.receiver = rc
	return nil
}

func (r *Runner) makeStage(ctx context.Context, u *unit, sp ComponentPlan, side string) (any, error) {
	p := u.plan
	c, err := sp.Factory.Create(ctx, r.unitSettings(u, pipeline.KindStage, sp.ID, r.site), sp.Config)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", sp.ID, err)
	}
	u.closeLater(c)
	if b, ok := c.(pipeline.StageBinder); ok {
		ss := pipeline.StageSettings{Pipeline: p.Name, Direction: p.Direction, Side: side, Receiving: p.From.Kind == pipeline.KindTransport}
		if err := b.Bind(ss); err != nil {
			return nil, fmt.Errorf("stage %s: %w", sp.ID, err)
		}
	}
	return c, nil
}

// makeTriggers makes p's triggers, each with its queue in st's store.
func (r *Runner) makeTriggers(ctx context.Context, u *unit, st *openStore) ([]namedTrigger, error) {
	p := u.plan
	var out []namedTrigger
	for _, tp := range p.Triggers {
		c, err := tp.Factory.Create(ctx, r.unitSettings(u, pipeline.KindTrigger, tp.ID, st.plan.Site), tp.Config)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", tp.ID, err)
		}
		u.closeLater(c)
		trig, ok := c.(pipeline.Trigger)
		if !ok {
			return nil, fmt.Errorf("trigger %s: type %s made a %T, not a trigger", tp.ID, tp.Factory.Type(), c)
		}
		nt := namedTrigger{name: p.Name + ":" + tp.ID.String(), trigger: trig}
		nt.queue = newTriggerQueue(nt, p.Name, p.TriggerDelivery, st.db, r.log.With("pipeline", p.Name), r.m, r.dl)
		out = append(out, nt)
		u.triggers = append(u.triggers, nt.queue)
	}
	return out, nil
}

// closeFunc is a func run at stop.
type closeFunc func()

func (f closeFunc) Close(context.Context) error { f(); return nil }

// closeLater keeps a stage or trigger that holds resources (an external
// plugin's process) to close when the unit stops.
func (u *unit) closeLater(c any) {
	if cl, ok := c.(interface{ Close(context.Context) error }); ok {
		u.closers = append(u.closers, cl)
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
