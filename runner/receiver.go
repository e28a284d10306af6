package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// receiverSpec describes a pipeline from a transport into a store.
type receiverSpec struct {
	Name      string
	Direction pipeline.Direction
	// Site is this side's site: changes that originated here are never
	// applied back (loop prevention).
	Site string
	// From is the site to hear ("" for every site: the cloud).
	From      string
	Storage   string
	Transport string
	In        pipeline.Transport
	DB        *db.DB
	// Owner is the owner attribute checked on changes from devices.
	Owner    string
	Stages   []namedStage
	Triggers []namedTrigger
}

type namedTrigger struct {
	name    string // pipeline:id, the name of its delivery queue
	trigger pipeline.Trigger
	queue   *triggerQueue
}

// receiver applies batches from a transport, on the runner's router.
type receiver struct {
	spec receiverSpec
	m    *metrics
	log  *slog.Logger
	dl   *DeadLetters
	// fleet, on the cloud, records what each device sends and what is
	// refused of it.
	fleet *Fleet
	// catchUp is set on a device's down receiver.
	catchUp *catchUp
	// runCtx lives as long as the runner; acks are published on it.
	runCtx context.Context
	// acking bounds the acks being published at once.
	acking chan struct{}
	ackWG  sync.WaitGroup
	// storeDown is set while applies fail for the store (not for a
	// change): the first failure is logged, and the recovery.
	storeDown atomic.Bool

	mu     sync.Mutex
	status PipelineStatus
}

func newReceiver(spec receiverSpec, m *metrics, log *slog.Logger, dl *DeadLetters) *receiver {
	return &receiver{spec: spec, m: m, log: log, dl: dl, runCtx: context.Background(), acking: make(chan struct{}, maxAcking), status: PipelineStatus{Name: spec.Name,
		Direction: spec.Direction, From: "transport/" + spec.Transport, To: "storage/" + spec.Storage, State: "running"}}
}

