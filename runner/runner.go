package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// Options tune a Runner.
type Options struct {
	Logger *slog.Logger
}

// Runner runs the pipelines of a plan, in two phases. Open starts the
// embedded broker, opens the stores, creates the transports (which connect
// in the background) and builds the pipelines: it waits for no network
// peer, so the local database can serve at once, and it fails on a real
// configuration error (a store that will not open, an unreadable TLS file).
// Start then starts the pipelines: receivers, catch-up responders,
// senders, catch-ups; it returns once each has subscribed, which for a
// transport that cannot connect takes its connect timeout (the transport
// keeps retrying in the background). Shutdown drains and closes in the
// reverse order, within its context's deadline plus a short grace.
type Runner struct {
	// plan is what runs: Open and Reload (under mu) read and change it.
	plan Plan
	// site, schema and dir are the plan's, which no reload changes: the
	// pipelines read them.
	site   string
	schema *schema.Schema
	dir    string
	log    *slog.Logger
	reg    *prometheus.Registry
	m      *metrics
	dl     *DeadLetters

	broker     *broker.Broker
	stores     map[string]*openStore
	storeOrder []string
	fleet      *Fleet // a cloud worker's index of devices (nil on a device)
	// runCtx lives from Open to Shutdown: the pipelines run on contexts
	// under it.
	runCtx context.Context
	cancel context.CancelFunc

	// mu orders the phases: Open, Reload and Shutdown hold it throughout
	// (neither waits on the network for long), Start only to change phase.
	mu       sync.Mutex
	opened   bool
	started  bool
	shutdown bool
	// starting is closed when the goroutine starting the pipelines ends.
	starting chan struct{}

	// umu guards the pipelines' units and the transports, which a reload
	// replaces while status, sync and the API read them.
	umu        sync.RWMutex
	units      []*unit
	transports map[string]*openTransport
}

// openTransport is a transport the runner created, with the metrics it
// registered (which go with it when a reload replaces it).
type openTransport struct {
	t   pipeline.Transport
	reg *trackedRegisterer
}

type openStore struct {
	plan  StoragePlan
	store pipeline.Store
	db    *db.DB
}

// shutdownGrace is how long Shutdown still waits for goroutines after its
// context ended (and the run context was cancelled), and how long closing
// the transports and stores may take then.
const shutdownGrace = 500 * time.Millisecond

// errStopping ends a start that Shutdown overtook.
var errStopping = errors.New("runner: shutting down")

// New checks nothing beyond what the config loader did; it prepares the
// metrics registry.
func New(plan Plan, opts Options) (*Runner, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	keep := plan.DeadLetterKeep
	if plan.DeadLetterMax == 0 && keep == 0 {
		keep = -1 // neither set: the defaults
	}
	dl := newDeadLetters(plan.DeadLetters, 1000, WithDeadLetterFile(plan.DeadLetterMax, keep))
	if err := registerDeadLetterMetrics(reg, dl); err != nil {
		return nil, err
	}
	return &Runner{plan: plan, site: plan.Site, schema: plan.Schema, dir: plan.Dir, log: log, reg: reg, m: m, dl: dl,
		stores: map[string]*openStore{}, transports: map[string]*openTransport{}}, nil
}

// MetricsHandler serves the runner's Prometheus metrics.
func (r *Runner) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// DB returns the database over the named store (nil before Open).
func (r *Runner) DB(storage string) *db.DB {
	if s, ok := r.stores[storage]; ok {
		return s.db
	}
	return nil
}

// DeadLetters returns the dead-letter keeper.
func (r *Runner) DeadLetters() *DeadLetters { return r.dl }

// Open starts the embedded broker, opens the stores, creates the
// transports and builds the pipelines, without waiting for any transport
// to connect. After Open, DB serves. If a component fails, what was opened
// is closed again and the error names the component. A second Open does
// nothing.
func (r *Runner) Open(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.shutdown:
		return fmt.Errorf("runner: open: %w", pipeline.ErrClosed)
	case r.opened:
		return nil
	}
	r.opened = true
	r.runCtx, r.cancel = context.WithCancel(context.Background())
	if err := r.open(ctx); err != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		return errors.Join(err, r.stop(sctx))
	}
	return nil
}

