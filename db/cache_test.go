package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// openCache opens a device DB over a store in dir with the read cache
// sized cacheBytes (negative: none).
func openCache(t *testing.T, dir string, cacheBytes int64) (*db.DB, pipeline.Store) {
	testenv.NeedBadger(t)
	t.Helper()
	ctx := context.Background()
	sch, err := schema.Load("testdata/schema.json5")
	require.NoError(t, err)
	cfg := badger.NewDefaultConfig()
	cfg.Path = dir
	st, err := badger.Open(ctx, cfg, nil)
	require.NoError(t, err)
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "dev1", ReadCacheBytes: cacheBytes})
	require.NoError(t, err)
	return d, st
}

func ageOf(t *testing.T, it db.Item) int {
	n, err := strconv.Atoi(fmt.Sprint(it["age"]))
	require.NoError(t, err)
	return n
}

// TestCacheNoStaleReadUnderConcurrentWrites runs writers that update and
// remove their users in sequence beside readers that get and find them,
// with the cache on: a read that starts after a write
// returned must see that write or a later one.
func TestCacheNoStaleReadUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	d, st := openCache(t, t.TempDir(), 4<<20)
	t.Cleanup(func() { _ = st.Close(ctx) })
	const writers, users, rounds = 4, 8, 150
	// committed[w][u] is the last op index of writer w on user u that
	// returned; op i removes when i%5 == 4, else upserts age i.
	var committed [writers][users]atomic.Int64
	for w := range writers {
		for u := range users {
			committed[w][u].Store(-1)
		}
	}
	acct := func(w int) string { return "acct" + strconv.Itoa(w) }
	email := func(u int) string { return "u" + strconv.Itoa(u) + "@x" }
	// check judges a read of (w, u) that started when before was
	// committed and ended when after was: present with age n, or absent.
	check := func(w, u int, before, after int64, present bool, n int) {
		if present {
			require.GreaterOrEqual(t, int64(n), before, "stale read of writer %d user %d", w, u)
			require.LessOrEqual(t, int64(n), after+1)
			return
		}
		if before < 0 || before%5 == 4 {
			return // never written yet, or removed
		}
		for r := before + 1; r <= after+1; r++ {
			if r%5 == 4 {
				return // removed since, or being removed
			}
		}
		t.Errorf("writer %d user %d: missing after op %d (now %d)", w, u, before, after)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				for u := range users {
					props := db.Item{"accountId": acct(w), "email": email(u)}
					if i%5 == 4 {
						_, err := d.Remove(ctx, "User", props, nil)
						require.NoError(t, err)
					} else {
						props["age"] = i
						_, err := d.Upsert(ctx, "User", props, nil)
						require.NoError(t, err)
					}
					committed[w][u].Store(int64(i))
				}
			}
		}()
	}
	var readers sync.WaitGroup
	var reads atomic.Int64
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				w := (r + i) % writers
				if i%2 == 0 {
					u := i % users
					before := committed[w][u].Load()
					it, err := d.Get(ctx, "User", db.Item{"accountId": acct(w), "email": email(u)}, nil)
					after := committed[w][u].Load()
					if err != nil {
						require.ErrorIs(t, err, pipeline.ErrNotFound)
						check(w, u, before, after, false, 0)
					} else {
						check(w, u, before, after, true, ageOf(t, it))
					}
				} else {
					var before, after [users]int64
					for u := range users {
						before[u] = committed[w][u].Load()
					}
					res, err := d.Find(ctx, "User", db.Item{"accountId": acct(w)}, nil)
					require.NoError(t, err)
					for u := range users {
						after[u] = committed[w][u].Load()
					}
					seen := map[string]int{}
					for _, it := range res.Items {
						seen[it["email"].(string)] = ageOf(t, it)
					}
					for u := range users {
						n, ok := seen[email(u)]
						check(w, u, before[u], after[u], ok, n)
					}
				}
				reads.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	require.Greater(t, reads.Load(), int64(100))
}