// handle applies one batch and acks it. A batch that can never be applied
// returns a Permanent error: the poison queue keeps it. Other errors are
// retried, then the message is nacked and delivered again; applying is
// idempotent, so that is safe.
func (r *receiver) handle(msg *message.Message) error {
	ctx := msg.Context()
	site := msg.Metadata.Get(pipeline.MetaSite)
	b, err := pipeline.DecodeBatch(msg.Payload, r.maxPayload())
	if err == nil && r.spec.Direction == pipeline.Up {
		err = fromDevice(b)
	}
	if err != nil {
		// Tell the sender, so it stops resending, when the batch has an id
		// an ack can carry; the message goes to the dead letters either way.
		if b != nil && pipeline.ValidID(b.ID) == nil {
			ack := &pipeline.Ack{V: pipeline.ProtocolVersion, Batch: b.ID}
			for _, c := range b.Changes {
				ack.Rejected = append(ack.Rejected, rejectOf(&c, err))
			}
			if len(b.Changes) == 0 { // not decoded: one rejection for the batch
				ack.Rejected = []pipeline.Reject{{Reason: pipeline.Reason(err)}}
			}
			_ = r.ack(ctx, r.ackSite(site), ack)
		}
		if pipeline.IsPermanent(err) { // refused whole (else retried)
			n := 1
			if b != nil {
				n = max(n, len(b.Changes))
			}
			r.fleet.upBatch(site, n, n, pipeline.Reason(err))
		}
		return fmt.Errorf("pipeline %s: from site %s: %w", r.spec.Name, pipeline.Quote(site), err)
	}
	b.Site = site
	received := len(b.Changes)
	r.m.changesIn.WithLabelValues(r.spec.Name).Add(float64(received))
	ack := &pipeline.Ack{V: pipeline.ProtocolVersion, Batch: b.ID}
	kept := b.Changes[:0]
	for _, c := range b.Changes {
		if c.Origin == r.spec.Site {
			ack.Applied++ // our own change coming back: never applied again
			continue
		}
		kept = append(kept, c)
	}
	b.Changes = kept
	for _, st := range r.spec.Stages {
		t0 := time.Now()
		out, err := st.stage.Process(ctx, b)
		r.m.stageTime.WithLabelValues(r.spec.Name, st.name).Observe(time.Since(t0).Seconds())
		if err != nil {
			return fmt.Errorf("pipeline %s: stage %s: %w", r.spec.Name, st.name, err)
		}
		if out == nil {
			out = &pipeline.Batch{ID: b.ID, Rejected: b.Rejected}
		}
		b = out
	}
	ack.Rejected = append(ack.Rejected, b.Rejected...)
	src := db.Source{}
	if r.spec.Direction == pipeline.Up {
		src = db.Source{Site: site, Owner: r.spec.Owner}
	}
	for _, t := range r.spec.Triggers {
		src.Triggers = append(src.Triggers, t.name)
	}
	results, err := r.spec.DB.Apply(ctx, src, b.Changes)
	if err != nil {
		err = fmt.Errorf("pipeline %s: apply batch %s: %w", r.spec.Name, b.ID, err)
		if ctx.Err() == nil && !r.storeDown.Swap(true) {
			r.log.Warn("applying to the store fails; the batch is retried and stays unacknowledged", "err", err)
		}
		return err
	}
	if r.storeDown.Swap(false) {
		r.log.Info("applying to the store works again")
	}
	var applied []pipeline.Change
	for i, res := range results {
		c := b.Changes[i]
		switch {
		case res.Err != nil:
			ack.Rejected = append(ack.Rejected, rejectOf(&c, res.Err))
		case res.Applied:
			applied = append(applied, c)
			ack.Applied++
		default:
			ack.Applied++ // already applied, or older than what is stored
		}
	}
	r.fire(applied)
	r.recordRejects(site, b.ID, ack.Rejected)
	if n := len(ack.Rejected); n > 0 {
		r.fleet.upBatch(site, received, n, ack.Rejected[n-1].Reason)
	} else {
		r.fleet.upBatch(site, received, 0, "")
	}
	if r.catchUp != nil {
		r.catchUp.seen(ctx, site, b, received)
	}
	// Catch-up batches are acked too: the cloud's ack window paces a
	// catch-up by them (docs/protocol.md, "Catch-up").
	r.ackLater(r.ackSite(site), ack)
	r.m.changesOut.WithLabelValues(r.spec.Name).Add(float64(len(applied)))
	r.mu.Lock()
	r.status.LastAck = time.Now()
	r.mu.Unlock()
	return nil
}

// fromDevice refuses what only the cloud may send: catch-up answers, the
// synced marker and down cursors. A device sends plain change batches.
func fromDevice(b *pipeline.Batch) error {
	if b.Kind == pipeline.KindSynced || b.CatchUp || b.Request != "" || b.Count != 0 || b.Before != "" || b.After != "" {
		return pipeline.Permanent(fmt.Errorf("%w: batch %s: kind %s, catchup, request, count and cursors are sent by the cloud only",
			pipeline.ErrInvalid, b.ID, pipeline.Quote(b.Kind)))
	}
	return nil
}

// rejectOf is the rejection of c for err, with its model, key and reason
// cut short: an ack repeats no more of the input than that.
func rejectOf(c *pipeline.Change, err error) pipeline.Reject {
	return pipeline.Reject{Model: pipeline.Truncate(c.Model, pipeline.MaxModelLen),
		Key:    pipeline.Key{PK: pipeline.Truncate(c.Key.PK, 256), SK: pipeline.Truncate(c.Key.SK, 256)},
		Reason: pipeline.Reason(err)}
}

// maxPayload is the largest batch the transport takes (0: no limit).
func (r *receiver) maxPayload() int {
	if l, ok := r.spec.In.(pipeline.PayloadLimiter); ok {
		return l.MaxPayload()
	}
	return 0
}

