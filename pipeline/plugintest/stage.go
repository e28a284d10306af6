package plugintest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// StageCase is one batch through a stage and what must come out of it.
// Seqs must be unique within a case.
type StageCase struct {
	Name string
	// Direction is the pipeline's direction, given by Bind; default up.
	Direction pipeline.Direction
	// Schema, if set, replaces StageSchema for this case.
	Schema  *schema.Schema
	Changes []pipeline.Change
	// Pass lists the Seqs of the changes that must pass, in order; every
	// other change must be rejected.
	Pass []uint64
	// Reasons maps the Seq of a rejected change to a text its reason must
	// contain.
	Reasons map[uint64]string
}

// TestStage runs the conformance suite for a stage (a pipeline.Stage) made
// by f with cfg (nil: f's default config), over the schema of StageSchema,
// then runs each case. Every stage must:
//   - be of kind stage, with a valid type, a description and a default
//     config that validates; Create refuses a config of another type;
//   - take a nil batch without failing, and an empty one;
//   - pass changes in their input order, and account for every change:
//     each is passed or moved to Rejected with its Model, Key and Seq and a
//     non-empty reason; rejects already in the batch stay;
//   - keep the batch's V, ID, Site and Covers;
//   - return an error wrapping the context's when given a done context.
func TestStage(t *testing.T, f pipeline.Factory, cfg pipeline.Config, cases ...StageCase) {
	t.Run("Factory", func(t *testing.T) { testFactory(t, f) })
	newStage := func(t *testing.T, dir pipeline.Direction, sc ...*schema.Schema) pipeline.Stage {
		t.Helper()
		s := createStage[pipeline.Stage](t, f, cfg, sc...)
		bindStage(t, s, dir)
		return s
	}
	t.Run("NilBatch", func(t *testing.T) {
		out, err := newStage(t, pipeline.Up).Process(t.Context(), nil)
		if err != nil {
			t.Fatalf("Process(nil): %v", err)
		}
		if out != nil && len(out.Changes) != 0 {
			t.Fatalf("Process(nil) made changes: %+v", out.Changes)
		}
	})
	t.Run("EmptyBatch", func(t *testing.T) {
		in := &pipeline.Batch{V: pipeline.ProtocolVersion, ID: "empty", Covers: []uint64{7}}
		out, err := newStage(t, pipeline.Up).Process(t.Context(), in)
		if err != nil {
			t.Fatalf("Process(empty): %v", err)
		}
		if out != nil && (len(out.Changes) != 0 || len(out.Rejected) != 0) {
			t.Fatalf("Process(empty) = %d changes, %d rejects; want none", len(out.Changes), len(out.Rejected))
		}
	})
	for _, dir := range []pipeline.Direction{pipeline.Up, pipeline.Down} {
		t.Run("OrderAndAccounting/"+string(dir), func(t *testing.T) {
			changes := stageMixedChanges()
			prior := pipeline.Reject{Model: "Earlier", Key: pipeline.Key{PK: "e"}, Seq: 999, Reason: "an earlier stage said no"}
			in := &pipeline.Batch{V: pipeline.ProtocolVersion, ID: "mixed", Site: "plugintest",
				Changes: slices.Clone(changes), Covers: []uint64{1, 2, 3}, Rejected: []pipeline.Reject{prior}}
			out, err := newStage(t, dir).Process(t.Context(), in)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if out == nil {
				t.Fatal("Process returned a nil batch for a batch of changes")
			}
			if out.V != in.V || out.ID != "mixed" || out.Site != "plugintest" || !slices.Equal(out.Covers, []uint64{1, 2, 3}) {
				t.Errorf("batch header changed: v=%d id=%q site=%q covers=%v", out.V, out.ID, out.Site, out.Covers)
			}
			if !slices.Contains(out.Rejected, prior) {
				t.Errorf("the reject already in the batch was dropped: %+v", out.Rejected)
			}
			checkAccounting(t, changes, out, nil, nil)
		})
	}
	t.Run("Cancel", func(t *testing.T) {
		s := newStage(t, pipeline.Up)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.Process(ctx, &pipeline.Batch{V: pipeline.ProtocolVersion, ID: "c", Changes: stageMixedChanges()})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Process with a canceled context: err = %v, want context.Canceled", err)
		}
	})
	for _, tc := range cases {
		t.Run("Case/"+tc.Name, func(t *testing.T) {
			dir := tc.Direction
			if dir == "" {
				dir = pipeline.Up
			}
			in := &pipeline.Batch{V: pipeline.ProtocolVersion, ID: "case", Changes: slices.Clone(tc.Changes)}
			out, err := newStage(t, dir, tc.Schema).Process(t.Context(), in)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if out == nil {
				out = &pipeline.Batch{}
			}
			pass := tc.Pass
			if pass == nil {
				pass = []uint64{}
			}
			checkAccounting(t, tc.Changes, out, pass, tc.Reasons)
		})
	}
}
