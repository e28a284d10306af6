package runner

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
)

// fillFleet adds n devices dev-00000... with last contact t0 plus i
// seconds in a shuffled order, i%7 refused changes and i%5 pending.
func fillFleet(t testing.TB, f *Fleet, n int, t0 time.Time) {
	t.Helper()
	for _, i := range rand.Perm(n) {
		site := fmt.Sprintf("dev-%05d", i)
		at := t0.Add(time.Duration(i) * time.Second)
		f.now = func() time.Time { return at }
		f.upBatch(site, 3, i%7, fmt.Sprintf("reason %d", i))
		f.inFlight(site, i%5)
	}
	f.now = func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
}

func sites(p FleetPage) []string {
	out := make([]string, len(p.Devices))
	for i, d := range p.Devices {
		out[i] = d.Site
	}
	return out
}

// walk follows the Next cursors from the first page and returns every
// site in order.
func walk(t *testing.T, f *Fleet, q FleetQuery) []string {
	t.Helper()
	var all []string
	for range 1000 {
		p, err := f.List(q)
		require.NoError(t, err)
		all = append(all, sites(p)...)
		if p.Next == "" {
			return all
		}
		q.After = p.Next
	}
	t.Fatal("the pages never end")
	return nil
}

func TestFleetIndexSortsPagesAndFilters(t *testing.T) {
	f := newFleet(nil, "cloud", nil)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 250
	fillFleet(t, f, n, t0)

	p, err := f.List(FleetQuery{Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, n, p.Total)
	assert.Equal(t, n, p.Known)
	assert.Equal(t, "site", p.Sort)
	require.Len(t, p.Devices, 100)
	assert.Equal(t, "dev-00000", p.Devices[0].Site)
	assert.NotEmpty(t, p.Next)
	d := p.Devices[9]
	assert.Equal(t, "dev-00009", d.Site)
	assert.EqualValues(t, 3, d.Changes)
	assert.EqualValues(t, 2, d.Refused)
	assert.Equal(t, "reason 9", d.LastRefusal)
	assert.Equal(t, 4, d.Pending)
	assert.Equal(t, t0.Add(9*time.Second), d.LastSeen)
	assert.Equal(t, d.LastSeen, d.LastRefusedAt)
	assert.Nil(t, d.Connected, "no broker: unknown, not false")

	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("dev-%05d", i))
	}
	assert.Equal(t, want, walk(t, f, FleetQuery{Limit: 100}), "site, by cursor: every device once, in order")
	assert.Equal(t, want, walk(t, f, FleetQuery{Limit: 7, Sort: "last_seen"}), "last_seen: the longest silent first")
	rev := slices.Clone(want)
	slices.Reverse(rev)
	assert.Equal(t, rev, walk(t, f, FleetQuery{Limit: 33, Sort: "-site"}))
	assert.Equal(t, rev, walk(t, f, FleetQuery{Limit: 1000, Sort: "-last_seen"}))

	refused := walk(t, f, FleetQuery{Limit: 10, Sort: "refused"})
	require.Len(t, refused, n)
	assert.Equal(t, "dev-00006", refused[0], "the most refused (6), the lowest site first among them")
	assert.True(t, slices.IsSortedFunc(refused, func(a, b string) int {
		ra, rb := refusedOf(a), refusedOf(b)
		if ra != rb {
			return rb - ra
		}
		return strings.Compare(a, b)
	}), "refused: most first, then by site")
	pending := walk(t, f, FleetQuery{Limit: 10, Sort: "pending"})
	assert.Equal(t, "dev-00004", pending[0])
	assert.Equal(t, "dev-00245", walk(t, f, FleetQuery{Limit: 10, Sort: "-pending"})[0], "reversed whole: the least pending, the last site first")

	// Pages: the third is the last 50; one far past the end is empty,
	// with the totals.
	p, err = f.List(FleetQuery{Limit: 100, Page: 3})
	require.NoError(t, err)
	assert.Equal(t, want[200:], sites(p))
	assert.Empty(t, p.Next)
	p, err = f.List(FleetQuery{Limit: 100, Page: 10_000})
	require.NoError(t, err)
	assert.Empty(t, p.Devices)
	assert.NotNil(t, p.Devices, "an empty list, not null")
	assert.Equal(t, n, p.Total)
	assert.Equal(t, 10_000, p.Page)
	p, err = f.List(FleetQuery{Limit: 1000, Page: math.MaxInt / 2})
	require.NoError(t, err)
	assert.Empty(t, p.Devices)

	// Filter: a substring of the site, any case.
	p, err = f.List(FleetQuery{Limit: 100, Filter: "DEV-0012"})
	require.NoError(t, err)
	assert.Equal(t, want[120:130], sites(p))
	assert.Equal(t, 10, p.Total)
	assert.Equal(t, n, p.Known)
	p, err = f.List(FleetQuery{Limit: 100, Filter: "nope"})
	require.NoError(t, err)
	assert.Zero(t, p.Total)
	assert.Empty(t, p.Devices)

	// Limit 0: the totals alone.
	p, err = f.List(FleetQuery{})
	require.NoError(t, err)
	assert.Empty(t, p.Devices)
	assert.Empty(t, p.Next)
	assert.Equal(t, n, p.Total)

	// Refusals.
	first, err := f.List(FleetQuery{Limit: 10, Sort: "refused"})
	require.NoError(t, err)
	for _, q := range []FleetQuery{
		{Limit: 10, Sort: "age"},
		{Limit: 10, Sort: "--site"},
		{Limit: 1001},
		{Limit: -1},
		{Limit: 10, Page: -1},
		{Limit: 10, Page: 2, After: first.Next},
		{Limit: 10, Sort: "site", After: first.Next},
		{Limit: 10, After: "not a cursor!"},
	} {
		_, err := f.List(q)
		assert.ErrorIs(t, err, pipeline.ErrInvalid, "%+v", q)
	}
}