// ackLater publishes ack without holding up the next batch: the batch is
// applied (durably) already, so if the ack is lost the sender resends, the
// apply is a no-op and the ack goes again. At most maxAcking acks are in
// flight; beyond that the receiver waits.
func (r *receiver) ackLater(site string, ack *pipeline.Ack) {
	r.acking <- struct{}{}
	r.ackWG.Add(1)
	go func() {
		defer func() { <-r.acking; r.ackWG.Done() }()
		if err := r.ack(r.runCtx, site, ack); err != nil {
			r.log.Debug("ack not sent; the sender will resend", "batch", ack.Batch, "err", err)
		}
	}()
}

const maxAcking = 32

// ackSite is the site an ack goes to: the cloud answers the device a batch
// came from; a device answers as itself, also for batches sent to all.
func (r *receiver) ackSite(from string) string {
	if r.spec.From != "" {
		return r.spec.From
	}
	return from
}

func (r *receiver) ack(ctx context.Context, site string, ack *pipeline.Ack) error {
	payload, err := fitAck(ack, r.maxPayload())
	if err != nil {
		return err
	}
	if err := r.spec.In.Publish(ctx, pipeline.AckChannel(r.spec.Direction), site, message.NewMessage(ack.Batch+"-ack", payload)); err != nil {
		return fmt.Errorf("pipeline %s: ack batch %s to %s: %w", r.spec.Name, ack.Batch, site, err)
	}
	return nil
}

// fire wakes the trigger queues the apply queued changes to.
func (r *receiver) fire(applied []pipeline.Change) {
	if len(applied) == 0 {
		return
	}
	for _, t := range r.spec.Triggers {
		t.queue.poke()
	}
}

func (r *receiver) recordRejects(site, batch string, rejects []pipeline.Reject) {
	if len(rejects) == 0 {
		return
	}
	now := time.Now()
	letters := make([]DeadLetter, len(rejects))
	for i, rj := range rejects {
		letters[i] = DeadLetter{Time: now, Pipeline: r.spec.Name, Site: site, Batch: batch, Reject: rj}
	}
	r.m.rejects.WithLabelValues(r.spec.Name).Add(float64(len(rejects)))
	if err := r.dl.Add(letters...); err != nil {
		r.log.Warn("dead letters", "err", err)
	}
}

func (r *receiver) snapshot() PipelineStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	if r.catchUp != nil {
		st.CatchingUp, st.CatchUpChanges = r.catchUp.progress()
	}
	if c, ok := r.spec.In.(Connector); ok {
		v := c.Connected()
		st.Connected = &v
	}
	return st
}

// subscriber adapts a transport channel to watermill's Subscriber, so the
// router can consume it.
type subscriber struct {
	t    pipeline.Transport
	ch   pipeline.Channel
	site string
}

func (s subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	return s.t.Subscribe(ctx, s.ch, s.site)
}

func (subscriber) Close() error { return nil }

// poisonSink is the poison queue's publisher: it keeps what it gets as
// dead letters.
type poisonSink struct {
	dl  *DeadLetters
	m   *metrics
	log *slog.Logger
}

func (p poisonSink) Publish(_ string, msgs ...*message.Message) error {
	now := time.Now()
	for _, msg := range msgs {
		p.m.poisoned.Inc()
		if err := p.dl.Add(DeadLetter{Time: now, Pipeline: msg.Metadata.Get(middleware.PoisonedHandlerKey),
			Site: msg.Metadata.Get(pipeline.MetaSite), Payload: truncate(string(msg.Payload), 4096),
			Reject: pipeline.Reject{Reason: msg.Metadata.Get(middleware.ReasonForPoisonedKey)}}); err != nil {
			// Not returned: a message that can never be applied would be
			// delivered again forever while the file cannot be written (a
			// full disk). It is counted and kept in memory all the same.
			p.log.Warn("poison message not written to the dead-letter file", "err", err)
		}
	}
	return nil
}

func (poisonSink) Close() error { return nil }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// neverSucceeds says whether an error means the message can never be
// applied: marked permanent, or a panic while handling it.
func neverSucceeds(err error) bool {
	var p middleware.RecoveredPanicError
	return pipeline.IsPermanent(err) || errors.As(err, &p)
}
