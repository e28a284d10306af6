// Package handler is the iotod Lambda function: it takes the batches of
// records Lambda reads from a DynamoDB table's stream and sends the
// changes they hold to the devices over MQTT, the way the down pipeline
// of `iotod run` does with the stream source: each record converted
// (stream.Converter), the models that do not replicate down skipped,
// routed by the owner attribute or broadcast, never back to the change's
// origin, through the policy stage, cut into batches per device (the
// batch stage) and published on the down channel as pipeline.Batch JSON.
//
// A record whose batch cannot be published is reported in the response's
// BatchItemFailures, so Lambda (with ReportBatchItemFailures) retries from
// it. Records that can never be sent (invalid, refused by the policy) are
// logged and dropped, as the down pipeline makes them dead letters.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-lambda-go/events"
	json "github.com/goccy/go-json"
	"github.com/oklog/ulid/v2"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/stages/batch"
	"github.com/iotod/iotod/plugins/stages/policy"
	"github.com/iotod/iotod/plugins/storage/dynamodb/stream"
	"github.com/iotod/iotod/schema"
)

// Handler handles DynamoDB stream events. Make it with New; it is safe
// for concurrent use (Lambda calls it one event at a time).
type Handler struct {
	cfg    Config
	schema *schema.Schema
	conv   *stream.Converter
	policy *policy.Stage
	out    pipeline.Transport
	log    *slog.Logger
}

// New returns a handler for cfg (Validate must pass but the MQTT settings
// are not used) publishing through out. A nil log discards.
func New(cfg Config, out pipeline.Transport, log *slog.Logger) (*Handler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := schema.Load(cfg.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if cfg.Owner == "" {
		cfg.Owner = DefaultOwner
	}
	conv := &stream.Converter{Site: cfg.Site, TypeField: s.Params.TypeField, UpdatedField: s.Params.UpdatedField}
	if p := s.Primary(); p != nil {
		conv.HashKey, conv.SortKey = p.Hash, p.Sort
	}
	st := policy.New(policy.Config{Direction: pipeline.Down, ValidateItems: cfg.ValidateItems},
		pipeline.Settings{Kind: pipeline.KindStage, Site: cfg.Site, Schema: s})
	if err := st.Bind(pipeline.StageSettings{Pipeline: "lambda", Direction: pipeline.Down, Side: string(schema.SideCloud)}); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, schema: s, conv: conv, policy: st, out: out, log: log}, nil
}

// Replicates reports whether the cloud sends the changes of model to the
// devices: the model exists in the cloud (enable cloud or both) and its
// sync is down or both, as db computes it for a cloud store.
func (h *Handler) Replicates(model string) bool {
	m := h.schema.Models[model]
	if m == nil {
		return false
	}
	if e := m.Process.Enable; e != schema.SideCloud && e != schema.SideBoth && e != "" {
		return false
	}
	return m.Process.Sync == schema.SyncDown || m.Process.Sync == schema.SyncBoth
}

// Route names the site a change goes to (pipeline.OwnerRoute).
func (h *Handler) Route(c *pipeline.Change) string { return pipeline.OwnerRoute(h.cfg.Owner, c) }

// Stats counts what one event gave.
type Stats struct {
	Records   int
	Skipped   map[string]int // by reason: stream.Skip values, "not_down", "origin", "policy"
	Invalid   int
	Published int // changes
	Batches   int
	Failed    int // records reported in BatchItemFailures
}

// Handle sends the changes of ev's records and reports the records whose
// publish failed, by sequence number.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	resp, st := h.HandleStats(ctx, ev)
	h.log.Info("stream batch", "records", st.Records, "published", st.Published, "batches", st.Batches,
		"failed", st.Failed, "invalid", st.Invalid, "skipped", st.Skipped)
	return resp, nil
}