func refusedOf(site string) int {
	var i int
	_, _ = fmt.Sscanf(site, "dev-%d", &i)
	return i % 7
}

// TestFleetRecords checks what each kind of message records, and the
// bounds: sites that are not one, a full index, pending never below 0.
func TestFleetRecords(t *testing.T) {
	f := newFleet(nil, "cloud", nil)
	f.max = 3
	f.syncRequest("dev-a", &pipeline.SyncRequest{Cursor: "0001764069700000.00000000.cloud"})
	f.acked("dev-b")
	f.syncRequest("dev-b", &pipeline.SyncRequest{Full: true})
	f.syncRequest("dev-c", nil)      // unreadable: contact only
	f.upBatch("dev-d", 1, 0, "")     // the index is full
	f.upBatch("bad/site", 1, 1, "x") // not a site
	f.inFlight("dev-a", 4)
	f.inFlight("dev-a", -4)
	f.inFlight("dev-a", -1)
	f.inFlight(pipeline.Broadcast, 9)
	f.upBatch("dev-a", 2, 1, strings.Repeat("r", 1000))

	p, err := f.List(FleetQuery{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"dev-a", "dev-b", "dev-c"}, sites(p))
	a, b, c := p.Devices[0], p.Devices[1], p.Devices[2]
	assert.Equal(t, "0001764069700000.00000000.cloud", a.Cursor)
	assert.Equal(t, time.UnixMilli(1764069700000).UTC(), a.CursorTime)
	assert.False(t, a.FullSync)
	assert.Zero(t, a.Pending)
	assert.EqualValues(t, 1, a.Refused)
	assert.LessOrEqual(t, len(a.LastRefusal), maxRefusalLen)
	assert.False(t, a.LastUp.IsZero())
	assert.True(t, b.FullSync)
	assert.False(t, b.LastAck.IsZero())
	assert.False(t, c.LastSync.IsZero())
	assert.True(t, c.LastUp.IsZero())
	assert.Equal(t, c.FirstSeen, c.LastSeen)
	assert.InDelta(t, 2, testutilValue(t, f.m.untracked), 0)
	assert.Empty(t, f.pending)
}

func testutilValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func openBadger(t *testing.T, dir string) pipeline.Store {
	t.Helper()
	testenv.NeedBadger(t)
	cfg := badger.NewDefaultConfig()
	cfg.Path = dir
	st, err := badger.Open(context.Background(), cfg, nil)
	require.NoError(t, err)
	return st
}

