package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/transport/inproc"
)

// clonePlan copies plan's maps and pipelines, so that a test changes the
// copy only.
func clonePlan(plan Plan) Plan {
	plan.Storage = maps.Clone(plan.Storage)
	plan.Transports = maps.Clone(plan.Transports)
	plan.Pipelines = slices.Clone(plan.Pipelines)
	return plan
}

func unitsByName(r *Runner) map[string]*unit {
	out := map[string]*unit{}
	for _, u := range r.unitList() {
		out[u.plan.Name] = u
	}
	return out
}

func reloadCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// replicates writes one change each way and checks both arrive.
func replicates(t *testing.T, r *Runner, seq int) {
	t.Helper()
	ctx := context.Background()
	_, err := r.DB("local").Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": seq, "temp": seq}, nil)
	require.NoError(t, err)
	_, err = r.DB("cloud").Create(ctx, "Account", db.Item{"id": fmt.Sprint("acc", seq), "name": "n"}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))
	_, err = r.DB("cloud").Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": seq}, nil)
	require.NoError(t, err, "the up change of round %d arrived", seq)
	_, err = r.DB("local").Get(ctx, "Account", db.Item{"id": fmt.Sprint("acc", seq)}, nil)
	require.NoError(t, err, "the down change of round %d arrived", seq)
}

