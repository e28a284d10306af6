// Package batch is the `batch` stage: it holds the changes a pipeline
// sends, keeps only the latest change of each key, and cuts them into
// batches at a delay, a byte limit or a count, whichever comes first.
package batch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/pipeline"
)

// Batcher holds changes and cuts them into batches. It is not safe for
// concurrent use: one goroutine (a pipeline's sender loop) calls Add, Due
// and Cut.
//
// Coalescing: a change to a key (model, pk, sk) already held replaces the
// held one, at the later change's place, so the changes of one key keep
// their order and the newest wins. The outbox seqs of the replaced change
// stay in the batch's Covers, so acknowledging the batch settles them too.
//
// Covers and rejects: the input's Covers (less the seqs of its own
// changes, which go with those changes) and its Rejected travel with the
// next batch cut. A batch may so carry only covers or rejects and no
// change; it is still returned, so that they are settled.
type Batcher struct {
	cfg         Config
	defaultSite string
	now         func() time.Time

	site    string
	slots   []slot         // held changes in arrival order; coalesced ones are dead
	index   map[string]int // key to its live slot
	live    int
	size    int // estimated JSON bytes of the held batch, envelope included
	covers  []uint64
	rejects []pipeline.Reject
	since   time.Time // arrival of the first held input; zero when nothing is held
}

type slot struct {
	c    pipeline.Change
	size int
	dead bool
}

// New returns a batcher with cfg (validated) whose batches name site
// unless their input names one.
func New(cfg Config, site string) *Batcher {
	return &Batcher{cfg: cfg, defaultSite: site, now: time.Now, index: map[string]int{}}
}

// Add takes b's changes, covers and rejects and returns the batches that
// are full now: at Count changes, or when the next change would take the
// batch over Limit bytes (a change over Limit on its own goes alone). Input
// naming another site than the held changes cuts those first. A done ctx
// returns its error and takes nothing.
func (t *Batcher) Add(ctx context.Context, b *pipeline.Batch) ([]*pipeline.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("batch: add: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var out []*pipeline.Batch
	site := b.Site
	if site == "" {
		site = t.defaultSite
	}
	if t.holding() && site != t.site {
		out = append(out, t.cut())
	}
	t.site = site
	if extra := extraCovers(b); len(extra)+len(b.Rejected) > 0 {
		t.arrive()
		t.covers = append(t.covers, extra...)
		t.rejects = append(t.rejects, b.Rejected...)
	}
	for i := range b.Changes {
		out = append(out, t.put(b.Changes[i])...)
	}
	return out, nil
}

// put holds c, replacing a held change of its key, and returns the batches
// it filled.
func (t *Batcher) put(c pipeline.Change) []*pipeline.Batch {
	var out []*pipeline.Batch
	k := key(c)
	if i, ok := t.index[k]; ok {
		t.slots[i].dead = true
		t.live--
		t.size -= t.slots[i].size
		delete(t.index, k)
	}
	sz := changeSize(&c)
	if t.live > 0 && t.size+sz > int(t.cfg.Limit) {
		out = append(out, t.cut())
	}
	t.arrive()
	if t.size == 0 {
		t.size = envelopeSize(t.site)
	}
	t.index[k] = len(t.slots)
	t.slots = append(t.slots, slot{c: c, size: sz})
	t.live++
	t.size += sz
	if c.Seq != 0 {
		t.covers = append(t.covers, c.Seq)
	}
	if t.live >= t.cfg.Count || t.size >= int(t.cfg.Limit) {
		out = append(out, t.cut())
	}
	return out
}

// Due is when the held changes must be cut: the first held input's arrival
// plus Delay; zero when nothing is held. Held covers or rejects count.
func (t *Batcher) Due() time.Time {
	if !t.holding() {
		return time.Time{}
	}
	return t.since.Add(t.cfg.Delay)
}

// Cut returns everything held as one batch (none if nothing is held). It
// never blocks and ignores ctx, so that a drain can always flush.
func (t *Batcher) Cut(context.Context) ([]*pipeline.Batch, error) {
	if !t.holding() {
		return nil, nil
	}
	return []*pipeline.Batch{t.cut()}, nil
}

func (t *Batcher) holding() bool {
	return t.live > 0 || len(t.covers) > 0 || len(t.rejects) > 0
}

// arrive starts the delay clock if nothing was held.
func (t *Batcher) arrive() {
	if !t.holding() {
		t.since = t.now()
	}
}

// cut makes a batch of everything held and empties the batcher.
func (t *Batcher) cut() *pipeline.Batch {
	b := &pipeline.Batch{
		V:        pipeline.ProtocolVersion,
		ID:       ulid.Make().String(),
		Site:     t.site,
		Changes:  make([]pipeline.Change, 0, t.live),
		Rejected: t.rejects,
	}
	for i := range t.slots {
		if !t.slots[i].dead {
			b.Changes = append(b.Changes, t.slots[i].c)
		}
	}
	slices.Sort(t.covers)
	b.Covers = slices.Compact(t.covers)
	clear(t.slots)
	t.slots = t.slots[:0]
	clear(t.index)
	t.live, t.size, t.covers, t.rejects, t.since = 0, 0, nil, nil, time.Time{}
	return b
}

// extraCovers returns b's covers that are not seqs of its own changes.
func extraCovers(b *pipeline.Batch) []uint64 {
	if len(b.Covers) == 0 {
		return nil
	}
	own := make(map[uint64]bool, len(b.Changes))
	for i := range b.Changes {
		own[b.Changes[i].Seq] = true
	}
	var out []uint64
	for _, s := range b.Covers {
		if !own[s] {
			out = append(out, s)
		}
	}
	return out
}

func key(c pipeline.Change) string {
	return c.Model + "\x00" + c.Key.PK + "\x00" + c.Key.SK
}

var _ pipeline.Batcher = (*Batcher)(nil)
