package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotod/iotod/pipeline"
)

const (
	triggerSite     = "plugintest"
	triggerPipeline = "plugintest-pipeline"
)

type triggerSuite struct {
	h       TriggerHarness
	timeout time.Duration
	prompt  time.Duration
}

// settings fills the zero fields of set.
func (s *triggerSuite) settings(t *testing.T, set pipeline.Settings) pipeline.Settings {
	t.Helper()
	f := s.h.Factory
	if set.ID == (pipeline.ID{}) {
		set.ID = pipeline.ID{Type: f.Type(), Name: "plugintest"}
	}
	if set.Kind == "" {
		set.Kind = f.Kind()
	}
	if set.Site == "" {
		set.Site = triggerSite
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Metrics == nil {
		set.Metrics = prometheus.NewRegistry()
	}
	if set.Dir == "" {
		set.Dir = t.TempDir()
	}
	return set
}

// create makes a trigger of target's config, failing t if it cannot.
func (s *triggerSuite) create(t *testing.T, target TriggerTarget) pipeline.Trigger {
	t.Helper()
	f := s.h.Factory
	if target.Config == nil {
		t.Fatal("the harness gave a target without a config")
	}
	if err := target.Config.Validate(); err != nil {
		t.Fatalf("the harness's config does not validate: %v", err)
	}
	c, err := f.Create(t.Context(), s.settings(t, target.Settings), target.Config)
	if err != nil {
		t.Fatalf("create %s/%s: %v", f.Kind(), f.Type(), err)
	}
	tr, ok := c.(pipeline.Trigger)
	if !ok {
		t.Fatalf("create %s/%s returned %T, which is not a pipeline.Trigger", f.Kind(), f.Type(), c)
	}
	return tr
}

// fire calls Fire with batch and ctx (default: one ending after the
// suite's timeout) on a goroutine, and returns how long it took and its
// error. It fails t if Fire has not returned 5s past limit.
func (s *triggerSuite) fire(t *testing.T, tr pipeline.Trigger, limit time.Duration, batch []pipeline.Change, ctx ...context.Context) (time.Duration, error) {
	t.Helper()
	c := context.Context(nil)
	if len(ctx) > 0 {
		c = ctx[0]
	} else {
		var cancel context.CancelFunc
		c, cancel = context.WithTimeout(t.Context(), s.timeout)
		defer cancel()
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- tr.Fire(c, triggerPipeline, batch) }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(limit + 5*time.Second):
		t.Fatalf("Fire of %d changes has not returned after %s (context: %v)", len(batch), limit+5*time.Second, c.Err())
		return 0, nil
	}
}

// mustFire fires a copy of batch at the working target, failing t on an
// error or if Fire changed the copy.
func (s *triggerSuite) mustFire(t *testing.T, tr pipeline.Trigger, batch []pipeline.Change) {
	t.Helper()
	given := cloneBatch(batch)
	if _, err := s.fire(t, tr, s.timeout, given); err != nil {
		t.Fatalf("Fire of %d changes to a working target: %v", len(batch), err)
	}
	if !reflect.DeepEqual(given, batch) {
		t.Error("Fire changed the batch it was given")
	}
}

// cloneBatch is a deep copy of batch.
func cloneBatch(batch []pipeline.Change) []pipeline.Change {
	out := make([]pipeline.Change, len(batch))
	for i, c := range batch {
		c.Item = slices.Clone(c.Item)
		out[i] = c
	}
	return out
}

