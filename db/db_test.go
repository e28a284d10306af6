package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

type env struct {
	db    *db.DB
	store pipeline.Store
	dir   string
}

// open opens the test schema's device DB in dir, on the store
// testenv.StoreType chooses (IOTOD_TEST_STORE: badger or sqlite).
func open(t *testing.T, dir string) *env {
	t.Helper()
	ctx := context.Background()
	sch, err := schema.Load("testdata/schema.json5")
	require.NoError(t, err)
	st := testenv.OpenStore(t, dir)
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "dev1"})
	require.NoError(t, err)
	return &env{db: d, store: st, dir: dir}
}

func newEnv(t *testing.T) *env { return open(t, t.TempDir()) }

func (e *env) outboxDepth(t *testing.T) int64 {
	st, err := e.store.Outbox().Stats(context.Background())
	require.NoError(t, err)
	return st.Depth
}

func TestCreateGetUpdateRemove(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	acct, err := e.db.Create(ctx, "Account", db.Item{"name": "Acme", "email": "ops@acme.io"}, nil)
	require.NoError(t, err)
	id, _ := acct["id"].(string)
	require.Len(t, id, 26, "ulid generated")
	require.Equal(t, "active", acct["status"], "default applied")
	require.NotContains(t, acct, "pk", "templated keys are hidden")
	require.Contains(t, acct, "created")
	require.Contains(t, acct, "updated")

	got, err := e.db.Get(ctx, "Account", db.Item{"id": id}, nil)
	require.NoError(t, err)
	require.Equal(t, acct, got)

	withHidden, err := e.db.Get(ctx, "Account", db.Item{"id": id}, &db.Params{Hidden: true})
	require.NoError(t, err)
	require.Equal(t, "account#"+id, withHidden["pk"])
	require.Equal(t, "Account", withHidden["_type"])
	_, err = pipeline.ParseVersion(withHidden[db.VersionAttr].(string))
	require.NoError(t, err)

	_, err = e.db.Create(ctx, "Account", db.Item{"id": id, "name": "Again"}, nil)
	require.ErrorIs(t, err, pipeline.ErrExists)

	up, err := e.db.Update(ctx, "Account", db.Item{"id": id, "status": "inactive"}, nil)
	require.NoError(t, err)
	require.Equal(t, "inactive", up["status"])
	require.Equal(t, "Acme", up["name"], "update merges")

	_, err = e.db.Update(ctx, "Account", db.Item{"id": "nope", "status": "inactive"}, nil)
	require.ErrorIs(t, err, pipeline.ErrConditionFailed)

	ups, err := e.db.Upsert(ctx, "Account", db.Item{"id": "fixed", "name": "Upserted"}, nil)
	require.NoError(t, err)
	require.Equal(t, "active", ups["status"])

	n, err := e.db.Remove(ctx, "Account", db.Item{"id": id}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = e.db.Get(ctx, "Account", db.Item{"id": id}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	n, err = e.db.Remove(ctx, "Account", db.Item{"id": id}, nil)
	require.NoError(t, err)
	require.Equal(t, 0, n)
}

func seedReadings(t *testing.T, e *env, dev string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		_, err := e.db.Create(context.Background(), "Reading", db.Item{"deviceId": dev, "seq": i, "temp": 10 + i, "on": i%2 == 0}, nil)
		require.NoError(t, err)
	}
}

func seqs(items []db.Item) []int {
	out := make([]int, len(items))
	for i, it := range items {
		n, _ := it["seq"].(json.Number).Int64()
		out[i] = int(n)
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	seedReadings(t, e, "d1", 25)
	seedReadings(t, e, "d2", 3)

	cases := []struct {
		name   string
		props  db.Item
		params db.Params
		want   []int
	}{
		{"partial sort key is begins-with", db.Item{"deviceId": "d1"}, db.Params{}, span(1, 25)},
		{"full key is equality", db.Item{"deviceId": "d1", "seq": 7}, db.Params{}, []int{7}},
		{"between", db.Item{"deviceId": "d1", "sk": db.Item{"between": []any{"reading#00000003", "reading#00000005"}}}, db.Params{}, span(3, 5)},
		{"<", db.Item{"deviceId": "d1", "sk": db.Item{"<": "reading#00000003"}}, db.Params{}, span(1, 2)},
		{"<=", db.Item{"deviceId": "d1", "sk": db.Item{"<=": "reading#00000003"}}, db.Params{}, span(1, 3)},
		{">", db.Item{"deviceId": "d1", "sk": db.Item{">": "reading#00000023"}}, db.Params{}, span(24, 25)},
		{">=", db.Item{"deviceId": "d1", "sk": db.Item{">=": "reading#00000023"}}, db.Params{}, span(23, 25)},
		{"=", db.Item{"deviceId": "d1", "sk": db.Item{"=": "reading#00000023"}}, db.Params{}, []int{23}},
		{"begins", db.Item{"deviceId": "d1", "sk": db.Item{"begins": "reading#0000001"}}, db.Params{}, span(10, 19)},
		{"reverse with limit", db.Item{"deviceId": "d1"}, db.Params{Reverse: true, Limit: 3}, []int{25, 24, 23}},
		{"where", db.Item{"deviceId": "d1"}, db.Params{Where: "${temp} > {30} and ${on} = {true}"}, []int{22, 24}},
		{"where with substitution", db.Item{"deviceId": "d1"}, db.Params{Where: "${temp} <= @{max}", Substitutions: map[string]any{"max": 12}}, span(1, 2)},
		{"limit counts returned items", db.Item{"deviceId": "d1"}, db.Params{Where: "${on} = {true}", Limit: 2}, []int{2, 4}},
		{"other device", db.Item{"deviceId": "d2"}, db.Params{}, span(1, 3)},
		{"hash prefix scan", db.Item{}, db.Params{Where: "${seq} = {2}"}, []int{2, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.params
			res, err := e.db.Find(ctx, "Reading", tc.props, &p)
			require.NoError(t, err)
			require.Equal(t, tc.want, seqs(res.Items))
		})
	}

	t.Run("pagination walks every item once", func(t *testing.T) {
		var all []int
		p := &db.Params{Limit: 4}
		pages := 0
		for {
			res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, p)
			require.NoError(t, err)
			all = append(all, seqs(res.Items)...)
			pages++
			if res.Next == "" {
				break
			}
			p = &db.Params{Limit: 4, Next: res.Next}
		}
		require.Equal(t, span(1, 25), all)
		require.Equal(t, 7, pages, "25 items in pages of 4, no empty last page")
	})
	t.Run("count", func(t *testing.T) {
		res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Count: true, Where: "${on} = {false}"})
		require.NoError(t, err)
		require.Equal(t, 13, res.Count)
		require.Empty(t, res.Items)
	})
	t.Run("fields projection", func(t *testing.T) {
		res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1}, &db.Params{Fields: []string{"seq", "temp"}})
		require.NoError(t, err)
		require.Equal(t, []db.Item{{"seq": json.Number("1"), "temp": json.Number("11")}}, res.Items)
	})
	t.Run("bad next token", func(t *testing.T) {
		_, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Next: "%%%"})
		require.ErrorIs(t, err, pipeline.ErrInvalid)
	})
	t.Run("where on an attribute the model does not have", func(t *testing.T) {
		for _, p := range []*db.Params{{Where: "${tmp} > {30}"}, {Where: "${on} = {true} and ${address.city} = {x}"}, {Where: "${on} = {true}", Count: true}} {
			_, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, p)
			if p.Count {
				require.NoError(t, err, "every attribute is the model's")
				continue
			}
			require.ErrorIs(t, err, pipeline.ErrInvalid, p.Where)
			require.Regexp(t, `Reading\.(tmp|address): unknown attribute in where \(the model declares pk, sk, deviceId, seq, .*temp`, err.Error())
		}
		_, err := e.db.Remove(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Many: true, Where: "${tmp} > {30}"})
		require.ErrorContains(t, err, "Reading.tmp: unknown attribute in where", "nothing removed")
		res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Where: "${_version} <> {x}"})
		require.NoError(t, err, "the hidden version attribute")
		require.Len(t, res.Items, 25)
	})
}

