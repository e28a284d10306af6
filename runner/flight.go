package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/pipeline"
)

// send runs the post-batch stages on b and publishes it to site.
func (s *sender) send(ctx context.Context, site string, b *pipeline.Batch) {
	covers := b.Covers
	b, err := s.runStages(ctx, s.spec.Post, b)
	if err != nil {
		s.log.Warn("stage failed; the changes stay in the outbox", "err", err)
		return
	}
	s.reject(ctx, site, b.Rejected)
	b.Rejected = nil
	if len(b.Changes) == 0 {
		s.settle(ctx, covers...)
		return
	}
	s.launch(ctx, site, b, covers)
}

// launch registers b as a flight and publishes it. A batch over the
// transport's maximum payload is split in two; a single change over it is
// refused for good with the reason.
func (s *sender) launch(ctx context.Context, site string, b *pipeline.Batch, covers []uint64) {
	b.ID = ulid.Make().String()
	b.V, b.Site = pipeline.ProtocolVersion, s.spec.Site
	if s.spec.FanOut {
		s.stampCursors(site, b)
	}
	payload, err := marshalBatch(b)
	if err != nil {
		s.log.Error("encode batch", "err", err)
		return
	}
	f := &flight{site: site, payload: payload, covers: covers, changes: len(b.Changes)}
	s.addFlight(b.ID, f)
	err = s.publish(ctx, b.ID, f)
	switch {
	case errors.Is(err, pipeline.ErrTooLargeForTransport): // split below
	case err != nil && pipeline.IsPermanent(err):
		s.abandon(ctx, b.ID, f, err)
		return
	default:
		s.m.batchSize.WithLabelValues(s.spec.Name).Observe(float64(f.changes))
		return
	}
	s.dropFlight(b.ID, f)
	if len(b.Changes) == 1 {
		c := b.Changes[0]
		s.reject(ctx, site, []pipeline.Reject{{Model: c.Model, Key: c.Key, Seq: c.Seq,
			Reason: fmt.Sprintf("change is %d bytes as a batch: %v", len(payload), err)}})
		s.settle(ctx, covers...)
		return
	}
	half := len(b.Changes) / 2
	first := &pipeline.Batch{Changes: b.Changes[:half]}
	second := &pipeline.Batch{Changes: b.Changes[half:]}
	inSecond := map[uint64]bool{}
	for _, c := range second.Changes {
		inSecond[c.Seq] = true
	}
	var c1, c2 []uint64
	for _, q := range covers { // coalesced seqs ride with the first half
		if inSecond[q] {
			c2 = append(c2, q)
		} else {
			c1 = append(c1, q)
		}
	}
	s.launch(ctx, site, first, c1)
	s.launch(ctx, site, second, c2)
}

// addFlight and dropFlight keep the flights and their counts: changes
// and payload bytes awaiting acks.
func (s *sender) addFlight(id string, f *flight) {
	s.flights[id] = f
	s.flying += f.changes
	s.flyingBytes += len(f.payload)
	s.fleet.inFlight(f.site, f.changes)
}

func (s *sender) dropFlight(id string, f *flight) {
	delete(s.flights, id)
	s.flying -= f.changes
	s.flyingBytes -= len(f.payload)
	s.fleet.inFlight(f.site, -f.changes)
}

// abandon gives up a flight the transport refused for good (a permanent
// error: the broker refused the packet, or it can never be encoded): its
// changes become dead letters with the reason, and are settled, so the
// outbox moves on instead of resending them forever.
func (s *sender) abandon(ctx context.Context, id string, f *flight, err error) {
	s.dropFlight(id, f)
	reason := pipeline.Reason(fmt.Errorf("refused by the transport: %w", err))
	var rejects []pipeline.Reject
	if b, derr := pipeline.DecodeBatch(f.payload, 0); derr == nil {
		for _, c := range b.Changes {
			rejects = append(rejects, pipeline.Reject{Model: c.Model, Key: c.Key, Seq: c.Seq, Reason: reason})
		}
	} else {
		rejects = []pipeline.Reject{{Reason: reason}}
	}
	s.reject(ctx, f.site, rejects)
	s.settle(ctx, f.covers...)
}

// publish sends a flight and arms its resend.
func (s *sender) publish(ctx context.Context, id string, f *flight) error {
	f.attempts++
	backoff := min(s.spec.AckTimeout<<min(f.attempts-1, 6), 5*time.Minute)
	f.next = time.Now().Add(jitter(backoff))
	pctx, cancel := context.WithTimeout(ctx, s.spec.AckTimeout)
	defer cancel()
	msg := message.NewMessage(id, f.payload)
	if err := s.spec.Out.Publish(pctx, pipeline.Channel(s.spec.Direction), f.site, msg); err != nil {
		s.log.Debug("publish failed; will resend", "batch", id, "err", err)
		s.setLastError(err)
		return err
	}
	s.m.changesOut.WithLabelValues(s.spec.Name).Add(float64(f.changes))
	return nil
}