// Start opens the runner if Open was not called, then starts the
// pipelines and returns once every one has started, or one failed (the
// error names it and what had started is stopped again), or ctx ends
// (then everything is stopped too). A transport that cannot connect does
// not fail Start: its subscriptions wait for the connection.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.Open(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	switch {
	case r.shutdown:
		r.mu.Unlock()
		return fmt.Errorf("runner: start: %w", pipeline.ErrClosed)
	case r.started:
		r.mu.Unlock()
		return errors.New("runner: already started")
	}
	r.started = true
	done := make(chan struct{})
	r.starting = done
	runCtx := r.runCtx
	r.mu.Unlock()

	result := make(chan error, 1)
	go func() {
		defer close(done)
		result <- r.startPipelines(runCtx)
	}()
	var err error
	select {
	case err = <-result:
	case <-ctx.Done():
		err = fmt.Errorf("runner: start: %w", ctx.Err())
	}
	if err != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		return errors.Join(err, r.Shutdown(sctx))
	}
	for _, u := range r.unitList() {
		p := u.plan
		r.log.Info("pipeline started", "pipeline", p.Name, "from", p.From.String(), "to", p.To.String(), "direction", p.Direction)
	}
	return nil
}

func (r *Runner) settings(kind pipeline.Kind, id pipeline.ID, site string) pipeline.Settings {
	return pipeline.Settings{ID: id, Kind: kind, Site: site, Schema: r.schema, Dir: r.dir,
		Logger: r.log.With("component", string(kind)+"/"+id.String()), Metrics: r.reg,
		Transport: r.transport}
}

// unitSettings are the settings of a stage or trigger of u: its metrics
// go with the unit.
func (r *Runner) unitSettings(u *unit, kind pipeline.Kind, id pipeline.ID, site string) pipeline.Settings {
	set := r.settings(kind, id, site)
	set.Metrics = u.reg
	return set
}

// transport returns the named transport.
func (r *Runner) transport(name string) (pipeline.Transport, bool) {
	r.umu.RLock()
	defer r.umu.RUnlock()
	if ot, ok := r.transports[name]; ok {
		return ot.t, true
	}
	return nil, false
}

// createTransport makes the transport of tp named name, its metrics
// tracked.
func (r *Runner) createTransport(ctx context.Context, name string, tp ComponentPlan) (*openTransport, error) {
	reg := newTrackedRegisterer(r.reg)
	set := r.settings(pipeline.KindTransport, pipeline.ID{Type: tp.Factory.Type(), Name: name}, r.site)
	set.Metrics = reg
	c, err := tp.Factory.Create(ctx, set, tp.Config)
	if err != nil {
		reg.unregisterAll()
		return nil, fmt.Errorf("transport/%s: %w", name, err)
	}
	t, ok := c.(pipeline.Transport)
	if !ok {
		if cl, ok := c.(interface{ Close(context.Context) error }); ok {
			_ = cl.Close(ctx)
		}
		reg.unregisterAll()
		return nil, fmt.Errorf("transport/%s: type %s made a %T, not a pipeline.Transport", name, tp.Factory.Type(), c)
	}
	return &openTransport{t: t, reg: reg}, nil
}

// closeTransport closes ot and unregisters its metrics.
func closeTransport(ctx context.Context, name string, ot *openTransport) error {
	defer ot.reg.unregisterAll()
	if err := ot.t.Close(ctx); err != nil {
		return fmt.Errorf("transport/%s: %w", name, err)
	}
	return nil
}

