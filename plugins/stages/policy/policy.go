// Package policy is the `policy` stage: it lets a change through only if
// the schema's `process` rule for its model lets it flow in the pipeline's
// direction, and (by default) only if its item is valid for the model.
// Changes it refuses move to the batch's Rejected list with a reason; the
// others go on in their order.
package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// cancelCheckEvery is how many changes Process handles between looks at
// its context.
const cancelCheckEvery = 64

// Stage is a policy stage. Bind, then Process from one goroutine at a time
// or several: Process keeps no state between batches.
type Stage struct {
	cfg    Config
	id     pipeline.ID
	schema *schema.Schema
	check  *db.Checker
	dir    pipeline.Direction
	// storeChecks: the pipeline's store validates items (receiving side).
	storeChecks bool
}

// New returns a policy stage over set.Schema (which must not be nil).
// Until Bind, it works in cfg.Direction, if set.
func New(cfg Config, set pipeline.Settings) *Stage {
	st := &Stage{cfg: cfg, id: set.ID, schema: set.Schema, dir: cfg.Direction}
	if set.Schema != nil {
		st.check = db.NewChecker(set.Schema)
	}
	return st
}

// Bind takes the pipeline's direction; a configured direction must match it.
func (s *Stage) Bind(ss pipeline.StageSettings) error {
	if ss.Direction != pipeline.Up && ss.Direction != pipeline.Down {
		return fmt.Errorf("%s: %w: pipeline %q has direction %q, want up or down", s.id, pipeline.ErrInvalid, ss.Pipeline, ss.Direction)
	}
	if s.cfg.Direction != "" && s.cfg.Direction != ss.Direction {
		return fmt.Errorf("%s: %w: direction is %s but pipeline %q runs %s", s.id, pipeline.ErrInvalid, s.cfg.Direction, ss.Pipeline, ss.Direction)
	}
	s.dir = ss.Direction
	// A receiving store validates each item as it applies it, with the
	// same checks and reasons: checking here too would do it twice.
	s.storeChecks = ss.Receiving
	return nil
}

// Process moves every change the rules or the schema refuse to b.Rejected
// (keeping any rejects already there) and returns b with the rest, in their
// order. A batch left with no changes is still returned, so that its
// rejects and covered outbox entries are settled downstream. A nil batch
// returns nil. A done ctx returns its error and leaves b as it was.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	if b == nil {
		return nil, nil
	}
	if s.dir == "" {
		return nil, pipeline.Permanent(fmt.Errorf("%s: %w: not bound to a pipeline and no direction configured", s.id, pipeline.ErrInvalid))
	}
	var kept []pipeline.Change // nil until the first reject: b.Changes is not touched before
	var rejects []pipeline.Reject
	for i := range b.Changes {
		if i%cancelCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%s: batch %s: %w", s.id, b.ID, err)
			}
		}
		c := &b.Changes[i]
		reason := s.verdict(c)
		if reason == "" {
			if kept != nil {
				kept = append(kept, *c)
			}
			continue
		}
		if kept == nil {
			kept = make([]pipeline.Change, i, len(b.Changes))
			copy(kept, b.Changes[:i])
		}
		rejects = append(rejects, pipeline.Reject{Model: c.Model, Key: c.Key, Seq: c.Seq, Reason: reason})
	}
	if kept != nil {
		b.Changes = kept
		b.Rejected = append(b.Rejected, rejects...)
	}
	return b, nil
}

// verdict returns why c may not pass, or "".
func (s *Stage) verdict(c *pipeline.Change) string {
	m := s.schema.Models[c.Model]
	if m == nil {
		return fmt.Sprintf("unknown model %q", c.Model)
	}
	if why := RuleReason(m, s.dir); why != "" {
		return why
	}
	switch c.Op {
	case pipeline.OpRemove:
		return ""
	case pipeline.OpCreate, pipeline.OpUpdate, pipeline.OpUpsert:
	default:
		return fmt.Sprintf("unknown op %q", c.Op)
	}
	if len(c.Item) == 0 {
		return fmt.Sprintf("%s without an item", c.Op)
	}
	if !s.cfg.ValidateItems || s.storeChecks {
		if !json.Valid(c.Item) {
			return "malformed item: not valid JSON"
		}
		return ""
	}
	item, err := decodeItem(c.Item)
	if err != nil {
		return "malformed item: " + err.Error()
	}
	if err := s.check.Check(c.Model, item); err != nil {
		return err.Error()
	}
	return ""
}

// decodeItem reads one JSON object, keeping numbers exact.
func decodeItem(raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	item, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return item, nil
}

// RuleReason says why model m's process rule keeps its changes from
// flowing in dir, or returns "" if they may. Both directions need
// `enable: both` (a device-only model never leaves the device; a
// cloud-only model never exists on one); up needs `sync: up` or `both`,
// down needs `sync: down` or `both`.
func RuleReason(m *schema.Model, dir pipeline.Direction) string {
	switch m.Process.Enable {
	case schema.SideDevice:
		return fmt.Sprintf("model %s lives on the device only (enable: device)", m.Name)
	case schema.SideCloud:
		return fmt.Sprintf("model %s lives in the cloud only (enable: cloud)", m.Name)
	}
	switch sync := m.Process.Sync; {
	case sync == schema.SyncBoth, string(sync) == string(dir):
		return ""
	case sync == schema.SyncUp || sync == schema.SyncDown:
		return fmt.Sprintf("model %s syncs %s, not %s", m.Name, sync, dir)
	default:
		return fmt.Sprintf("model %s does not sync (sync: none)", m.Name)
	}
}

var (
	_ pipeline.Stage       = (*Stage)(nil)
	_ pipeline.StageBinder = (*Stage)(nil)
)
