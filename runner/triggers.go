package runner

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// triggerQueue delivers a trigger's queued changes (queued by the apply,
// in its transaction: db.Source.Triggers), in order, a batch at a time
// (pipeline.TriggerDelivery says how). A failed batch is tried again with
// exponential backoff and full jitter; after its attempts, or a permanent
// failure, its
// deliveries are set aside as dead (db.ReplayTriggers queues them
// again), counted and dead-lettered. Replication never waits for it.
type triggerQueue struct {
	name     string // the trigger's id, its queue's name
	pipeline string
	trigger  pipeline.Trigger
	db       *db.DB
	log      *slog.Logger
	m        *metrics
	dl       *DeadLetters
	wake     chan struct{}
	done     chan struct{}

	batch    int
	timeout  time.Duration
	attempts int
	minDelay time.Duration
	maxDelay time.Duration
}

func newTriggerQueue(t namedTrigger, pipelineName string, how pipeline.TriggerDelivery, d *db.DB, log *slog.Logger, m *metrics, dl *DeadLetters) *triggerQueue {
	def := pipeline.DefaultTriggerDelivery()
	if how.Batch <= 0 {
		how = def // a plan made in code without it
	}
	return &triggerQueue{name: t.name, pipeline: pipelineName, trigger: t.trigger, db: d, log: log.With("trigger", t.name), m: m, dl: dl,
		wake: make(chan struct{}, 1), done: make(chan struct{}), batch: how.Batch, timeout: how.Timeout,
		attempts: how.Attempts, minDelay: how.RetryDelay, maxDelay: how.MaxRetryDelay}
}

// poke says changes were queued.
func (q *triggerQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run delivers until ctx ends.
func (q *triggerQueue) run(ctx context.Context) {
	defer close(q.done)
	failures := 0
	for ctx.Err() == nil {
		pending, err := q.db.PendingTriggers(ctx, q.name, q.batch, false)
		if err != nil {
			q.log.Warn("trigger queue unreadable; trying again", "err", err)
			if !sleepCtx(ctx, q.backoff(1)) {
				return
			}
			continue
		}
		if len(pending) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			case <-time.After(time.Minute): // changes queued before a restart, or by another process
			}
			continue
		}
		changes := make([]pipeline.Change, len(pending))
		for i, p := range pending {
			changes[i] = p.Change
		}
		fctx, cancel := context.WithTimeout(ctx, q.timeout)
		err = q.trigger.Fire(fctx, q.pipeline, changes)
		cancel()
		if ctx.Err() != nil {
			return // stopping: the batch stays queued
		}
		switch {
		case err == nil:
			failures = 0
			q.m.triggers.WithLabelValues(q.name, "delivered").Add(float64(len(pending)))
			q.settle(ctx, pending, "", 0)
		case failures+1 >= q.attempts || pipeline.IsPermanent(err):
			failures++
			q.m.triggers.WithLabelValues(q.name, "dead").Add(float64(len(pending)))
			q.log.Warn("trigger gave up on a batch; kept as dead (replay to try again)", "changes", len(pending), "attempts", failures, "err", err)
			q.deadLetter(pending, err, failures)
			q.settle(ctx, pending, err.Error(), failures)
			failures = 0
		default:
			failures++
			q.m.triggers.WithLabelValues(q.name, "failed").Add(float64(len(pending)))
			if failures == 1 {
				q.log.Warn("trigger failed; the batch is tried again with backoff", "changes", len(pending), "err", err)
			}
			if !sleepCtx(ctx, q.backoff(failures)) {
				return
			}
		}
	}
}

// settle removes delivered (or dead) deliveries from the queue, trying
// again until it works or ctx ends: a delivery not removed would be
// delivered twice.
func (q *triggerQueue) settle(ctx context.Context, pending []db.Queued, reason string, attempts int) {
	for try := 1; ; try++ {
		err := q.db.SettleTriggers(ctx, q.name, pending, reason, attempts)
		if err == nil || ctx.Err() != nil {
			return
		}
		q.log.Warn("trigger queue: removing delivered changes failed; trying again", "err", err)
		if !sleepCtx(ctx, q.backoff(try)) {
			return
		}
	}
}

func (q *triggerQueue) deadLetter(pending []db.Queued, err error, attempts int) {
	now := time.Now()
	letters := make([]DeadLetter, len(pending))
	for i, p := range pending {
		c := p.Change
		letters[i] = DeadLetter{Time: now, Pipeline: q.pipeline, Site: c.Origin, Reject: pipeline.Reject{Model: c.Model, Key: c.Key,
			Reason: fmt.Sprintf("trigger %s: %d attempts: %v", q.name, attempts, err)}}
	}
	if err := q.dl.Add(letters...); err != nil {
		q.log.Warn("dead letters", "err", err)
	}
}

// backoff is the delay after the n-th failure: exponential from minDelay
// to maxDelay, full jitter.
func (q *triggerQueue) backoff(n int) time.Duration {
	d := q.minDelay << min(n-1, 20)
	if d <= 0 || d > q.maxDelay {
		d = q.maxDelay
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ReplayTriggers queues the dead deliveries of the trigger queue name
// ("pipeline:trigger") again and wakes it; it returns how many.
func (r *Runner) ReplayTriggers(ctx context.Context, name string) (int, error) {
	for _, q := range r.triggerQueues() {
		if q.name == name {
			n, err := q.db.ReplayTriggers(ctx, name)
			if err == nil {
				q.poke()
			}
			return n, err
		}
	}
	return 0, fmt.Errorf("%w: no trigger %s (triggers are named pipeline:trigger)", pipeline.ErrNotFound, pipeline.Quote(name))
}

// TriggerStatus is a trigger queue's state.
type TriggerStatus struct {
	// Name is the queue's name, pipeline:trigger.
	Name     string `json:"name"`
	Pipeline string `json:"pipeline"`
	// Queued and Dead count the deliveries waiting and set aside, up to
	// maxTriggerCount (More is set when there are more).
	Queued int  `json:"queued"`
	Dead   int  `json:"dead"`
	More   bool `json:"more,omitempty"`
}

// maxTriggerCount bounds the counting of a trigger queue.
const maxTriggerCount = 10000

// Triggers reports every trigger queue.
func (r *Runner) Triggers(ctx context.Context) ([]TriggerStatus, error) {
	queues := r.triggerQueues()
	out := make([]TriggerStatus, 0, len(queues))
	for _, q := range queues {
		st := TriggerStatus{Name: q.name, Pipeline: q.pipeline}
		for _, dead := range []bool{false, true} {
			got, err := q.db.PendingTriggers(ctx, q.name, maxTriggerCount+1, dead)
			if err != nil {
				return nil, err
			}
			n := min(len(got), maxTriggerCount)
			st.More = st.More || len(got) > maxTriggerCount
			if dead {
				st.Dead = n
			} else {
				st.Queued = n
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// triggerQueues lists the pipelines' trigger queues.
func (r *Runner) triggerQueues() []*triggerQueue {
	var out []*triggerQueue
	for _, u := range r.unitList() {
		out = append(out, u.triggers...)
	}
	return out
}