func (r *Runner) open(ctx context.Context) error {
	if r.plan.Broker != nil {
		b, err := broker.Start(ctx, *r.plan.Broker, r.log.With("component", "broker"), r.reg)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		r.broker = b
	}
	for _, name := range sortedKeys(r.plan.Storage) {
		sp := r.plan.Storage[name]
		site := sp.Site
		if site == "" {
			site = r.plan.Site
		}
		c, err := sp.Factory.Create(ctx, r.settings(pipeline.KindStorage, pipeline.ID{Type: sp.Factory.Type(), Name: name}, site), sp.Config)
		if err != nil {
			return fmt.Errorf("storage/%s: %w", name, err)
		}
		st, ok := c.(pipeline.Store)
		if !ok {
			return fmt.Errorf("storage/%s: type %s made a %T, not a pipeline.Store", name, sp.Factory.Type(), c)
		}
		d, err := db.Open(ctx, db.Options{Schema: r.plan.Schema, Store: st, Site: site, Side: sp.Side, Logger: r.log, MaxClockSkew: r.plan.MaxClockSkew, ReadCacheBytes: sp.ReadCache})
		if err != nil {
			return errors.Join(fmt.Errorf("storage/%s: %w", name, err), st.Close(ctx))
		}
		sp.Site = site
		r.stores[name] = &openStore{plan: sp, store: st, db: d}
		r.storeOrder = append(r.storeOrder, name)
	}
	for _, name := range sortedKeys(r.plan.Transports) {
		ot, err := r.createTransport(ctx, name, r.plan.Transports[name])
		if err != nil {
			return err
		}
		r.umu.Lock()
		r.transports[name] = ot
		r.umu.Unlock()
	}
	if err := r.openFleet(); err != nil {
		return err
	}
	units, err := r.buildUnits(ctx, r.plan.Pipelines)
	if err != nil {
		return err
	}
	r.umu.Lock()
	r.units = units
	r.umu.Unlock()
	r.setLocalTriggers()
	r.fleet.start(r.runCtx)
	return nil
}

// setLocalTriggers names, for each store, the trigger queues of the
// pipelines sending from it: every local write is queued for them.
func (r *Runner) setLocalTriggers() {
	byStore := map[string][]string{}
	for _, u := range r.unitList() {
		if u.sender != nil {
			for _, q := range u.triggers {
				byStore[u.plan.From.Name] = append(byStore[u.plan.From.Name], q.name)
			}
		}
	}
	for name, s := range r.stores {
		s.db.SetLocalTriggers(byStore[name])
	}
}

// unitList returns the pipelines' units.
func (r *Runner) unitList() []*unit {
	r.umu.RLock()
	defer r.umu.RUnlock()
	return slices.Clone(r.units)
}

// startPipelines starts the units of the pipelines. Every subscription is
// made on a unit's context (under the run context), so Shutdown's cancel
// ends a start that waits for a connection.
func (r *Runner) startPipelines(context.Context) error {
	return r.startUnits(r.unitList())
}

// Shutdown drains: senders stop reading their outboxes, send what they
// hold and wait for its acks until ctx ends; then receivers stop and the
// last acks go out. Then the run context is cancelled, the runner waits
// for its goroutines (at most shutdownGrace past ctx's end) and closes the
// transports and the stores in any case. Whatever is not acknowledged
// stays in its outbox for the next start. The error reports what was not
// drained and what was abandoned. It is safe to call twice and without
// Start.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stop(ctx)
}