// onAck settles the batch an ack names. Acks for unknown batches (a
// duplicate, or one answered already) and acks from another site than the
// batch went to are ignored.
func (s *sender) onAck(ctx context.Context, msg *message.Message) {
	s.fleet.acked(msg.Metadata.Get(pipeline.MetaSite))
	ack, err := pipeline.DecodeAck(msg.Payload, 0)
	if err != nil {
		s.log.Warn("unreadable ack ignored", "site", pipeline.Quote(msg.Metadata.Get(pipeline.MetaSite)), "err", err)
		return
	}
	f, ok := s.flights[ack.Batch]
	if !ok || msg.Metadata.Get(pipeline.MetaSite) != f.site && f.site != pipeline.Broadcast {
		return
	}
	s.dropFlight(ack.Batch, f)
	s.m.acks.WithLabelValues(s.spec.Name, "applied").Add(float64(ack.Applied))
	s.m.acks.WithLabelValues(s.spec.Name, "rejected").Add(float64(len(ack.Rejected)))
	for i := range ack.Rejected {
		ack.Rejected[i].Seq = 0 // the far side's word; settle by covers below
	}
	s.reject(ctx, f.site, ack.Rejected)
	s.settle(ctx, f.covers...)
	s.mu.Lock()
	s.status.LastAck = time.Now()
	s.status.LastError = ""
	s.status.refreshed = time.Time{} // show the trim at once
	s.mu.Unlock()
}

// settle marks seqs done and trims the outbox up to the longest settled
// prefix of what was read.
func (s *sender) settle(ctx context.Context, seqs ...uint64) {
	for _, q := range seqs {
		s.settled[q] = true
	}
	i := 0
	for i < len(s.pending) && s.settled[s.pending[i]] {
		delete(s.settled, s.pending[i])
		i++
	}
	if i == 0 {
		return
	}
	upTo := s.pending[i-1]
	s.pending = s.pending[i:]
	if err := s.spec.Store.Outbox().Trim(ctx, upTo); err != nil {
		s.log.Warn("outbox trim failed; it is retried with the next ack", "err", err)
	}
}

func (s *sender) cutDue(ctx context.Context, all bool) {
	now := time.Now()
	for site, b := range s.batchers {
		if due := b.Due(); !due.IsZero() && (all || !due.After(now)) {
			s.cut(ctx, site, b)
		}
	}
}

func (s *sender) cutAll(ctx context.Context) { s.cutDue(ctx, true) }

func (s *sender) cut(ctx context.Context, site string, b pipeline.Batcher) {
	batches, err := b.Cut(ctx)
	if err != nil {
		s.log.Warn("batch stage cut failed", "err", err)
		return
	}
	for _, fb := range batches {
		s.send(ctx, site, fb)
	}
}

func (s *sender) resendDue(ctx context.Context) {
	now := time.Now()
	for id, f := range s.flights {
		if !f.next.After(now) {
			s.m.resends.WithLabelValues(s.spec.Name).Inc()
			// A failure is retried at the next resend, unless the transport
			// says it never can succeed.
			if err := s.publish(ctx, id, f); err != nil && pipeline.IsPermanent(err) {
				s.abandon(ctx, id, f, err)
			}
		}
	}
}

// nextWake is when the loop must act without an event: a batch due or a
// resend due.
func (s *sender) nextWake() time.Duration {
	next := time.Now().Add(time.Hour)
	for _, b := range s.batchers {
		if due := b.Due(); !due.IsZero() && due.Before(next) {
			next = due
		}
	}
	for _, f := range s.flights {
		if f.next.Before(next) {
			next = f.next
		}
	}
	return max(time.Until(next), time.Millisecond)
}

// checkWaiters releases the Syncs whose changes are all settled: the
// outbox keeps nothing at or below their mark (the sender trims exactly
// the settled prefix of what it read).
func (s *sender) checkWaiters(ctx context.Context) {
	if len(s.waiters) == 0 {
		return
	}
	st, err := s.spec.Store.Outbox().Stats(ctx)
	if err != nil {
		return
	}
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if st.Depth == 0 || st.First > w.upTo {
			w.done <- nil
			continue
		}
		kept = append(kept, w)
	}
	s.waiters = kept
}

func (s *sender) failWaiters(err error) {
	for _, w := range s.waiters {
		w.done <- err
	}
	s.waiters = nil
}

// Sync cuts every held batch now and returns once every change committed
// before the call is acknowledged (or refused), or ctx ends.
func (s *sender) Sync(ctx context.Context) error {
	w := syncWaiter{done: make(chan error, 1)}
	select {
	case s.syncCh <- w:
	case <-s.done:
		return pipeline.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.done:
		return err
	case <-s.done:
		return pipeline.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain stops reading the outbox, sends what is held, and returns once
// every flight is acknowledged or ctx ends. Unacknowledged changes stay in
// the outbox for the next start. A sender whose transport is not
// connected has nothing to wait for: drain returns at once, so an offline
// device stops without waiting out the drain timeout.
func (s *sender) drain(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	asked := false
	for {
		var ask chan<- struct{}
		if !asked {
			ask = s.drainCh
		}
		if s.offline() {
			return fmt.Errorf("%w: the transport is not connected", errNotDrained)
		}
		select {
		case ask <- struct{}{}:
			asked = true
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// errNotDrained says a drain ended with changes left in the outbox.
var errNotDrained = errors.New("not drained")

// offline reports whether the sender's transport says it is not
// connected.
func (s *sender) offline() bool {
	c, ok := s.spec.Out.(Connector)
	return ok && !c.Connected()
}
