package runner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// scriptedTrigger records what it is given; fail decides, per call,
// whether the call fails (and hang makes it wait for its context).
type scriptedTrigger struct {
	mu    sync.Mutex
	calls int
	got   []pipeline.Change
	fail  func(call int) error
	hang  func(call int) bool
}

func (s *scriptedTrigger) Fire(ctx context.Context, _ string, changes []pipeline.Change) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	fail, hang := s.fail, s.hang
	s.mu.Unlock()
	if hang != nil && hang(call) {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail != nil {
		if err := fail(call); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.got = append(s.got, changes...)
	s.mu.Unlock()
	return nil
}

func (s *scriptedTrigger) delivered() []pipeline.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pipeline.Change(nil), s.got...)
}

type scriptedConfig struct{ _ struct{} }

func (*scriptedConfig) Validate() error { return nil }

// withTrigger adds trig to the cloud's ingest pipeline as "scripted".
func withTrigger(plan *Plan, trig pipeline.Trigger) { withTriggerOn(plan, "ingest", trig) }

// withTriggerOn adds trig to the pipeline named as "scripted".
func withTriggerOn(plan *Plan, name string, trig pipeline.Trigger) {
	f := pipeline.MakeFactory(pipeline.KindTrigger, "scripted", "a test trigger", func() scriptedConfig { return scriptedConfig{} },
		func(context.Context, pipeline.Settings, scriptedConfig) (any, error) { return trig, nil })
	for i := range plan.Pipelines {
		if plan.Pipelines[i].Name == name {
			plan.Pipelines[i].Triggers = []ComponentPlan{{ID: pipeline.ID{Type: "scripted"}, Factory: f, Config: f.NewDefaultConfig()}}
		}
	}
}

// startWithFastTriggers starts plan with trigger queues that retry within
// milliseconds and give up after attempts.
func startWithFastTriggers(t *testing.T, plan Plan, attempts int) *Runner {
	t.Helper()
	r, err := New(plan, Options{})
	require.NoError(t, err)
	require.NoError(t, r.Open(context.Background()))
	for _, q := range r.triggerQueues() {
		q.minDelay, q.maxDelay, q.timeout, q.attempts = 5*time.Millisecond, 20*time.Millisecond, 300*time.Millisecond, attempts
	}
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return r
}

func readingsOn(t *testing.T, dev *db.DB, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, err := dev.Create(context.Background(), "Reading", db.Item{"deviceId": "dev1", "seq": i, "temp": i}, nil)
		require.NoError(t, err)
	}
}

func seqs(changes []pipeline.Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.Key.SK
	}
	return out
}

// A trigger that fails, then hangs, holds nothing back: the device's
// changes are applied and acknowledged at once; the trigger gets each
// change exactly once, in order, once it works again.
func TestTriggerFailuresNeverHoldReplicationBack(t *testing.T) {
	trig := &scriptedTrigger{
		fail: func(call int) error {
			if call <= 3 {
				return errors.New("webhook down")
			}
			return nil
		},
		hang: func(call int) bool { return call == 4 || call == 5 },
	}
	plan := allInOne(t)
	withTrigger(&plan, trig)
	r := startWithFastTriggers(t, plan, 100)
	readingsOn(t, r.DB("local"), 0, 30)
	require.NoError(t, r.Sync(syncCtx(t)), "replication does not wait for the trigger")

	require.Eventually(t, func() bool { return len(trig.delivered()) >= 30 }, 10*time.Second, 10*time.Millisecond)
	got := trig.delivered()
	require.Len(t, got, 30, "each change once")
	require.Eventually(t, func() bool {
		left, err := r.DB("cloud").PendingTriggers(context.Background(), "ingest:scripted", 0, false)
		return err == nil && len(left) == 0
	}, 5*time.Second, 10*time.Millisecond, "the queue empties once delivered")
	for i := 1; i < len(got); i++ {
		assert.Less(t, got[i-1].Key.SK, got[i].Key.SK, "in order") // readings' sk sort as they were written
	}
	assert.Equal(t, 1.0, testutilCounter(t, r, "iotod_trigger_deliveries_total", "delivered", "ingest:scripted")/30)
}

