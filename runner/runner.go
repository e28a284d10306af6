package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
)

// Options tune a Runner.
type Options struct {
	Logger *slog.Logger
}

// Runner runs the pipelines of a plan. Start opens stores, then
// transports, then receivers, then senders; Shutdown drains and closes in
// the reverse order.
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
	router     *message.Router
	cancel     context.CancelFunc

	mu       sync.Mutex
	started  bool
	shutdown bool
}

type openStore struct {
	plan  StoragePlan
	store pipeline.Store
	db    *db.DB
}

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
	return &Runner{plan: plan, log: log, reg: reg, m: m, dl: newDeadLetters(plan.DeadLetters, 1000),
		stores: map[string]*openStore{}, transports: map[string]pipeline.Transport{}}, nil
}

// MetricsHandler serves the runner's Prometheus metrics.
func (r *Runner) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// DB returns the database over the named store (nil before Start).
func (r *Runner) DB(storage string) *db.DB {
	if s, ok := r.stores[storage]; ok {
		return s.db
	}
	return nil
}

// DeadLetters returns the dead-letter keeper.
func (r *Runner) DeadLetters() *DeadLetters { return r.dl }

// Start builds and starts every component. If one fails, what started is
// stopped again and the error names the component.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("runner: already started")
	}
	r.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if err := r.start(ctx, runCtx); err != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		return errors.Join(err, r.stop(sctx))
	}
	return nil
}

func (r *Runner) settings(kind pipeline.Kind, id pipeline.ID, site string) pipeline.Settings {
	return pipeline.Settings{ID: id, Kind: kind, Site: site, Schema: r.plan.Schema, Dir: r.plan.Dir,
		Logger: r.log.With("component", string(kind)+"/"+id.String()), Metrics: r.reg}
}

func (r *Runner) start(ctx, runCtx context.Context) error {
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
		d, err := db.Open(ctx, db.Options{Schema: r.plan.Schema, Store: st, Site: site, Side: sp.Side, Logger: r.log})
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
			return fmt.Errorf("transport/%s: type %s made a %T, not a pipeline.Transport", name, tp.Factory.Type(), c)
		}
		r.transports[name] = t
	}
	if err := r.buildPipelines(ctx, runCtx); err != nil {
		return err
	}
	if len(r.receivers) > 0 {
		go func() {
			if err := r.router.Run(runCtx); err != nil {
				r.log.Error("router stopped", "err", err)
			}
		}()
		select {
		case <-r.router.Running():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, rs := range r.responders {
		if err := rs.start(runCtx); err != nil {
			return fmt.Errorf("pipeline %s: catch-up responder: %w", rs.name, err)
		}
	}
	for _, s := range r.senders {
		if err := s.start(runCtx); err != nil {
			return err
		}
	}
	for _, rc := range r.receivers {
		if rc.catchUp != nil {
			rc.catchUp.start(runCtx)
		}
	}
	for _, p := range r.plan.Pipelines {
		r.log.Info("pipeline started", "pipeline", p.Name, "from", p.From.String(), "to", p.To.String(), "direction", p.Direction)
	}
	return nil
}

// Shutdown drains: senders stop reading their outboxes, send what they
// hold and wait for its acks until ctx ends; then receivers stop, and
// transports and stores close. Whatever is not acknowledged stays in its
// outbox for the next start. It is safe to call twice and without Start.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stop(ctx)
}

func (r *Runner) stop(ctx context.Context) error {
	if r.shutdown {
		return nil
	}
	r.shutdown = true
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, s := range r.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.drain(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("pipeline %s: drain: %w (unacknowledged changes stay in the outbox)", s.spec.Name, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if r.router != nil {
		if err := r.router.Close(); err != nil {
			errs = append(errs, fmt.Errorf("router: %w", err))
		}
	}
	for _, rc := range r.receivers {
		rc.ackWG.Wait() // the last acks go out before the transports close
	}
	if r.cancel != nil {
		r.cancel()
	}
	for _, s := range r.senders {
		<-s.done
	}
	for _, rs := range r.responders {
		if rs.done != nil {
			<-rs.done
		}
	}
	for _, rc := range r.receivers {
		if rc.catchUp != nil && rc.catchUp.done != nil {
			<-rc.catchUp.done
		}
	}
	for _, name := range slices.Backward(sortedKeys(r.transports)) {
		if err := r.transports[name].Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("transport/%s: %w", name, err))
		}
	}
	if r.broker != nil {
		if err := r.broker.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
		}
	}
	for _, name := range slices.Backward(r.storeOrder) {
		s := r.stores[name]
		_ = s.db.Close(ctx)
		if err := s.store.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("storage/%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
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
	return errors.Join(errs...)
}

// Status reports every pipeline.
func (r *Runner) Status() Status {
	st := Status{Site: r.plan.Site}
	for _, s := range r.senders {
		st.Pipelines = append(st.Pipelines, s.snapshot())
	}
	for _, rc := range r.receivers {
		st.Pipelines = append(st.Pipelines, rc.snapshot())
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
	poison, err := middleware.PoisonQueueWithFilter(poisonSink{dl: dl, m: m}, "iotod.poison", neverSucceeds)
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
