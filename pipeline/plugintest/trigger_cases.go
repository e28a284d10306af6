package plugintest

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

const triggerParallel = 4

// testInstances: pipelines sharing a target each have their own trigger
// of one config; they fire at once.
func (s *triggerSuite) testInstances(t *testing.T) {
	target := s.h.Working(t)
	trs := make([]pipeline.Trigger, triggerParallel)
	for i := range trs {
		trs[i] = s.create(t, target)
	}
	s.fireAtOnce(t, target, func(i int) pipeline.Trigger { return trs[i] })
}

func (s *triggerSuite) testConcurrentFire(t *testing.T) {
	if !s.h.Concurrent {
		t.Skip("the harness does not claim a trigger takes concurrent calls (the runner does not need it)")
	}
	target := s.h.Working(t)
	tr := s.create(t, target)
	s.fireAtOnce(t, target, func(int) pipeline.Trigger { return tr })
}

// fireAtOnce fires a batch of its own at the trigger of each of
// triggerParallel goroutines; every batch must arrive whole and in order.
func (s *triggerSuite) fireAtOnce(t *testing.T, target TriggerTarget, trigger func(i int) pipeline.Trigger) {
	batches := make([][]pipeline.Change, triggerParallel)
	total := 0
	for i := range batches {
		batches[i] = triggerBatch("at-once-"+strconv.Itoa(i), 6)
		total += len(batches[i])
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range batches {
		given := cloneBatch(b)
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(t.Context(), s.timeout)
			defer cancel()
			if err := trigger(i).Fire(ctx, triggerPipeline, given); err != nil {
				t.Errorf("goroutine %d: Fire: %v", i, err)
			}
			if !reflect.DeepEqual(given, b) {
				t.Errorf("goroutine %d: Fire changed the batch it was given", i)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	s.checkBatches(t, batches, s.await(t, target, total))
}

// testHanging: a target that never answers must not hold Fire past its
// context.
func (s *triggerSuite) testHanging(t *testing.T, how string) {
	if s.h.Hanging == nil {
		t.Skip("the harness has no hanging target")
	}
	tr := s.create(t, s.h.Hanging(t))
	var (
		ctx    context.Context
		cancel context.CancelFunc
		ends   time.Duration // when ctx ends, from the call
		want   error
	)
	switch how {
	case "Cancel":
		ctx, cancel = context.WithCancel(t.Context())
		ends, want = 200*time.Millisecond, context.Canceled
		time.AfterFunc(ends, cancel)
	case "Deadline":
		ends, want = 300*time.Millisecond, context.DeadlineExceeded
		ctx, cancel = context.WithTimeout(t.Context(), ends)
	case "DoneContext":
		ctx, cancel = context.WithCancel(t.Context())
		want = context.Canceled
		cancel()
	}
	defer cancel()
	took, err := s.fire(t, tr, ends+s.prompt, triggerBatch("hang", 3), ctx)
	switch {
	case err == nil:
		t.Fatalf("Fire to a hanging target with its context ended (%s): nil error", how)
	case !errors.Is(err, want):
		t.Errorf("Fire's error %q does not wrap %v", err, want)
	}
	if took > ends+s.prompt {
		t.Errorf("Fire returned %s after its context ended, more than %s", (took - ends).Round(time.Millisecond), s.prompt)
	}
	s.checkNamed(t, err)
	if pipeline.IsPermanent(err) {
		t.Errorf("a hanging target's error is permanent, but a retry may find it working: %v", err)
	}
}

// testRefusal: a refused batch is an error, permanent only when the
// refusal is; the queue's retry is refused again.
func (s *triggerSuite) testRefusal(t *testing.T, r TriggerRefusal) {
	tr := s.create(t, r.New(t))
	batch := triggerBatch("refused", 3)
	for attempt := 1; attempt <= 2; attempt++ {
		_, err := s.fire(t, tr, s.timeout, batch)
		if err == nil {
			t.Fatalf("attempt %d: Fire to a refusing target: nil error", attempt)
		}
		s.checkNamed(t, err)
		if got := pipeline.IsPermanent(err); got != r.Permanent {
			t.Errorf("attempt %d: IsPermanent = %v, want %v: %v", attempt, got, r.Permanent, err)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Errorf("attempt %d: a refusal reported as a context error: %v", attempt, err)
		}
	}
}