// A reload restarts the changed pipelines only, removes and adds
// pipelines, and replication goes on after each.
func TestReloadAppliesTheDifference(t *testing.T) {
	plan := allInOne(t)
	r := start(t, plan)
	replicates(t, r, 1)
	before := unitsByName(r)

	next := clonePlan(plan)
	next.Pipelines[pipelineAt(next, "up")].AckTimeout = 700 * time.Millisecond
	got, err := r.Reload(reloadCtx(t), next)
	require.NoError(t, err)
	require.Equal(t, []string{"up"}, got.Restarted)
	require.Equal(t, []string{"apply", "down", "ingest"}, sortedCopy(got.Unchanged))
	require.Empty(t, got.Added)
	require.Empty(t, got.Removed)
	after := unitsByName(r)
	require.NotSame(t, before["up"], after["up"], "the changed pipeline is a new one")
	for _, name := range []string{"apply", "down", "ingest"} {
		require.Same(t, before[name], after[name], "%s runs on untouched", name)
	}
	require.Equal(t, 700*time.Millisecond, after["up"].sender.spec.AckTimeout)
	replicates(t, r, 2)

	// Remove the down direction, then add it back.
	noDown := clonePlan(next)
	noDown.Pipelines = slices.DeleteFunc(noDown.Pipelines, func(p PipelinePlan) bool { return p.Name == "down" || p.Name == "apply" })
	got, err = r.Reload(reloadCtx(t), noDown)
	require.NoError(t, err)
	require.Equal(t, []string{"apply", "down"}, got.Removed)
	require.Len(t, r.Status().Pipelines, 2)
	_, err = r.DB("cloud").Create(context.Background(), "Account", db.Item{"id": "while-removed", "name": "n"}, nil)
	require.NoError(t, err)

	got, err = r.Reload(reloadCtx(t), next)
	require.NoError(t, err)
	require.Equal(t, []string{"apply", "down"}, sortedCopy(got.Added))
	replicates(t, r, 3)
	_, err = r.DB("local").Get(context.Background(), "Account", db.Item{"id": "while-removed"}, nil)
	require.NoError(t, err, "what the cloud wrote while the down pipeline was removed waited in its outbox")

	// The same plan again changes nothing.
	got, err = r.Reload(reloadCtx(t), next)
	require.NoError(t, err)
	require.False(t, got.Changed())
	require.Len(t, got.Unchanged, 4)
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// What only a restart can change is refused, naming it, and nothing
// changes.
func TestReloadRefusesWhatNeedsARestart(t *testing.T) {
	plan := allInOne(t)
	r := start(t, plan)
	before := unitsByName(r)
	for name, change := range map[string]func(p *Plan){
		"storage/local changes": func(p *Plan) {
			sp := p.Storage["local"]
			cfg := *sp.Config.(*badger.Config)
			cfg.Path += "-moved"
			sp.Config = &cfg
			p.Storage["local"] = sp
		},
		"storage/extra is added": func(p *Plan) { p.Storage["extra"] = p.Storage["local"] },
		"site changes":           func(p *Plan) { p.Site = "dev2" },
		"max_clock_skew":         func(p *Plan) { p.MaxClockSkew = time.Hour },
	} {
		next := clonePlan(plan)
		change(&next)
		next.Pipelines[0].AckTimeout = time.Second // a live change beside it is not applied either
		_, err := r.Reload(reloadCtx(t), next)
		require.ErrorIs(t, err, ErrRestartNeeded, name)
		require.ErrorContains(t, err, name)
		require.Equal(t, before, unitsByName(r), "%s: nothing changed", name)
	}
	replicates(t, r, 1)
}

// failingStage fails to be created: a plugin that will not start.
type failingStage struct{ pipeline.Factory }

func (failingStage) Type() string { return "failing" }

func (failingStage) Create(context.Context, pipeline.Settings, pipeline.Config) (any, error) {
	return nil, errors.New("cannot start")
}

// A reload whose new pipeline cannot be built changes nothing: the old
// pipelines were not stopped.
func TestReloadWithAFailingPluginChangesNothing(t *testing.T) {
	plan := withStages(t, allInOne(t))
	r := start(t, plan)
	before := unitsByName(r)
	next := clonePlan(plan)
	i := pipelineAt(next, "up")
	next.Pipelines[i].Stages = append(slices.Clone(next.Pipelines[i].Stages), ComponentPlan{ID: pipeline.ID{Type: "failing"}, Factory: failingStage{}})
	_, err := r.Reload(reloadCtx(t), next)
	require.ErrorContains(t, err, "nothing changed")
	require.ErrorContains(t, err, "pipeline up: stage failing: cannot start")
	require.Equal(t, before, unitsByName(r))
	replicates(t, r, 1)
}

// A transport whose config changes is replaced, and the pipelines on it
// restart; its metrics are registered again without a conflict.
func TestReloadReplacesAChangedTransport(t *testing.T) {
	plan := allInOne(t)
	r := start(t, plan)
	replicates(t, r, 1)
	next := clonePlan(plan)
	tf := inproc.NewFactory()
	cfg := tf.NewDefaultConfig().(*inproc.Config)
	cfg.Buffer = 64
	next.Transports["bus"] = ComponentPlan{Factory: tf, Config: cfg}
	got, err := r.Reload(reloadCtx(t), next)
	require.NoError(t, err)
	require.Equal(t, []string{"bus"}, got.Transports)
	require.Len(t, got.Restarted, 4)
	replicates(t, r, 2)
}

// Fifty reloads while both sides write: every change written arrives
// with its last value, nothing is lost and nothing is applied with a
// different result.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("writes for the length of 50 reloads")
	}
	plan := withStages(t, allInOne(t))
	r := start(t, plan)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ups, downs atomic.Int64
	write := func(d *db.DB, model string, item func(i int) db.Item, n *atomic.Int64) {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Each key is written twice: the second value must win.
			for round := 1; round <= 2; round++ {
				it := item(i)
				it["name"] = fmt.Sprint("v", round)
				if _, err := d.Upsert(ctx, model, it, nil); err != nil {
					t.Errorf("write %s %d: %v", model, i, err)
					return
				}
			}
			n.Store(int64(i + 1))
			time.Sleep(time.Millisecond)
		}
	}
	wg.Add(2)
	go write(r.DB("local"), "User", func(i int) db.Item { return db.Item{"accountId": "a1", "email": fmt.Sprint("u", i, "@x")} }, &ups)
	go write(r.DB("cloud"), "Account", func(i int) db.Item { return db.Item{"id": fmt.Sprint("acc", i)} }, &downs)

	for n := range 50 {
		next := clonePlan(plan)
		for i := range next.Pipelines {
			next.Pipelines[i].AckTimeout = time.Duration(500+n%2*100) * time.Millisecond
		}
		if n%5 == 4 { // now and then a transport too
			tf := inproc.NewFactory()
			cfg := tf.NewDefaultConfig().(*inproc.Config)
			cfg.Buffer = 128 + n
			next.Transports["bus"] = ComponentPlan{Factory: tf, Config: cfg}
		}
		_, err := r.Reload(reloadCtx(t), next)
		require.NoError(t, err, "reload %d", n)
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	require.NoError(t, r.Sync(syncCtx(t)))
	require.Greater(t, ups.Load(), int64(50))
	require.Greater(t, downs.Load(), int64(50))
	for i := range int(ups.Load()) {
		got, err := r.DB("cloud").Get(ctx, "User", db.Item{"accountId": "a1", "email": fmt.Sprint("u", i, "@x")}, nil)
		require.NoError(t, err, "up change %d arrived", i)
		require.Equal(t, "v2", got["name"], "up change %d has its last value", i)
	}
	for i := range int(downs.Load()) {
		got, err := r.DB("local").Get(ctx, "Account", db.Item{"id": fmt.Sprint("acc", i)}, nil)
		require.NoError(t, err, "down change %d arrived", i)
		require.Equal(t, "v2", got["name"], "down change %d has its last value", i)
	}
	for _, name := range []string{"local", "cloud"} {
		st, err := r.stores[name].store.Outbox().Stats(ctx)
		require.NoError(t, err)
		require.Zero(t, st.Depth, "%s: every change acknowledged", name)
	}
	letters, _ := r.DeadLetters().Recent()
	require.Empty(t, letters, "nothing was refused")
}
