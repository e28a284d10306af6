package pipeline

import (
	"context"
	"time"
)

// Stage processes batches on their way through a pipeline. It returns the
// batch that goes on (nil drops it all); a change it refuses moves from
// b.Changes to b.Rejected with a reason. An error means the batch could
// not be processed now (retried) or, if Permanent, ever.
type Stage interface {
	Process(ctx context.Context, b *Batch) (*Batch, error)
}

// Batcher is a stage that holds changes and cuts them into batches: the
// `batch` stage. A pipeline calls Add with changes as they come, Cut when
// Due says so or when a sync is forced, and sends what they return.
type Batcher interface {
	// Add takes changes (coalescing changes of one key to the latest) and
	// returns the batches that are full now.
	Add(ctx context.Context, b *Batch) ([]*Batch, error)
	// Due is when the held changes must be cut (zero: nothing held).
	Due() time.Time
	// Cut returns everything held as batches, now.
	Cut(ctx context.Context) ([]*Batch, error)
}

// StageSettings tells a stage which pipeline it serves.
type StageSettings struct {
	Pipeline  string
	Direction Direction
	// Side is where the pipeline runs: "device" or "cloud".
	Side string
	// Receiving is set on a pipeline from a transport into a store, whose
	// store checks every item against the schema as it applies it.
	Receiving bool
}

// StageBinder is implemented by stages that need to know their pipeline.
// The framework calls Bind once before the first Process.
type StageBinder interface {
	Bind(StageSettings) error
}

// Trigger reacts to changes a pipeline applied.
type Trigger interface {
	Fire(ctx context.Context, pipeline string, changes []Change) error
}
