package plugintest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// TriggerTarget is a trigger's config and the target it delivers to.
type TriggerTarget struct {
	// Config is a config of the factory under test; it must validate.
	Config pipeline.Config
	// Settings are given to Create; the suite fills their zero fields: ID,
	// Kind, Site "plugintest", a discarding Logger, a Metrics registry and
	// a temporary Dir.
	Settings pipeline.Settings
	// Received returns every delivery the target got so far, in arrival
	// order, each as the changes it carried (a change delivered twice is
	// there twice). Required for TriggerHarness.Working only.
	Received func() [][]pipeline.Change
}

// TriggerRefusal is a target that refuses every delivery.
type TriggerRefusal struct {
	Name string
	// New returns a new refusing target and a config delivering to it.
	New func(t *testing.T) TriggerTarget
	// Permanent: retrying cannot help (a 4xx, a payload the transport
	// never takes), so the error must be pipeline.IsPermanent; otherwise
	// (a 5xx, a failing command) it must not be.
	Permanent bool
}

// TriggerHarness is what TestTrigger needs of a trigger type.
type TriggerHarness struct {
	Factory pipeline.Factory
	// Working returns a new target that accepts every delivery, and a
	// config of a trigger delivering to it that selects every change (no
	// filter). Required; called once or more per subtest.
	Working func(t *testing.T) TriggerTarget
	// CountsOnly: the target gets counts of changes per model and
	// operation (a log line), not the changes. Received then gives
	// changes with only Model and Op set, and the suite compares those
	// counts, not the order or the contents.
	CountsOnly bool
	// Hanging, if set, returns a target that takes a delivery and never
	// answers, and a config delivering to it.
	Hanging func(t *testing.T) TriggerTarget
	// Refusals are targets that refuse every delivery.
	Refusals []TriggerRefusal
	// Concurrent: one trigger takes Fire calls from several goroutines at
	// once. The runner does not need it (it calls each trigger from one
	// goroutine), so without it the suite does not check it.
	Concurrent bool
	// Timeout bounds a delivery: Fire's context, and the wait for the
	// target to have it. Zero: 10s.
	Timeout time.Duration
	// Prompt bounds how long Fire may take with an empty batch, or after
	// its context ended. Zero: 2s.
	Prompt time.Duration
}

// TestTrigger runs the trigger conformance suite. The runner calls a
// trigger from a durable queue (runner/triggers.go): a failed call is
// retried later with the same batch, a permanent failure sets the batch
// aside, and each call has a deadline. So every trigger must:
//   - be of kind trigger, with a valid type and a description; each
//     NewDefaultConfig is a new config; Create refuses a config of another
//     type with an error wrapping pipeline.ErrInvalid and makes a
//     pipeline.Trigger of the harness's configs;
//   - return nil at once for a nil or empty batch, whatever its target,
//     and deliver nothing for it;
//   - return nil for a batch its working target took; the target then
//     has (at once, or within Timeout for a target fed through a broker)
//     every change, in order, in non-empty deliveries (CountsOnly: the
//     counts per model and operation), each with its
//     model, op, key, item, version, origin and time (Seq is a site's
//     outbox position and is not compared); leave the batch it was given
//     unchanged; take batches of the runner's default size;
//   - take the same batch again and deliver it again (at least once);
//   - work as several instances of one config fired at once, as
//     pipelines sharing a target do (each instance's batch arrives whole
//     and in order); and, if Concurrent, as one instance fired at once
//     from several goroutines;
//   - with a hanging target, return within Prompt once its context is
//     cancelled, past its deadline, or done before the call, with an
//     error wrapping the context's, naming the trigger and not permanent;
//   - with a refusing target, return an error naming the trigger
//     (holding its type), not a context error, permanent exactly when
//     the refusal says so, and the same again for the same batch.
func TestTrigger(t *testing.T, h TriggerHarness) {
	s := &triggerSuite{h: h, timeout: h.Timeout, prompt: h.Prompt}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	if s.prompt <= 0 {
		s.prompt = 2 * time.Second
	}
	if h.Factory == nil || h.Working == nil {
		t.Fatal("TriggerHarness: Factory and Working are required")
	}
	t.Run("Factory", s.testFactory)
	t.Run("EmptyBatch", s.testEmptyBatch)
	t.Run("Delivers", func(t *testing.T) { s.testDelivers(t, 5) })
	t.Run("DefaultBatchSize", func(t *testing.T) { s.testDelivers(t, pipeline.DefaultTriggerDelivery().Batch) })
	t.Run("SameBatchTwice", s.testSameBatchTwice)
	t.Run("Instances", s.testInstances)
	t.Run("ConcurrentFire", s.testConcurrentFire)
	for _, how := range []string{"Cancel", "Deadline", "DoneContext"} {
		t.Run("Hanging/"+how, func(t *testing.T) { s.testHanging(t, how) })
	}
	for _, r := range h.Refusals {
		t.Run("Refusal/"+r.Name, func(t *testing.T) { s.testRefusal(t, r) })
	}
}