// stop is Shutdown with r.mu held.
func (r *Runner) stop(ctx context.Context) error {
	if r.shutdown {
		return nil
	}
	r.shutdown = true
	err := stopUnits(ctx, r.unitList(), r.starting)
	if r.cancel != nil {
		r.cancel()
	}
	// Close in any case, with a short context if ctx has ended.
	cctx := ctx
	if ctx.Err() != nil {
		var ccancel context.CancelFunc
		cctx, ccancel = context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer ccancel()
	}
	var cerrs []error
	r.umu.RLock()
	transports := maps.Clone(r.transports)
	r.umu.RUnlock()
	for _, name := range slices.Backward(sortedKeys(transports)) {
		if err := closeTransport(cctx, name, transports[name]); err != nil {
			cerrs = append(cerrs, err)
		}
	}
	if r.broker != nil {
		if err := r.broker.Close(cctx); err != nil {
			cerrs = append(cerrs, fmt.Errorf("broker: %w", err))
		}
	}
	if err := r.fleet.close(cctx); err != nil { // its last save, before the stores close
		cerrs = append(cerrs, err)
	}
	for _, name := range slices.Backward(r.storeOrder) {
		s := r.stores[name]
		_ = s.db.Close(cctx)
		if err := s.store.Close(cctx); err != nil {
			cerrs = append(cerrs, fmt.Errorf("storage/%s: %w", name, err))
		}
	}
	return errors.Join(append([]error{err}, cerrs...)...)
}

// waitOrEnd waits for done until ctx ends; it reports whether done closed.
func waitOrEnd(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// graceContext ends grace after ctx ends.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return gctx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// Sync forces every sender to send what it holds and waits until every
// change committed before the call is acknowledged; then each device down
// pipeline catches up with the cloud, and Sync waits for that too, or ctx
// ends.
func (r *Runner) Sync(ctx context.Context) error {
	var errs []error
	units := r.unitList()
	for _, u := range units {
		if s := u.sender; s != nil {
			if err := s.Sync(ctx); err != nil {
				errs = append(errs, fmt.Errorf("pipeline %s: %w", s.spec.Name, err))
			}
		}
	}
	for _, u := range units {
		if rc := u.receiver; rc != nil && rc.catchUp != nil {
			if err := rc.catchUp.wait(ctx); err != nil {
				errs = append(errs, fmt.Errorf("pipeline %s: catch-up: %w", rc.spec.Name, err))
			}
		}
	}
	err := errors.Join(errs...)
	r.m.syncs.WithLabelValues(syncResult(err)).Inc()
	return err
}

// syncResult names the outcome of a forced sync for its metric.
func syncResult(err error) string {
	switch {
	case err == nil:
		return "synced"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "failed"
}

// Status reports every pipeline.
func (r *Runner) Status() Status {
	st := Status{Site: r.site}
	for _, u := range r.unitList() {
		if s := u.sender; s != nil {
			st.Pipelines = append(st.Pipelines, s.snapshot())
			continue
		}
		ps := u.receiver.snapshot()
		if !u.routerUp() && ps.State == "running" {
			ps.State = "starting" // not subscribed yet: waiting for the transport's connection
		}
		st.Pipelines = append(st.Pipelines, ps)
	}
	slices.SortFunc(st.Pipelines, func(a, b PipelineStatus) int { return cmp.Compare(a.Name, b.Name) })
	_, st.DeadLetters = r.dl.Recent()
	return st
}

func newRouter(log *slog.Logger, dl *DeadLetters, m *metrics) (*message.Router, error) {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second},
		// The router's own lifecycle chatter goes to debug; iotod logs each
		// pipeline's start and stop itself.
		watermill.NewSlogLoggerWithLevelMapping(log.With("component", "router"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return nil, err
	}
	poison, err := middleware.PoisonQueueWithFilter(poisonSink{dl: dl, m: m, log: log}, "iotod.poison", neverSucceeds)
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{MaxRetries: 5, InitialInterval: 50 * time.Millisecond, MaxInterval: 5 * time.Second,
		Multiplier: 2, RandomizationFactor: 0.5, ResetContextOnRetry: true,
		ShouldRetry: func(p middleware.RetryParams) bool { return !neverSucceeds(p.Err) }}
	// Outermost first: a panic (Recoverer, innermost) or a permanent error is
	// not retried and goes to the poison queue; other errors are retried with
	// backoff and jitter, then nacked for redelivery.
	router.AddMiddleware(poison, retry.Middleware, middleware.Recoverer)
	return router, nil
}