// await waits until target has received at least n changes, and returns
// its deliveries.
func (s *triggerSuite) await(t *testing.T, target TriggerTarget, n int) [][]pipeline.Change {
	t.Helper()
	if target.Received == nil {
		t.Fatal("the harness's working target has no Received")
	}
	deadline := time.Now().Add(s.timeout)
	for {
		got := target.Received()
		count := 0
		for _, d := range got {
			count += len(d)
		}
		if count >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target received %d of %d changes within %s after Fire returned nil", count, n, s.timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkBatches checks that the deliveries got hold exactly the changes of
// batches, none empty, each batch's changes in its order (CountsOnly:
// the same counts per model and op). Batches have keys of their own.
func (s *triggerSuite) checkBatches(t *testing.T, batches [][]pipeline.Change, got [][]pipeline.Change) {
	t.Helper()
	var flat []pipeline.Change
	for i, d := range got {
		if len(d) == 0 {
			t.Errorf("delivery %d of %d holds no change: a trigger must not deliver an empty batch", i+1, len(got))
		}
		flat = append(flat, d...)
	}
	if s.h.CountsOnly {
		want, have := map[string]int{}, map[string]int{}
		for _, b := range batches {
			for _, c := range b {
				want[c.Model+"."+string(c.Op)]++
			}
		}
		for _, c := range flat {
			have[c.Model+"."+string(c.Op)]++
		}
		if !reflect.DeepEqual(want, have) {
			t.Errorf("the target got counts %v, want %v", have, want)
		}
		return
	}
	owner := map[pipeline.Key]int{}
	for i, b := range batches {
		for _, c := range b {
			owner[c.Key] = i
		}
	}
	parts := make([][]pipeline.Change, len(batches))
	for _, c := range flat {
		i, ok := owner[c.Key]
		if !ok {
			t.Errorf("the target got a change that was not fired: %s", describeChange(c))
			continue
		}
		parts[i] = append(parts[i], c)
	}
	for i, b := range batches {
		p := parts[i]
		if len(p) != len(b) {
			t.Errorf("batch %d: the target got %d of its changes, want %d", i, len(p), len(b))
		}
		bad := 0
		for j := range min(len(p), len(b)) {
			if diff := changeDiff(b[j], p[j]); diff != "" && bad < 3 {
				bad++
				t.Errorf("batch %d, change %d: got %s, want %s: %s", i, j, describeChange(p[j]), describeChange(b[j]), diff)
			}
		}
	}
}

// changeDiff names the delivered fields in which got differs from want.
func changeDiff(want, got pipeline.Change) string {
	var d []string
	if got.Model != want.Model || got.Op != want.Op || got.Key != want.Key {
		d = append(d, "model, op or key")
	}
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("version %+v, want %+v", got.Version, want.Version))
	}
	if got.Origin != want.Origin {
		d = append(d, fmt.Sprintf("origin %q, want %q", got.Origin, want.Origin))
	}
	if got.Time != want.Time {
		d = append(d, fmt.Sprintf("time %d, want %d", got.Time, want.Time))
	}
	if !sameJSON(got.Item, want.Item) {
		d = append(d, fmt.Sprintf("item %s, want %s", got.Item, want.Item))
	}
	return strings.Join(d, "; ")
}

// sameJSON compares two items as JSON values; absent and null are equal.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if len(a) > 0 && json.Unmarshal(a, &va) != nil {
		return false
	}
	if len(b) > 0 && json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func describeChange(c pipeline.Change) string {
	return fmt.Sprintf("%s %s %s", c.Op, c.Model, c.Key)
}

// checkNamed fails t unless err's text holds the trigger's type.
func (s *triggerSuite) checkNamed(t *testing.T, err error) {
	t.Helper()
	if err != nil && !strings.Contains(err.Error(), s.h.Factory.Type()) {
		t.Errorf("error %q does not name the trigger (its type %q)", err, s.h.Factory.Type())
	}
}

// triggerBatch is a batch of n changes whose keys hold tag: every op, an
// item with escapes and non-ASCII text, a remove without item, keys with
// '#', '/' and '+', origins this site and others.
func triggerBatch(tag string, n int) []pipeline.Change {
	out := make([]pipeline.Change, n)
	for i := range n {
		id := tag + "-" + strconv.Itoa(i)
		c := pipeline.Change{Seq: uint64(i + 1), Origin: triggerSite}
		var item map[string]any
		switch i % 5 {
		case 0:
			c.Model, c.Op, c.Key = "Reading", pipeline.OpCreate, pipeline.Key{PK: "reading#dev/" + id, SK: "reading#" + strconv.Itoa(i)}
			item = map[string]any{"deviceId": "dev/" + id, "seq": i, "temp": 21.5}
		case 1:
			c.Model, c.Op, c.Key = "Reading", pipeline.OpUpdate, pipeline.Key{PK: "reading#dev/" + id, SK: "reading#" + strconv.Itoa(i)}
			item = map[string]any{"deviceId": "dev/" + id, "seq": i, "temp": -3}
			c.Origin = "device-7"
		case 2:
			c.Model, c.Op, c.Key = "Command", pipeline.OpUpsert, pipeline.Key{PK: "command#" + id, SK: "command#"}
			item = map[string]any{"id": id, "cmd": "reboot", "note": "ünïcødé \"quoted\"\n<&>"}
			c.Origin = "cloud"
		case 3:
			c.Model, c.Op, c.Key = "Store", pipeline.OpRemove, pipeline.Key{PK: "store#" + id + "+k", SK: "store#"}
			c.Origin = "device-7"
		case 4:
			c.Model, c.Op, c.Key = "Note", pipeline.OpCreate, pipeline.Key{PK: "note#" + id, SK: "note#"}
			item = map[string]any{"id": id, "text": strings.Repeat("n", 100)}
		}
		if item != nil {
			c.Item, _ = json.Marshal(item)
		}
		c.Time = 1_700_000_000_000 + int64(i)
		c.Version = pipeline.Version{Wall: c.Time, Counter: uint32(i % 3), Origin: c.Origin}
		out[i] = c
	}
	return out
}
