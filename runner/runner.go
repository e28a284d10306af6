package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
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
	plan Plan
	log  *slog.Logger
	reg  *prometheus.Registry
	m    *metrics
	dl   *DeadLetters

	broker     *broker.Broker
	stores     map[string]*openStore
	storeOrder []string
	transports map[string]pipeline.Transport
	senders    []*sender
	receivers  []*receiver
	responders []*responder
	triggers   []*triggerQueue
	fleet      *Fleet // a cloud worker's index of devices (nil on a device)
	// closers are stages and triggers to close at stop.
	closers []interface{ Close(context.Context) error }
	router  *message.Router
	// runCtx lives from Open to Shutdown: the pipelines run on it.
	runCtx context.Context
	cancel context.CancelFunc

	// mu orders the phases: Open and Shutdown hold it throughout (neither
	// waits on the network for long), Start only to change phase.
	mu       sync.Mutex
	opened   bool
	started  bool
	shutdown bool
	// starting is closed when the goroutine starting the pipelines ends.
	starting chan struct{}

	lmu  sync.Mutex
	live live
}

// live is what the pipelines' start has started so far; Shutdown stops
// exactly that.
type live struct {
	stopping   bool // Shutdown began: start nothing more
	senders    []*sender
	responders []*responder
	catchUps   []*catchUp
	triggers   []*triggerQueue
	routerDone chan struct{} // closed when router.Run returns (nil: never run)
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
	return &Runner{plan: plan, log: log, reg: reg, m: m, dl: dl,
		stores: map[string]*openStore{}, transports: map[string]pipeline.Transport{}}, nil
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
	for _, p := range r.plan.Pipelines {
		r.log.Info("pipeline started", "pipeline", p.Name, "from", p.From.String(), "to", p.To.String(), "direction", p.Direction)
	}
	return nil
}

func (r *Runner) settings(kind pipeline.Kind, id pipeline.ID, site string) pipeline.Settings {
	return pipeline.Settings{ID: id, Kind: kind, Site: site, Schema: r.plan.Schema, Dir: r.plan.Dir,
		Logger: r.log.With("component", string(kind)+"/"+id.String()), Metrics: r.reg,
		Transport: func(name string) (pipeline.Transport, bool) {
			t, ok := r.transports[name]
			return t, ok
		}}
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
		tp := r.plan.Transports[name]
		c, err := tp.Factory.Create(ctx, r.settings(pipeline.KindTransport, pipeline.ID{Type: tp.Factory.Type(), Name: name}, r.plan.Site), tp.Config)
		if err != nil {
			return fmt.Errorf("transport/%s: %w", name, err)
		}
		t, ok := c.(pipeline.Transport)
		if !ok {
			if cl, ok := c.(interface{ Close(context.Context) error }); ok {
				_ = cl.Close(ctx)
			}
			return fmt.Errorf("transport/%s: type %s made a %T, not a pipeline.Transport", name, tp.Factory.Type(), c)
		}
		r.transports[name] = t
	}
	if err := r.openFleet(); err != nil {
		return err
	}
	if err := r.buildPipelines(ctx, r.runCtx); err != nil {
		return err
	}
	r.fleet.start(r.runCtx)
	return nil
}

// enlist records a started component, unless Shutdown began; it reports
// whether the start may go on.
func (r *Runner) enlist(add func(*live)) bool {
	r.lmu.Lock()
	defer r.lmu.Unlock()
	add(&r.live)
	return !r.live.stopping
}