// TestFleetSavesAndRestores: the index written to a store is read back
// by a new process, and two workers saving the same devices add their
// counts up.
func TestFleetSavesAndRestores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openBadger(t, dir)
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)

	w1 := newFleet(st, "cloud-1", nil)
	require.NoError(t, w1.load(ctx))
	fillFleet(t, w1, 60, t0)
	w1.syncRequest("dev-00001", &pipeline.SyncRequest{Cursor: "0001764069700000.00000000.cloud"})
	require.NoError(t, w1.save(ctx, true))
	assert.Empty(t, w1.dirty)
	require.NoError(t, w1.save(ctx, true), "nothing to save")

	// A second worker on the same store hears dev-00001 too.
	w2 := newFleet(st, "cloud-2", nil)
	w2.upBatch("dev-00001", 5, 1, "refused by w2")
	require.NoError(t, w2.load(ctx))
	p, err := w2.List(FleetQuery{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, p.Devices, 60, "w2 sees what w1 saved")
	assert.True(t, p.Restored)
	d1 := p.Devices[1]
	assert.EqualValues(t, 3+5, d1.Changes, "w1's saved and w2's own")
	assert.EqualValues(t, 1+1, d1.Refused)
	assert.Equal(t, "refused by w2", d1.LastRefusal, "the later refusal")
	require.NoError(t, w2.save(ctx, true))
	w1.upBatch("dev-00001", 1, 0, "")
	require.NoError(t, w1.save(ctx, true))
	require.NoError(t, st.Close(ctx))

	// A restart: every device and its counts are back.
	st = openBadger(t, dir)
	defer func() { require.NoError(t, st.Close(ctx)) }()
	w3 := newFleet(st, "cloud-1", nil)
	p, err = w3.List(FleetQuery{Limit: 1000})
	require.NoError(t, err)
	assert.False(t, p.Restored, "not read back yet")
	assert.Zero(t, p.Total)
	require.NoError(t, w3.load(ctx))
	p, err = w3.List(FleetQuery{Limit: 1000})
	require.NoError(t, err)
	assert.True(t, p.Restored)
	require.Len(t, p.Devices, 60)
	d1 = p.Devices[1]
	assert.EqualValues(t, 3+5+1, d1.Changes, "each worker's count, once")
	assert.EqualValues(t, 2, d1.Refused)
	assert.Equal(t, "0001764069700000.00000000.cloud", d1.Cursor)
	assert.Equal(t, "refused by w2", d1.LastRefusal)
	d9 := p.Devices[9]
	assert.Equal(t, t0.Add(9*time.Second), d9.LastSeen)
	assert.EqualValues(t, 2, d9.Refused)
	assert.Equal(t, "reason 9", d9.LastRefusal)
	assert.Zero(t, d9.Pending, "pending is live, not saved")

	// The records are iotod's meta records.
	require.NoError(t, st.View(ctx, func(tx pipeline.ReadTx) error {
		rec, err := tx.Get(ctx, pipeline.Key{PK: "~meta", SK: "fleet#dev-00009"})
		require.NoError(t, err)
		assert.Equal(t, "~meta", rec.Model)
		assert.Contains(t, string(rec.Item), `"site":"dev-00009"`)
		return nil
	}))
}

// TestFleetSaveFailureKeepsCounts: a save that fails keeps the counts
// to save the next time.
func TestFleetSaveFailureKeepsCounts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openBadger(t, dir)
	f := newFleet(st, "cloud", nil)
	f.upBatch("dev-1", 4, 1, "no")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.Error(t, f.save(cctx, true))
	assert.Contains(t, f.dirty, "dev-1")
	require.NoError(t, f.save(ctx, true))
	require.NoError(t, st.Close(ctx))

	st = openBadger(t, dir)
	defer func() { require.NoError(t, st.Close(ctx)) }()
	g := newFleet(st, "cloud", nil)
	require.NoError(t, g.load(ctx))
	p, err := g.List(FleetQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, p.Devices, 1)
	assert.EqualValues(t, 4, p.Devices[0].Changes)
	assert.EqualValues(t, 1, p.Devices[0].Refused)
}