func TestSecondaryIndexFollowsTemplateInputs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.db.Create(ctx, "User", db.Item{"accountId": "a1", "email": "ann@x.io", "name": "ann", "age": 30}, nil)
	require.NoError(t, err)
	_, err = e.db.Create(ctx, "User", db.Item{"accountId": "a1", "email": "bob@x.io", "name": "bob"}, nil)
	require.NoError(t, err)

	byName := func(name string) []db.Item {
		res, err := e.db.Find(ctx, "User", db.Item{"name": name}, &db.Params{Index: "gs1"})
		require.NoError(t, err)
		return res.Items
	}
	require.Len(t, byName("ann"), 1)
	_, err = e.db.Update(ctx, "User", db.Item{"accountId": "a1", "email": "ann@x.io", "name": "anna"}, nil)
	require.NoError(t, err)
	require.Empty(t, byName("ann"), "old index entry removed")
	got := byName("anna")
	require.Len(t, got, 1)
	require.Equal(t, json.Number("30"), got[0]["age"])

	res, err := e.db.Find(ctx, "User", db.Item{"accountId": "a1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 2)
	_, err = e.db.Find(ctx, "User", db.Item{"accountId": "a1"}, &db.Params{Index: "nope"})
	require.ErrorIs(t, err, pipeline.ErrInvalid)
}

func TestNestedObjectsPartialOrReplace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.db.Create(ctx, "User", db.Item{"accountId": "a1", "email": "c@x.io", "prefs": db.Item{"theme": "dark", "lang": "en"}}, nil)
	require.NoError(t, err)
	u, err := e.db.Update(ctx, "User", db.Item{"accountId": "a1", "email": "c@x.io", "prefs": db.Item{"lang": "fr"}}, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"theme": "dark", "lang": "fr"}, u["prefs"], "partial: true merges")

	a, err := e.db.Create(ctx, "Account", db.Item{"name": "A", "address": db.Item{"street": "1 Main", "city": "Oslo"}}, nil)
	require.NoError(t, err)
	a, err = e.db.Update(ctx, "Account", db.Item{"id": a["id"], "address": db.Item{"city": "Bergen"}}, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"city": "Bergen"}, a["address"], "default (partial false) replaces")
	a, err = e.db.Update(ctx, "Account", db.Item{"id": a["id"], "address": db.Item{"zip": "5003"}}, &db.Params{Partial: ptr(true)})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"city": "Bergen", "zip": "5003"}, a["address"], "params.partial overrides")
}