// A trigger that keeps failing: its batch is set aside as dead after the
// attempts, with the reason, dead-lettered; the next changes still go
// through; a replay delivers the dead ones.
func TestTriggerDeadAndReplayed(t *testing.T) {
	var broken sync.Mutex
	down := true
	trig := &scriptedTrigger{fail: func(int) error {
		broken.Lock()
		defer broken.Unlock()
		if down {
			return errors.New("endpoint answers 500")
		}
		return nil
	}}
	plan := allInOne(t)
	withTrigger(&plan, trig)
	r := startWithFastTriggers(t, plan, 3)
	cloud := r.DB("cloud")
	readingsOn(t, r.DB("local"), 0, 5)
	require.NoError(t, r.Sync(syncCtx(t)))
	var dead []db.Queued
	require.Eventually(t, func() bool {
		var err error
		dead, err = cloud.PendingTriggers(context.Background(), "ingest:scripted", 0, true)
		return err == nil && len(dead) == 5
	}, 10*time.Second, 10*time.Millisecond, "set aside as dead")
	assert.Contains(t, dead[0].Reason, "endpoint answers 500")
	assert.Equal(t, 3, dead[0].Attempts)
	letters, _ := r.DeadLetters().Recent()
	require.NotEmpty(t, letters)
	assert.Contains(t, letters[len(letters)-1].Reject.Reason, "trigger ingest:scripted: 3 attempts: endpoint answers 500")
	assert.Empty(t, trig.delivered())

	broken.Lock()
	down = false
	broken.Unlock()
	readingsOn(t, r.DB("local"), 5, 7)
	require.NoError(t, r.Sync(syncCtx(t)))
	require.Eventually(t, func() bool { return len(trig.delivered()) == 2 }, 10*time.Second, 10*time.Millisecond, "later changes go through")

	n, err := r.ReplayTriggers(context.Background(), "ingest:scripted")
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	require.Eventually(t, func() bool { return len(trig.delivered()) == 7 }, 10*time.Second, 10*time.Millisecond, "replayed")
	dead, err = cloud.PendingTriggers(context.Background(), "ingest:scripted", 0, true)
	require.NoError(t, err)
	assert.Empty(t, dead)
	_, err = r.ReplayTriggers(context.Background(), "ingest:nope")
	assert.ErrorContains(t, err, `no trigger "ingest:nope"`)
}

// Deliveries queued while the trigger failed survive a restart of the
// process: the next run delivers them.
func TestTriggerQueueSurvivesARestart(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	failing := &scriptedTrigger{fail: func(int) error { return errors.New("not yet") }}
	plan := allInOne(t, dirs...)
	withTrigger(&plan, failing)
	r, err := New(plan, Options{})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	readingsOn(t, r.DB("local"), 0, 10)
	require.NoError(t, r.Sync(syncCtx(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	require.NoError(t, r.Shutdown(ctx))
	cancel()

	ok := &scriptedTrigger{}
	plan = allInOne(t, dirs...)
	withTrigger(&plan, ok)
	startWithFastTriggers(t, plan, 3)
	require.Eventually(t, func() bool { return len(ok.delivered()) == 10 }, 10*time.Second, 10*time.Millisecond,
		"the queued changes are delivered after the restart: %v", seqs(ok.delivered()))
}

// A trigger on a pipeline from a storage fires on that storage's local
// writes: queued in the write's transaction (so a failing trigger leaves
// them waiting in the store), each delivered once with this site as its
// origin; changes applied from the cloud are not local writes and do not
// fire it.
func TestLocalWriteTriggers(t *testing.T) {
	var broken sync.Mutex
	broken.Lock()
	trig := &scriptedTrigger{fail: func(int) error {
		if !broken.TryLock() {
			return errors.New("not yet")
		}
		broken.Unlock()
		return nil
	}}
	plan := allInOne(t)
	withTriggerOn(&plan, "up", trig)
	r := startWithFastTriggers(t, plan, 1000)
	dev, cloud := r.DB("local"), r.DB("cloud")
	readingsOn(t, dev, 0, 10)
	ctx := context.Background()
	queued, err := dev.PendingTriggers(ctx, "up:scripted", 0, false)
	require.NoError(t, err)
	require.Len(t, queued, 10, "queued with the writes")
	_, err = cloud.Create(ctx, "Command", db.Item{"deviceId": "dev1", "id": "c1", "command": "reboot"}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))
	require.Eventually(t, func() bool {
		_, err := dev.Get(ctx, "Command", db.Item{"deviceId": "dev1", "id": "c1"}, nil)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the cloud's command reached the device")

	broken.Unlock()
	require.Eventually(t, func() bool { return len(trig.delivered()) >= 10 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	got := trig.delivered()
	require.Len(t, got, 10, "the local writes, once each; not the applied command: %v", seqs(got))
	for _, c := range got {
		assert.Equal(t, "Reading", c.Model)
		assert.Equal(t, "dev1", c.Origin)
		assert.Equal(t, pipeline.OpCreate, c.Op)
	}
}

// testutilCounter reads a counter of the runner's registry; labels in
// the order of their names.
func testutilCounter(t *testing.T, r *Runner, name string, labels ...string) float64 {
	t.Helper()
	families, err := r.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := len(m.GetLabel()) == len(labels)
			for i, l := range m.GetLabel() {
				if match && l.GetValue() != labels[i] {
					match = false
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}