// TestCacheSeesReplicatedChangesAndTombstones warms the cache, then
// applies replicated changes: an update, a remove (tombstone), a create.
func TestCacheSeesReplicatedChangesAndTombstones(t *testing.T) {
	ctx := context.Background()
	d, st := openCache(t, t.TempDir(), 4<<20)
	t.Cleanup(func() { _ = st.Close(ctx) })
	change := func(op pipeline.Op, wall int64, email, name string) pipeline.Change {
		key := pipeline.Key{PK: "account#a1", SK: "user#" + email}
		v := pipeline.Version{Wall: wall, Origin: "cloud"}
		c := pipeline.Change{Model: "User", Op: op, Key: key, Version: v, Origin: "cloud"}
		if op != pipeline.OpRemove {
			c.Item, _ = json.Marshal(map[string]any{"pk": key.PK, "sk": key.SK, "accountId": "a1", "email": email, "name": name, "updated": "2026-01-01T00:00:00.000Z"})
		}
		return c
	}
	names := func() map[string]string {
		res, err := d.Find(ctx, "User", db.Item{"accountId": "a1"}, nil)
		require.NoError(t, err)
		out := map[string]string{}
		for _, it := range res.Items {
			out[it["email"].(string)] = it["name"].(string)
		}
		return out
	}
	get := func(email string) (string, error) {
		it, err := d.Get(ctx, "User", db.Item{"accountId": "a1", "email": email}, nil)
		if err != nil {
			return "", err
		}
		return it["name"].(string), nil
	}
	now := time.Now().UnixMilli()
	_, err := d.ApplyRemote(ctx, []pipeline.Change{change(pipeline.OpUpsert, now, "a@x", "one"), change(pipeline.OpUpsert, now, "b@x", "bee")})
	require.NoError(t, err)
	for range 2 { // the second round reads from the cache
		require.Equal(t, map[string]string{"a@x": "one", "b@x": "bee"}, names())
		n, err := get("a@x")
		require.NoError(t, err)
		require.Equal(t, "one", n)
	}
	_, err = d.ApplyRemote(ctx, []pipeline.Change{change(pipeline.OpUpsert, now+1, "a@x", "two"), change(pipeline.OpRemove, now+1, "b@x", ""), change(pipeline.OpUpsert, now+1, "c@x", "sea")})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a@x": "two", "c@x": "sea"}, names())
	n, err := get("a@x")
	require.NoError(t, err)
	require.Equal(t, "two", n)
	_, err = get("b@x")
	require.ErrorIs(t, err, pipeline.ErrNotFound, "a tombstone is not returned")

	// and a local write after them
	_, err = d.Update(ctx, "User", db.Item{"accountId": "a1", "email": "c@x", "name": "see"}, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a@x": "two", "c@x": "see"}, names())
}

// TestCacheAfterRestart reads through a warm cache, restarts, and reads
// and writes again.
func TestCacheAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, st := openCache(t, dir, 4<<20)
	_, err := d.Create(ctx, "User", db.Item{"accountId": "a1", "email": "a@x", "name": "before"}, nil)
	require.NoError(t, err)
	_, err = d.Get(ctx, "User", db.Item{"accountId": "a1", "email": "a@x"}, nil)
	require.NoError(t, err)
	_, err = d.Find(ctx, "User", db.Item{"accountId": "a1"}, nil)
	require.NoError(t, err)
	_, err = d.Update(ctx, "User", db.Item{"accountId": "a1", "email": "a@x", "name": "after"}, nil)
	require.NoError(t, err)
	require.NoError(t, st.Close(ctx))

	d, st = openCache(t, dir, 4<<20)
	t.Cleanup(func() { _ = st.Close(ctx) })
	it, err := d.Get(ctx, "User", db.Item{"accountId": "a1", "email": "a@x"}, nil)
	require.NoError(t, err)
	require.Equal(t, "after", it["name"])
	res, err := d.Find(ctx, "User", db.Item{"accountId": "a1"}, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 1)
	require.Equal(t, "after", res.Items[0]["name"])
	_, err = d.Remove(ctx, "User", db.Item{"accountId": "a1", "email": "a@x"}, nil)
	require.NoError(t, err)
	_, err = d.Get(ctx, "User", db.Item{"accountId": "a1", "email": "a@x"}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
}

// TestCachedFindsMatchTheStore runs the same finds on a DB with the cache
// and one without, over the same data, twice (the second time from the
// cache): every page, count and next must be equal.
func TestCachedFindsMatchTheStore(t *testing.T) {
	ctx := context.Background()
	cached, st1 := openCache(t, t.TempDir(), 4<<20)
	plain, st2 := openCache(t, t.TempDir(), -1)
	t.Cleanup(func() { _ = st1.Close(ctx); _ = st2.Close(ctx) })
	for _, d := range []*db.DB{cached, plain} {
		for i := range 30 {
			_, err := d.Create(ctx, "User", db.Item{"accountId": "a1", "email": fmt.Sprintf("u%02d@x", i), "name": fmt.Sprintf("n%d", i%7), "age": i, "role": []string{"admin", "user"}[i%2]}, nil)
			require.NoError(t, err)
		}
		_, err := d.Create(ctx, "User", db.Item{"accountId": "a2", "email": "other@x", "name": "x"}, nil)
		require.NoError(t, err)
	}
	type find struct {
		props db.Item
		p     db.Params
	}
	finds := []find{
		{db.Item{"accountId": "a1"}, db.Params{}},
		{db.Item{"accountId": "a1"}, db.Params{Limit: 7}},
		{db.Item{"accountId": "a1"}, db.Params{Limit: 7, Reverse: true}},
		{db.Item{"accountId": "a1"}, db.Params{Count: true}},
		{db.Item{"accountId": "a1"}, db.Params{Count: true, Limit: 5}},
		{db.Item{"accountId": "a1"}, db.Params{Where: "${age} > {10} and ${role} = {admin}", Limit: 4}},
		{db.Item{"accountId": "a1"}, db.Params{Hidden: true, Limit: 3}},
		{db.Item{"accountId": "a1"}, db.Params{Fields: []string{"email", "age"}}},
		{db.Item{"accountId": "a1", "sk": map[string]any{"begins": "user#u1"}}, db.Params{}},
		{db.Item{"accountId": "a1", "sk": map[string]any{"between": []any{"user#u05", "user#u12@x"}}}, db.Params{Reverse: true}},
		{db.Item{"accountId": "a1", "sk": map[string]any{">": "user#u20@x"}}, db.Params{}},
		{db.Item{"accountId": "a1", "sk": map[string]any{"<=": "user#u03@x"}}, db.Params{}},
		{db.Item{"accountId": "a1", "email": "u04@x"}, db.Params{}},
		{db.Item{"accountId": "nobody"}, db.Params{}},
	}
	for round := range 2 {
		for i, f := range finds {
			var pages [2][]*db.Result
			for j, d := range []*db.DB{cached, plain} {
				p := f.p
				for {
					res, err := d.Find(ctx, "User", f.props, &p)
					require.NoError(t, err)
					for _, it := range res.Items {
						delete(it, db.VersionAttr) // the two stores' versions differ
						delete(it, "id")
						delete(it, "created")
						delete(it, "updated")
					}
					pages[j] = append(pages[j], res)
					if res.Next == "" || p.Count {
						break
					}
					p.Next = res.Next
				}
			}
			require.Equal(t, len(pages[1]), len(pages[0]), "round %d find %d: pages", round, i)
			for k := range pages[0] {
				require.Equal(t, pages[1][k].Items, pages[0][k].Items, "round %d find %d page %d", round, i, k)
				require.Equal(t, pages[1][k].Count, pages[0][k].Count, "round %d find %d page %d", round, i, k)
				require.Equal(t, pages[1][k].Next, pages[0][k].Next, "round %d find %d page %d", round, i, k)
			}
		}
	}
}

// TestSharedFinds checks Params.Shared: a shared find returns the same
// items as a copying one; a copy changed by its caller leaves later reads
// alone; a write after a shared find is seen by the next find and leaves
// the items the earlier find returned as they were.
func TestSharedFinds(t *testing.T) {
	ctx := context.Background()
	d, st := openCache(t, t.TempDir(), 4<<20)
	t.Cleanup(func() { _ = st.Close(ctx) })
	for i := range 5 {
		_, err := d.Create(ctx, "User", db.Item{"accountId": "a1", "email": fmt.Sprintf("u%d@x", i), "name": "n", "age": i}, nil)
		require.NoError(t, err)
	}
	find := func(shared bool) []db.Item {
		res, err := d.Find(ctx, "User", db.Item{"accountId": "a1"}, &db.Params{Shared: shared})
		require.NoError(t, err)
		require.Len(t, res.Items, 5)
		return res.Items
	}
	copies := find(false)
	shared := find(true)
	require.Equal(t, copies, shared)
	same := func(a, b db.Item) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	require.True(t, same(shared[0], find(true)[0]), "two shared finds returned different maps: not the cache's")
	require.False(t, same(copies[0], find(false)[0]), "two copying finds returned the same map")

	copies[0]["name"] = "changed by the caller"
	require.Equal(t, "n", find(true)[0]["name"], "a copy changed by its caller changed the cache")
	require.Equal(t, "n", find(false)[0]["name"])

	before := find(true)
	_, err := d.Update(ctx, "User", db.Item{"accountId": "a1", "email": "u0@x", "name": "renamed"}, nil)
	require.NoError(t, err)
	require.Equal(t, "renamed", find(true)[0]["name"], "a shared find after a write missed it")
	require.Equal(t, "n", before[0]["name"], "a write changed an item a shared find had returned")
}
