package runner

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	json "github.com/goccy/go-json"

	"github.com/iotod/iotod/pipeline"
)

// senderSpec describes a pipeline from a store's outbox to a transport.
type senderSpec struct {
	Name      string
	Direction pipeline.Direction
	Site      string // this side's site, stated in batches
	Storage   string // the store's name, for metrics and status
	Transport string // the transport's name, for status
	Store     pipeline.Store
	Out       pipeline.Transport
	Stages    []namedStage // before the batch stage
	Post      []namedStage // after it
	// NewBatcher makes the batch stage for one target site (nil: every
	// chunk read is a batch at once).
	NewBatcher func() (pipeline.Batcher, error)
	// Route names the site a change is published for: on a device its own
	// site (the cloud hears it there), on the cloud the device it goes to.
	Route func(c *pipeline.Change) string
	// FanOut is set on the cloud: Route names destinations, and a change
	// is never routed back to its origin.
	FanOut bool
	// AckSite is the site whose acks this sender hears ("" for all).
	AckSite     string
	AckTimeout  time.Duration
	MaxInFlight int
	// MaxInFlightBytes bounds the payload bytes sent and not yet acked
	// (kept for resending) plus those read from the outbox and held.
	MaxInFlightBytes int
	// Chunk is the most changes one outbox read takes; reads shrink
	// while their changes are large (ChunkBytes per read).
	Chunk      int
	ChunkBytes int
	// Keep says whether a change read from the outbox is for this
	// pipeline (nil: all). A store that captures its changes (a DynamoDB
	// stream) has every write in its outbox, also of models that do not
	// replicate from this side: those are settled at once, not sent and
	// not dead letters.
	Keep func(c *pipeline.Change) bool
}

// maxFlights bounds the batches awaiting acks, so a transport that holds
// a bounded number of unacked messages per subscriber never fills up with
// batches while the acks wait behind them.
const maxFlights = 64

type namedStage struct {
	name  string
	stage pipeline.Stage
}

// flight is a batch sent and not yet acknowledged.
type flight struct {
	site     string
	payload  []byte
	covers   []uint64
	changes  int
	attempts int
	next     time.Time
}

type syncWaiter struct {
	upTo uint64
	done chan error
}

// sender moves one store's outbox out through a transport. One goroutine
// owns all its state; Sync and Shutdown talk to it over channels.
type sender struct {
	spec senderSpec
	m    *metrics
	log  *slog.Logger
	dl   *DeadLetters

	batchers map[string]pipeline.Batcher
	cursor   uint64          // last outbox seq read
	pending  []uint64        // seqs read and not yet trimmed, in order
	settled  map[uint64]bool // seqs acked or refused, not yet trimmed
	flights  map[string]*flight
	flying   int // changes in flights
	// flyingBytes is the payload bytes of the flights.
	flyingBytes int
	// chunk is the size of the next outbox read.
	chunk   int
	waiters []syncWaiter

	syncCh  chan syncWaiter
	drainCh chan struct{}
	done    chan struct{}

	lastSent map[string]pipeline.Version // FanOut: highest version sent per site
	// fleet, on the cloud, hears the devices' acks and counts what waits
	// for them.
	fleet *Fleet

	mu     sync.Mutex
	status PipelineStatus
}