func (s *triggerSuite) testFactory(t *testing.T) {
	f := s.h.Factory
	if f.Kind() != pipeline.KindTrigger {
		t.Errorf("Kind() = %q, want %q", f.Kind(), pipeline.KindTrigger)
	}
	if _, err := pipeline.ParseID(f.Type()); err != nil || f.Type() == "" {
		t.Errorf("Type() = %q is not a valid component type: %v", f.Type(), err)
	}
	if f.Description() == "" {
		t.Error("Description() is empty")
	}
	cfg := f.NewDefaultConfig()
	if cfg == nil {
		t.Fatal("NewDefaultConfig() returned nil")
	}
	if cfg == f.NewDefaultConfig() {
		t.Error("NewDefaultConfig() returns the same config twice; each call must return a new one")
	}
	_, err := f.Create(t.Context(), s.settings(t, pipeline.Settings{}), wrongConfig{})
	if !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("Create with a config of another type: err = %v, want one wrapping pipeline.ErrInvalid", err)
	}
	s.create(t, s.h.Working(t))
}

// testEmptyBatch: nil and empty batches return nil at once, on every
// target, and reach none; the working target then gets a real batch, and
// nothing before it.
func (s *triggerSuite) testEmptyBatch(t *testing.T) {
	type named struct {
		name string
		new  func(*testing.T) TriggerTarget
	}
	targets := []named{{"Working", s.h.Working}, {"Hanging", s.h.Hanging}}
	for _, r := range s.h.Refusals {
		targets = append(targets, named{"Refusal/" + r.Name, r.New})
	}
	for _, nt := range targets {
		name, newTarget := nt.name, nt.new
		if newTarget == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			target := newTarget(t)
			tr := s.create(t, target)
			for _, batch := range [][]pipeline.Change{nil, {}} {
				took, err := s.fire(t, tr, s.prompt, batch)
				if err != nil {
					t.Errorf("Fire(%#v) = %v, want nil", batch, err)
				}
				if took > s.prompt {
					t.Errorf("Fire(%#v) took %s, more than %s", batch, took.Round(time.Millisecond), s.prompt)
				}
			}
			if name != "Working" {
				return
			}
			batch := triggerBatch("empty", 3)
			s.mustFire(t, tr, batch)
			s.checkBatches(t, [][]pipeline.Change{batch}, s.await(t, target, len(batch)))
		})
	}
}

func (s *triggerSuite) testDelivers(t *testing.T, n int) {
	target := s.h.Working(t)
	tr := s.create(t, target)
	batch := triggerBatch("deliver", n)
	s.mustFire(t, tr, batch)
	s.checkBatches(t, [][]pipeline.Change{batch}, s.await(t, target, n))
}

// testSameBatchTwice: the queue calls again with a batch it could not
// settle; the trigger delivers it again.
func (s *triggerSuite) testSameBatchTwice(t *testing.T) {
	target := s.h.Working(t)
	tr := s.create(t, target)
	batch := triggerBatch("again", 4)
	s.mustFire(t, tr, batch)
	s.mustFire(t, tr, batch)
	got := s.await(t, target, 2*len(batch))
	s.checkBatches(t, [][]pipeline.Change{slices.Concat(batch, batch)}, got)
}