// TestFleetMetrics: the gauges sum the index with a bounded label set.
func TestFleetMetrics(t *testing.T) {
	f := newFleet(nil, "cloud", nil)
	f.connected = func() map[string]bool { return map[string]bool{"a": true, "b": true, "gone": false} }
	now := time.Now()
	for i, ago := range []time.Duration{time.Second, 20 * time.Minute, 2 * time.Hour, 48 * time.Hour} {
		at := now.Add(-ago)
		f.now = func() time.Time { return at }
		f.upBatch(fmt.Sprintf("dev-%d", i), 1, i, "r")
	}
	reg := prometheus.NewRegistry()
	require.NoError(t, f.register(reg))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	assert.Equal(t, map[string]float64{
		"iotod_fleet_devices":                    4,
		"iotod_fleet_devices_connected":          2,
		"iotod_fleet_devices_stale{age=15m}":     3,
		"iotod_fleet_devices_stale{age=1h}":      2,
		"iotod_fleet_devices_stale{age=1d}":      1,
		"iotod_fleet_last_seen_age_seconds":      4,
		"iotod_fleet_refused_total":              0 + 1 + 2 + 3,
		"iotod_fleet_untracked_messages_total":   0,
		"iotod_fleet_saves_total{result=ok}":     0,
		"iotod_fleet_saves_total{result=failed}": 0,
	}, got)
	buckets := map[float64]uint64{}
	for _, mf := range mfs {
		if mf.GetName() == "iotod_fleet_last_seen_age_seconds" {
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				buckets[b.GetUpperBound()] = b.GetCumulativeCount()
			}
		}
	}
	assert.Equal(t, map[float64]uint64{60: 1, 300: 1, 900: 1, 3600: 2, 21600: 3, 86400: 3, 604800: 4}, buckets, "cumulative")
}

// TestFleetInRunner: a cloud worker's runner records its device: the
// changes it sent, the one it refused with its reason, its catch-up's
// cursor and acks, and reads it all back after a restart.
func TestFleetInRunner(t *testing.T) {
	ctx := context.Background()
	dirs := []string{t.TempDir(), t.TempDir()}
	r := start(t, allInOne(t, dirs...))
	require.NotNil(t, r.Fleet())
	dev := r.DB("local")
	for i := 1; i <= 5; i++ {
		_, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": i, "temp": i}, nil)
		require.NoError(t, err)
	}
	_, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev2", "seq": 1, "temp": 1}, nil)
	require.NoError(t, err)
	_, err = r.DB("cloud").Create(ctx, "Command", db.Item{"deviceId": "dev1", "command": "reboot"}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))

	var d DeviceSummary
	require.Eventually(t, func() bool {
		p, err := r.Fleet().List(FleetQuery{Limit: 10})
		require.NoError(t, err)
		if len(p.Devices) != 1 {
			return false
		}
		d = p.Devices[0]
		return !d.LastAck.IsZero() && !d.LastSync.IsZero()
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "dev1", d.Site)
	assert.EqualValues(t, 6, d.Changes)
	assert.EqualValues(t, 1, d.Refused)
	assert.Contains(t, d.LastRefusal, `"dev2"`)
	assert.WithinDuration(t, time.Now(), d.LastSeen, 10*time.Second)
	assert.Nil(t, d.Connected, "no embedded broker")

	shut, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, r.Shutdown(shut))
	p, err := r.Fleet().List(FleetQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, p.Devices, 1)
	d = p.Devices[0] // as saved at the shutdown

	// Restarted on the same stores, without the device: the summary is
	// read back from the cloud store.
	plan := allInOne(t, dirs...)
	plan.Pipelines = slices.DeleteFunc(plan.Pipelines, func(p PipelinePlan) bool { return p.Name == "up" || p.Name == "apply" })
	r2 := start(t, plan)
	require.Eventually(t, func() bool {
		p, err := r2.Fleet().List(FleetQuery{Limit: 10})
		require.NoError(t, err)
		return p.Restored && len(p.Devices) == 1
	}, 10*time.Second, 20*time.Millisecond)
	p, err = r2.Fleet().List(FleetQuery{Limit: 10})
	require.NoError(t, err)
	got := p.Devices[0]
	assert.Equal(t, d.DeviceRecord, got.DeviceRecord, "every saved field survives")
}