func newSender(spec senderSpec, m *metrics, log *slog.Logger, dl *DeadLetters) *sender {
	if spec.AckTimeout <= 0 {
		spec.AckTimeout = 10 * time.Second
	}
	if spec.MaxInFlight <= 0 {
		spec.MaxInFlight = 20000
	}
	if spec.Chunk <= 0 {
		spec.Chunk = 1000
	}
	if spec.MaxInFlightBytes <= 0 {
		spec.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if spec.ChunkBytes <= 0 {
		spec.ChunkBytes = 1 << 20
	}
	return &sender{
		spec: spec, m: m, log: log, dl: dl,
		batchers: map[string]pipeline.Batcher{},
		settled:  map[uint64]bool{},
		flights:  map[string]*flight{},
		syncCh:   make(chan syncWaiter),
		drainCh:  make(chan struct{}),
		done:     make(chan struct{}),
		status: PipelineStatus{Name: spec.Name, Direction: spec.Direction, From: "storage/" + spec.Storage,
			To: "transport/" + spec.Transport, State: "starting"},
	}
}

// start subscribes to acks and runs the loop until ctx ends or a drain
// completes.
func (s *sender) start(ctx context.Context) error {
	acks, err := s.spec.Out.Subscribe(ctx, pipeline.AckChannel(s.spec.Direction), s.spec.AckSite)
	if err != nil {
		return fmt.Errorf("pipeline %s: subscribe to acks: %w", s.spec.Name, err)
	}
	go s.run(ctx, acks)
	return nil
}

func (s *sender) run(ctx context.Context, acks <-chan *message.Message) {
	defer close(s.done)
	s.setState("running")
	draining := false
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		if !draining {
			s.fill(ctx)
		}
		s.cutDue(ctx, draining)
		s.resendDue(ctx)
		s.checkWaiters(ctx)
		s.publishStatus()
		if draining && len(s.flights) == 0 {
			s.setState("drained")
			return
		}
		wake.Reset(s.nextWake())
		select {
		case <-ctx.Done():
			s.failWaiters(ctx.Err())
			s.setState("stopped")
			return
		case <-s.spec.Store.Outbox().Notify():
		case <-poll.C:
		case <-wake.C:
		case msg, ok := <-acks:
			if !ok {
				acks = nil
				continue
			}
			s.onAck(ctx, msg)
			msg.Ack()
		case w := <-s.syncCh:
			if !draining {
				s.fill(ctx)
			}
			s.cutAll(ctx)
			st, err := s.spec.Store.Outbox().Stats(ctx)
			if err != nil {
				w.done <- err
				continue
			}
			w.upTo = st.Last // every change committed before the call
			s.waiters = append(s.waiters, w)
		case <-s.drainCh:
			draining = true
			s.setState("draining")
			s.cutAll(ctx)
			s.drainCh = nil
		}
	}
}

// DefaultMaxInFlightBytes is a sender's default bound on the payload
// bytes awaiting acks.
const DefaultMaxInFlightBytes = 8 << 20

// fill reads the outbox while there is room in flight: in changes, in
// batches and in bytes. Each read takes up to chunk changes; the chunk
// halves while reads come back over ChunkBytes (large items) and grows
// back towards Chunk while they are small, so one read holds about
// ChunkBytes whatever the items' size.
func (s *sender) fill(ctx context.Context) {
	if s.chunk <= 0 {
		s.chunk = s.spec.Chunk
	}
	for s.flying+s.held() < s.spec.MaxInFlight && len(s.flights) < maxFlights && s.flyingBytes < s.spec.MaxInFlightBytes {
		changes, err := s.spec.Store.Outbox().Read(ctx, s.cursor, s.chunk)
		if err != nil {
			if ctx.Err() == nil { // not a shutdown
				s.log.Warn("outbox read failed", "err", err)
			}
			return
		}
		if len(changes) == 0 {
			return
		}
		s.resizeChunk(changes)
		s.take(ctx, changes)
	}
}

// resizeChunk sets the next read's size from the bytes of this one.
func (s *sender) resizeChunk(changes []pipeline.Change) {
	size := 0
	for i := range changes {
		size += len(changes[i].Item) + len(changes[i].Key.PK) + len(changes[i].Key.SK) + 64
	}
	switch {
	case size > s.spec.ChunkBytes && s.chunk > 1:
		s.chunk = max(1, s.chunk/2)
	case size < s.spec.ChunkBytes/2 && s.chunk < s.spec.Chunk:
		s.chunk = min(s.spec.Chunk, s.chunk*2)
	}
}

func (s *sender) held() int {
	n := 0
	for _, b := range s.batchers {
		if !b.Due().IsZero() {
			n++
		}
	}
	return n
}