// HandleStats is Handle, also returning what it did.
func (h *Handler) HandleStats(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, Stats) {
	st := Stats{Records: len(ev.Records), Skipped: map[string]int{}}
	bySite := map[string]*pipeline.Batch{}
	var order []string
	for i := range ev.Records {
		r := &ev.Records[i]
		sr, err := StreamRecord(*r)
		if err != nil {
			st.Invalid++
			h.log.Warn("stream record dropped", "sequence", r.Change.SequenceNumber, "err", err)
			continue
		}
		c, skip, err := h.conv.Convert(sr)
		if err != nil {
			st.Invalid++
			h.log.Warn("stream record dropped", "sequence", r.Change.SequenceNumber, "err", err)
			continue
		}
		if skip != "" {
			st.Skipped[string(skip)]++
			continue
		}
		if !h.Replicates(c.Model) {
			st.Skipped["not_down"]++
			continue
		}
		site := h.Route(&c)
		if site == c.Origin {
			st.Skipped["origin"]++ // never back to the device it came from
			continue
		}
		c.Seq = uint64(i + 1) // the record's place in the event
		b := bySite[site]
		if b == nil {
			b = &pipeline.Batch{Site: site}
			bySite[site] = b
			order = append(order, site)
		}
		b.Changes = append(b.Changes, c)
		b.Covers = append(b.Covers, c.Seq)
	}
	failed := map[uint64]bool{}
	fail := func(seqs []uint64) {
		for _, q := range seqs {
			failed[q] = true
		}
	}
	for _, site := range order {
		in := bySite[site]
		covers := slices.Clone(in.Covers)
		b, err := h.policy.Process(ctx, in)
		if err != nil {
			h.log.Warn("policy stage failed", "site", site, "err", err)
			fail(covers)
			continue
		}
		for _, rj := range b.Rejected {
			st.Skipped["policy"]++
			h.log.Warn("change refused", "site", site, "model", rj.Model, "key", rj.Key, "reason", rj.Reason)
		}
		b.Rejected = nil
		bt := batch.New(batch.Config{Limit: h.cfg.BatchLimit, Count: h.cfg.BatchCount}, site)
		outs, err := bt.Add(ctx, b)
		if err != nil {
			fail(covers)
			continue
		}
		rest, _ := bt.Cut(ctx)
		for _, ob := range append(outs, rest...) {
			n, err := h.publish(ctx, site, ob)
			st.Published += n
			if err != nil {
				h.log.Warn("publish failed; its records are reported for retry", "site", site, "err", err)
				fail(ob.Covers)
				for _, c := range ob.Changes {
					failed[c.Seq] = true
				}
				continue
			}
			st.Batches++
		}
	}
	var resp events.DynamoDBEventResponse
	seqs := make([]uint64, 0, len(failed))
	for q := range failed {
		if q > 0 && int(q) <= len(ev.Records) {
			seqs = append(seqs, q)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, q := range seqs {
		resp.BatchItemFailures = append(resp.BatchItemFailures,
			events.DynamoDBBatchItemFailure{ItemIdentifier: ev.Records[q-1].Change.SequenceNumber})
	}
	st.Failed = len(resp.BatchItemFailures)
	return resp, st
}

// publish sends b to site on the down channel; a batch over the
// transport's maximum is split in two, a single change over it is
// dropped with a log line (retrying cannot help). It returns the changes
// published.
func (h *Handler) publish(ctx context.Context, site string, b *pipeline.Batch) (int, error) {
	if len(b.Changes) == 0 {
		return 0, nil
	}
	out := &pipeline.Batch{V: pipeline.ProtocolVersion, ID: ulid.Make().String(), Site: h.cfg.Site,
		Changes: make([]pipeline.Change, len(b.Changes))}
	copy(out.Changes, b.Changes)
	for i := range out.Changes {
		out.Changes[i].Seq = 0 // the record's place in the event is not the receiver's business
	}
	payload, err := json.Marshal(out)
	if err != nil {
		return 0, fmt.Errorf("encode batch: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	err = h.out.Publish(pctx, pipeline.ChanDown, site, message.NewMessage(out.ID, payload))
	switch {
	case err == nil:
		return len(b.Changes), nil
	case !errors.Is(err, pipeline.ErrTooLargeForTransport):
		return 0, err
	case len(b.Changes) == 1:
		c := b.Changes[0]
		h.log.Warn("change refused", "site", site, "model", c.Model, "key", c.Key,
			"reason", fmt.Sprintf("change is %d bytes as a batch: %v", len(payload), err))
		return 0, nil
	}
	half := len(b.Changes) / 2
	n1, err1 := h.publish(ctx, site, &pipeline.Batch{Changes: b.Changes[:half]})
	n2, err2 := h.publish(ctx, site, &pipeline.Batch{Changes: b.Changes[half:]})
	return n1 + n2, errors.Join(err1, err2)
}