func ptr[T any](v T) *T { return &v }

func TestRemoveMany(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	seedReadings(t, e, "d1", 5)
	seedReadings(t, e, "d2", 2)
	_, err := e.db.Remove(ctx, "Reading", db.Item{"deviceId": "d1"}, nil)
	require.ErrorIs(t, err, pipeline.ErrInvalid, "a partial key needs many")
	n, err := e.db.Remove(ctx, "Reading", db.Item{"deviceId": "d1"}, &db.Params{Many: true})
	require.NoError(t, err)
	require.Equal(t, 5, n)
	res, err := e.db.Find(ctx, "Reading", db.Item{}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 2)
}

func TestTransactIsAllOrNothingAndBatchIsPerOp(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ops := []db.WriteOp{
		{Op: pipeline.OpCreate, Model: "Reading", Item: db.Item{"deviceId": "d1", "seq": 1}},
		{Op: pipeline.OpCreate, Model: "Reading", Item: db.Item{"deviceId": "d1", "seq": 1}}, // exists
		{Op: pipeline.OpCreate, Model: "Reading", Item: db.Item{"deviceId": "d1", "seq": 2}},
	}
	_, err := e.db.Transact(ctx, ops)
	require.ErrorIs(t, err, pipeline.ErrExists)
	require.ErrorContains(t, err, "ops[1]")
	res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, nil)
	require.NoError(t, err)
	require.Empty(t, res.Items)
	require.Zero(t, e.outboxDepth(t))

	results, err := e.db.Batch(ctx, ops)
	require.NoError(t, err)
	require.Empty(t, results[0].Error)
	require.ErrorIs(t, results[1].Err, pipeline.ErrExists)
	require.Empty(t, results[2].Error)
	res, err = e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, nil)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, seqs(res.Items))
	require.EqualValues(t, 2, e.outboxDepth(t))

	items, err := e.db.Transact(ctx, []db.WriteOp{
		{Op: pipeline.OpUpdate, Model: "Reading", Item: db.Item{"deviceId": "d1", "seq": 1, "temp": 5}},
		{Op: pipeline.OpRemove, Model: "Reading", Item: db.Item{"deviceId": "d1", "seq": 2}},
	})
	require.NoError(t, err)
	require.Equal(t, json.Number("5"), items[0]["temp"])
	res, err = e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, nil)
	require.NoError(t, err)
	require.Equal(t, []int{1}, seqs(res.Items))
}

