package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// StoreOpener opens a store in dir; called again with the same dir to
// reopen it.
type StoreOpener func(t *testing.T, dir string) pipeline.Store

// storeHandle is a store under test with its directory, so it can be
// reopened.
type storeHandle struct {
	pipeline.Store
	t    *testing.T
	dir  string
	open StoreOpener
	feat StoreFeatures
}

func newStore(t *testing.T, env storeEnv) *storeHandle {
	t.Helper()
	h := &storeHandle{t: t, dir: t.TempDir(), open: env.open, feat: env.feat}
	h.Store = h.openNow()
	return h
}

func (h *storeHandle) openNow() pipeline.Store {
	h.t.Helper()
	s := h.open(h.t, h.dir)
	if s == nil {
		h.t.Fatal("open returned a nil store")
	}
	h.t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			h.t.Errorf("close on cleanup: %v", err)
		}
	})
	return s
}

// reopen closes the store and opens it again on the same directory.
func (h *storeHandle) reopen() {
	h.t.Helper()
	if err := h.Close(h.t.Context()); err != nil {
		h.t.Fatalf("close before reopen: %v", err)
	}
	h.Store = h.openNow()
}

func rec(pk, sk string, idx ...pipeline.IndexEntry) *pipeline.Record {
	return &pipeline.Record{
		Key:     pipeline.Key{PK: pk, SK: sk},
		Model:   "Thing",
		Item:    fmt.Appendf(nil, `{"pk":%s,"sk":%s}`, jsonString(pk), jsonString(sk)),
		Indexes: idx,
		Version: pipeline.Version{Wall: 1732541234567, Counter: 3, Origin: "site-a"},
	}
}

// jsonString is s as a JSON string (Go's %q is not JSON for "\x00").
func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

func gs1(hash, sort string) pipeline.IndexEntry {
	return pipeline.IndexEntry{Index: "gs1", Hash: hash, Sort: sort}
}

func change(r *pipeline.Record, op pipeline.Op) *pipeline.Change {
	return &pipeline.Change{Model: r.Model, Op: op, Key: r.Key, Item: r.Item, Version: r.Version, Origin: "site-a"}
}

// put writes records, each in its own transaction.
func (h *storeHandle) put(recs ...*pipeline.Record) {
	h.t.Helper()
	for _, r := range recs {
		if err := h.Update(h.t.Context(), func(tx pipeline.Tx) error { return tx.Put(h.t.Context(), r) }); err != nil {
			h.t.Fatalf("put %s: %v", r.Key, err)
		}
	}
}

// putEmit writes r and emits its change in one transaction.
func (h *storeHandle) putEmit(r *pipeline.Record) *pipeline.Change {
	h.t.Helper()
	var ch *pipeline.Change
	err := h.Update(h.t.Context(), func(tx pipeline.Tx) error {
		ch = change(r, pipeline.OpUpsert)
		if err := tx.Put(h.t.Context(), r); err != nil {
			return err
		}
		return tx.Emit(h.t.Context(), ch)
	})
	if err != nil {
		h.t.Fatalf("put+emit %s: %v", r.Key, err)
	}
	return ch
}

func (h *storeHandle) get(k pipeline.Key) (*pipeline.Record, error) {
	var out *pipeline.Record
	err := h.View(h.t.Context(), func(tx pipeline.ReadTx) error {
		var err error
		out, err = tx.Get(h.t.Context(), k)
		return err
	})
	return out, err
}

// scan returns the positions a query walks, stopping after limit (0: all).
func (h *storeHandle) scan(q pipeline.Query, limit int) []pipeline.Position {
	h.t.Helper()
	var out []pipeline.Position
	err := h.View(h.t.Context(), func(tx pipeline.ReadTx) error {
		return tx.Scan(h.t.Context(), q, func(r *pipeline.Record, pos pipeline.Position) (bool, error) {
			if r == nil || r.Key != pos.Key {
				return false, fmt.Errorf("record %v at position %+v", r, pos)
			}
			out = append(out, pos)
			return limit == 0 || len(out) < limit, nil
		})
	})
	if err != nil {
		h.t.Fatalf("scan %+v: %v", q, err)
	}
	return out
}

// scanKeys is scan rendered as "pk/sk" strings.
func (h *storeHandle) scanKeys(q pipeline.Query) []string {
	h.t.Helper()
	return keyStrings(h.scan(q, 0))
}

func keyStrings(ps []pipeline.Position) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Key.PK+"/"+p.Key.SK)
	}
	return out
}

func (h *storeHandle) readAll() []pipeline.Change {
	h.t.Helper()
	chs, err := h.Outbox().Read(h.t.Context(), 0, 1<<20)
	if err != nil {
		h.t.Fatalf("outbox read: %v", err)
	}
	return chs
}

func (h *storeHandle) stats() pipeline.OutboxStats {
	h.t.Helper()
	st, err := h.Outbox().Stats(h.t.Context())
	if err != nil {
		h.t.Fatalf("outbox stats: %v", err)
	}
	return st
}

// sameRecord compares records, Expires to the store's precision.
func (h *storeHandle) sameRecord(got, want *pipeline.Record) {
	h.t.Helper()
	sameRecord(h.t, got, want, h.feat.ExpiresPrecision)
}

func sameRecord(t *testing.T, got, want *pipeline.Record, precision time.Duration) {
	t.Helper()
	wantExpires := want.Expires
	if p := precision.Milliseconds(); p > 1 {
		wantExpires -= wantExpires % p
	}
	if got.Key != want.Key || got.Model != want.Model || !bytes.Equal(got.Item, want.Item) ||
		got.Version != want.Version || got.Expires != wantExpires ||
		len(got.Indexes) != len(want.Indexes) || (len(want.Indexes) > 0 && !reflect.DeepEqual(got.Indexes, want.Indexes)) {
		t.Fatalf("record:\n got %+v (item %s)\nwant %+v (item %s)", got, got.Item, want, want.Item)
	}
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