// take routes a chunk of outbox changes through the stages to the batchers.
func (s *sender) take(ctx context.Context, changes []pipeline.Change) {
	s.m.changesIn.WithLabelValues(s.spec.Name).Add(float64(len(changes)))
	bySite := map[string]*pipeline.Batch{}
	var order []string
	for i := range changes {
		c := &changes[i]
		s.pending = append(s.pending, c.Seq)
		s.cursor = c.Seq
		if s.spec.Keep != nil && !s.spec.Keep(c) {
			s.settle(ctx, c.Seq)
			continue
		}
		site := s.spec.Route(c)
		if s.spec.FanOut && site == c.Origin {
			s.settle(ctx, c.Seq) // never send a change back to the device it came from
			continue
		}
		b := bySite[site]
		if b == nil {
			b = &pipeline.Batch{}
			bySite[site] = b
			order = append(order, site)
		}
		b.Changes = append(b.Changes, *c)
		b.Covers = append(b.Covers, c.Seq)
	}
	for _, site := range order {
		b, err := s.runStages(ctx, s.spec.Stages, bySite[site])
		if err != nil {
			s.log.Warn("stage failed; the changes stay in the outbox", "err", err)
			continue
		}
		bt, err := s.batcher(site)
		if err != nil {
			s.log.Error("batch stage", "err", err)
			continue
		}
		full, err := bt.Add(ctx, b)
		if err != nil {
			s.log.Warn("batch stage failed", "err", err)
			continue
		}
		for _, fb := range full {
			s.send(ctx, site, fb)
		}
	}
}

// runStages runs stages on b; refused changes become dead letters and are
// settled at once.
func (s *sender) runStages(ctx context.Context, stages []namedStage, b *pipeline.Batch) (*pipeline.Batch, error) {
	covers := b.Covers
	for _, st := range stages {
		t0 := time.Now()
		out, err := st.stage.Process(ctx, b)
		s.m.stageTime.WithLabelValues(s.spec.Name, st.name).Observe(time.Since(t0).Seconds())
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", st.name, err)
		}
		if out == nil {
			out = &pipeline.Batch{Rejected: b.Rejected}
		}
		b = out
	}
	s.reject(ctx, "", b.Rejected)
	b.Rejected = nil
	if len(b.Changes) == 0 {
		s.settle(ctx, covers...)
	}
	b.Covers = covers
	return b, nil
}

func (s *sender) batcher(site string) (pipeline.Batcher, error) {
	if b, ok := s.batchers[site]; ok {
		return b, nil
	}
	var b pipeline.Batcher = passBatcher{}
	if s.spec.NewBatcher != nil {
		nb, err := s.spec.NewBatcher()
		if err != nil {
			return nil, err
		}
		b = nb
	}
	s.batchers[site] = b
	return b, nil
}

// reject records refused changes as dead letters and settles them.
func (s *sender) reject(ctx context.Context, site string, rejects []pipeline.Reject) {
	if len(rejects) == 0 {
		return
	}
	letters := make([]DeadLetter, len(rejects))
	now := time.Now()
	for i, r := range rejects {
		letters[i] = DeadLetter{Time: now, Pipeline: s.spec.Name, Site: site, Reject: r}
		if r.Seq != 0 {
			s.settle(ctx, r.Seq)
		}
	}
	s.m.rejects.WithLabelValues(s.spec.Name).Add(float64(len(rejects)))
	if err := s.dl.Add(letters...); err != nil {
		s.log.Warn("dead letters", "err", err)
	}
}

var _ pipeline.Batcher = passBatcher{}

// passBatcher is the batch stage of a pipeline without one: every batch
// goes at once.
type passBatcher struct{}

func (passBatcher) Add(_ context.Context, b *pipeline.Batch) ([]*pipeline.Batch, error) {
	if len(b.Changes) == 0 && len(b.Rejected) == 0 {
		return nil, nil
	}
	return []*pipeline.Batch{b}, nil
}
func (passBatcher) Due() time.Time                                 { return time.Time{} }
func (passBatcher) Cut(context.Context) ([]*pipeline.Batch, error) { return nil, nil }

func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
}

func marshalBatch(b *pipeline.Batch) ([]byte, error) { return json.Marshal(b) }