func TestContextIsBlendedAndWins(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.db.SetContext(db.Item{"deviceId": "me", "unrelated": 1})
	r, err := e.db.Create(ctx, "Reading", db.Item{"seq": 1, "deviceId": "someone-else"}, nil)
	require.NoError(t, err)
	require.Equal(t, "me", r["deviceId"])
	_, err = e.db.Get(ctx, "Reading", db.Item{"seq": 1}, nil)
	require.NoError(t, err, "context fills key inputs on reads too")
	_, err = e.db.Create(ctx, "Account", db.Item{"name": "no deviceId field"}, nil)
	require.NoError(t, err, "only declared attributes are blended")
}

func TestTTLHidesExpiredItems(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	_, err := e.db.Create(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1, "expires": past}, nil)
	require.NoError(t, err)
	_, err = e.db.Create(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 2, "expires": future}, nil)
	require.NoError(t, err)
	_, err = e.db.Get(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 1}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	res, err := e.db.Find(ctx, "Reading", db.Item{"deviceId": "d1"}, nil)
	require.NoError(t, err)
	require.Equal(t, []int{2}, seqs(res.Items))
}

func TestOutboxAndCallbacks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var events []db.Event
	cancel := e.db.OnChange("Reading", func(_ context.Context, ev db.Event) { events = append(events, ev) })
	seedReadings(t, e, "d1", 3)
	_, err := e.db.Update(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 2, "temp": 99}, nil)
	require.NoError(t, err)
	_, err = e.db.Remove(ctx, "Reading", db.Item{"deviceId": "d1", "seq": 3}, nil)
	require.NoError(t, err)
	_, err = e.db.Create(ctx, "Account", db.Item{"name": "down-only model"}, nil)
	require.NoError(t, err)
	cancel()
	seedReadings(t, e, "d9", 1)

	require.Len(t, events, 5, "3 creates, 1 update, 1 remove; none after cancel")
	require.Equal(t, pipeline.OpUpdate, events[3].Op)
	require.Equal(t, json.Number("12"), events[3].Old["temp"])
	require.Equal(t, json.Number("99"), events[3].New["temp"])
	require.Equal(t, pipeline.OpRemove, events[4].Op)
	require.False(t, events[4].Remote)

	changes, err := e.store.Outbox().Read(ctx, 0, 100)
	require.NoError(t, err)
	var ops []string
	for _, c := range changes {
		ops = append(ops, fmt.Sprintf("%s:%s:%s", c.Model, c.Op, c.Key.SK))
		require.Equal(t, "dev1", c.Origin)
	}
	require.Equal(t, []string{
		"Reading:create:reading#00000001", "Reading:create:reading#00000002", "Reading:create:reading#00000003",
		"Reading:update:reading#00000002", "Reading:remove:reading#00000003", "Reading:create:reading#00000001",
	}, ops, "Account (sync: down) writes stay out of the outbox")
	for i := 1; i < len(changes); i++ {
		require.Less(t, changes[i-1].Seq, changes[i].Seq)
		require.Equal(t, -1, changes[i-1].Version.Compare(changes[i].Version))
	}
}

func TestCloudOnlyModelIsAbsentOnDevice(t *testing.T) {
	e := newEnv(t)
	_, err := e.db.Create(context.Background(), "Secret", db.Item{"value": "x"}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	require.ErrorContains(t, err, `unknown model "Secret"`)
}

func TestClosedDB(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.db.Close(context.Background()))
	_, err := e.db.Create(context.Background(), "Account", db.Item{"name": "x"}, nil)
	require.True(t, errors.Is(err, pipeline.ErrClosed))
}