// startPipelines starts the receivers on the router, then the catch-up
// responders, the senders and the catch-ups. Every subscription is made
// on ctx (the run context), so Shutdown's cancel ends a start that waits
// for a connection.
func (r *Runner) startPipelines(ctx context.Context) error {
	if len(r.receivers) > 0 {
		done, failed := make(chan struct{}), make(chan error, 1)
		if !r.enlist(func(l *live) { l.routerDone = done }) {
			close(done)
			return errStopping
		}
		go func() {
			defer close(done)
			err := r.router.Run(ctx)
			failed <- err
			if err != nil && ctx.Err() == nil {
				r.log.Error("router stopped", "err", err)
			}
		}()
		select {
		case <-r.router.Running():
		case err := <-failed:
			// Run returns before running only on an error (a receiver that
			// cannot subscribe): start-up fails with it.
			if err == nil {
				err = errors.New("stopped before it ran")
			}
			return fmt.Errorf("router: receivers did not start: %w", err)
		case <-ctx.Done():
			return errStopping
		}
	}
	for _, q := range r.triggers {
		if !r.enlist(func(l *live) { l.triggers = append(l.triggers, q) }) {
			return errStopping
		}
		go q.run(r.runCtx)
	}
	for _, rs := range r.responders {
		if err := rs.start(ctx); err != nil {
			return fmt.Errorf("pipeline %s: catch-up responder: %w", rs.name, err)
		}
		if !r.enlist(func(l *live) { l.responders = append(l.responders, rs) }) {
			return errStopping
		}
	}
	for _, s := range r.senders {
		if err := s.start(ctx); err != nil {
			return err
		}
		if !r.enlist(func(l *live) { l.senders = append(l.senders, s) }) {
			return errStopping
		}
	}
	for _, rc := range r.receivers {
		if rc.catchUp != nil {
			rc.catchUp.start(ctx)
			if !r.enlist(func(l *live) { l.catchUps = append(l.catchUps, rc.catchUp) }) {
				return errStopping
			}
		}
	}
	return nil
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
	r.lmu.Lock()
	r.live.stopping = true
	lv := r.live
	r.lmu.Unlock()

	var errs []error
	var emu sync.Mutex
	addErr := func(err error) {
		emu.Lock()
		errs = append(errs, err)
		emu.Unlock()
	}
	// Until ctx ends: drain the senders, stop the receivers, send their
	// last acks. Whatever waits past ctx is cancelled below.
	var wg sync.WaitGroup
	for _, s := range lv.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.drain(ctx); err != nil {
				addErr(fmt.Errorf("pipeline %s: drain: %w (unacknowledged changes stay in the outbox)", s.spec.Name, err))
			}
		}()
	}
	wg.Wait()
	var routerClosed chan struct{}
	closeRouter := func() {
		routerClosed = make(chan struct{})
		go func() {
			defer close(routerClosed)
			if err := r.router.Close(); err != nil {
				addErr(fmt.Errorf("router: %w", err))
			}
		}()
	}
	if lv.routerDone != nil && isClosed(r.router.Running()) {
		closeRouter()
		waitOrEnd(ctx, routerClosed)
	}
	acks := make(chan struct{})
	go func() {
		for _, rc := range r.receivers {
			rc.ackWG.Wait() // the last acks go out before the transports close
		}
		close(acks)
	}()
	waitOrEnd(ctx, acks)

	// Cancel everything that runs, then wait for it within the grace.
	if r.cancel != nil {
		r.cancel()
	}
	gctx, gcancel := graceContext(ctx, shutdownGrace)
	defer gcancel()
	var abandoned []string
	wait := func(what string, done <-chan struct{}) {
		if done != nil && !waitOrEnd(gctx, done) {
			abandoned = append(abandoned, what)
		}
	}
	wait("the pipelines' start", r.starting)
	r.lmu.Lock()
	lv = r.live // what the start began meanwhile
	r.lmu.Unlock()
	if lv.routerDone != nil && routerClosed == nil && isClosed(r.router.Running()) {
		closeRouter() // it began running meanwhile
	}
	wait("the router's close", routerClosed)
	wait("the router", lv.routerDone)
	wait("the receivers' acks", acks)
	for _, s := range lv.senders {
		wait("pipeline "+s.spec.Name+": sender", s.done)
	}
	for _, rs := range lv.responders {
		wait("pipeline "+rs.name+": catch-up responder", rs.done)
	}
	for _, c := range lv.catchUps {
		wait("pipeline "+c.name+": catch-up", c.done)
	}
	for _, q := range lv.triggers {
		wait("trigger "+q.name, q.done)
	}
	emu.Lock()
	if len(abandoned) > 0 {
		errs = append(errs, fmt.Errorf("shutdown abandoned what still ran %s past its deadline (%s): %w",
			shutdownGrace, strings.Join(abandoned, "; "), ctx.Err()))
	}
	emu.Unlock()

	// Close in any case, with a short context if ctx has ended.
	cctx := ctx
	if ctx.Err() != nil {
		var ccancel context.CancelFunc
		cctx, ccancel = context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer ccancel()
	}
	var cerrs []error
	for _, c := range r.closers {
		if err := c.Close(cctx); err != nil {
			cerrs = append(cerrs, err)
		}
	}
	for _, name := range slices.Backward(sortedKeys(r.transports)) {
		if err := r.transports[name].Close(cctx); err != nil {
			cerrs = append(cerrs, fmt.Errorf("transport/%s: %w", name, err))
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
	emu.Lock()
	defer emu.Unlock()
	return errors.Join(append(errs, cerrs...)...)
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
	for _, s := range r.senders {
		if err := s.Sync(ctx); err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", s.spec.Name, err))
		}
	}
	for _, rc := range r.receivers {
		if rc.catchUp != nil {
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
	st := Status{Site: r.plan.Site}
	for _, s := range r.senders {
		st.Pipelines = append(st.Pipelines, s.snapshot())
	}
	r.lmu.Lock()
	routerUp := r.live.routerDone != nil && isClosed(r.router.Running())
	r.lmu.Unlock()
	for _, rc := range r.receivers {
		ps := rc.snapshot()
		if !routerUp && ps.State == "running" {
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