// TestFleetSavesLazily: news that is only contact waits until the
// device's record is lazyEvery old; a new device, a refusal and another
// catch-up cursor go at the next save; a save of all (shutdown) takes
// everything.
func TestFleetSavesLazily(t *testing.T) {
	ctx := context.Background()
	st := openBadger(t, t.TempDir())
	defer func() { require.NoError(t, st.Close(ctx)) }()
	stored := func() DeviceRecord {
		t.Helper()
		g := newFleet(st, "reader", nil)
		require.NoError(t, g.load(ctx))
		p, err := g.List(FleetQuery{Limit: 10})
		require.NoError(t, err)
		if len(p.Devices) == 0 {
			return DeviceRecord{}
		}
		return p.Devices[0].DeviceRecord
	}
	f := newFleet(st, "cloud", nil)
	f.lazyEvery = time.Hour
	step := func(what string, want int64, record func()) {
		t.Helper()
		record()
		require.NoError(t, f.save(ctx, false))
		assert.Equal(t, want, stored().Changes, what)
	}
	step("a new device: at once", 1, func() { f.upBatch("dev-1", 1, 0, "") })
	step("contact only: later", 1, func() { f.upBatch("dev-1", 5, 0, "") })
	step("the same cursor: later", 1, func() { f.syncRequest("dev-1", &pipeline.SyncRequest{}) })
	step("a refusal: at once", 7, func() { f.upBatch("dev-1", 1, 1, "no") })
	step("another cursor: at once", 9, func() {
		f.upBatch("dev-1", 2, 0, "")
		f.syncRequest("dev-1", &pipeline.SyncRequest{Cursor: "0001764069700000.00000000.cloud"})
	})
	step("contact only: later", 9, func() { f.acked("dev-1") })
	f.lazyEvery = 0
	step("contact only, once the record is old enough", 9, func() {})
	assert.Equal(t, f.devices["dev-1"].rec.LastAck, stored().LastAck)
	f.lazyEvery = time.Hour
	f.upBatch("dev-1", 1, 0, "")
	require.NoError(t, f.save(ctx, true))
	assert.EqualValues(t, 10, stored().Changes, "everything at shutdown")
	assert.Empty(t, f.dirty)
}

// TestFleetConcurrentUse records from several goroutines while lists,
// saves, reloads and scrapes run (for go test -race).
func TestFleetConcurrentUse(t *testing.T) {
	ctx := context.Background()
	st := openBadger(t, t.TempDir())
	defer func() { require.NoError(t, st.Close(ctx)) }()
	f := newFleet(st, "cloud", nil)
	f.connected = func() map[string]bool { return map[string]bool{"dev-1": true} }
	reg := prometheus.NewRegistry()
	require.NoError(t, f.register(reg))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				site := fmt.Sprintf("dev-%d", (g*500+i)%50)
				f.upBatch(site, 1, i%3, "r")
				f.acked(site)
				f.syncRequest(site, &pipeline.SyncRequest{Cursor: fmt.Sprint(i % 4)})
				f.inFlight(site, 1)
				f.inFlight(site, -1)
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			_, err := f.List(FleetQuery{Limit: 10, Sort: fleetSorts[i%len(fleetSorts)]})
			assert.NoError(t, err)
			_, err = reg.Gather()
			assert.NoError(t, err)
			assert.NoError(t, f.save(ctx, i%2 == 0))
			assert.NoError(t, f.load(ctx))
		}
	})
	wg.Wait()
	require.NoError(t, f.save(ctx, true))
	g := newFleet(st, "reader", nil)
	require.NoError(t, g.load(ctx))
	var total int64
	p, err := g.List(FleetQuery{Limit: 100})
	require.NoError(t, err)
	require.Len(t, p.Devices, 50)
	for _, d := range p.Devices {
		total += d.Changes
	}
	assert.EqualValues(t, 4*500, total, "every change counted once")
}
