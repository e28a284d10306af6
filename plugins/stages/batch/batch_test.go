package batch

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.TestBatcher(t, NewFactory(), func(l plugintest.BatcherLimits) pipeline.Config {
		return &Config{Delay: l.Delay, Limit: l.Limit, Count: l.Count}
	})
}

func TestChangeSizeIsAnUpperBound(t *testing.T) {
	items := []string{`{}`, `{"a":"<b>&</b>"}`, `{"text":"line\nbreak \"quoted\" \\ back"}`, `{"n":[1,2,3]}`}
	strs := []string{"", "plain", "<&>", "quote\"back\\slash\n\t\x01", "ünïcödé \u2028", "\xff\xfe"}
	for _, item := range items {
		for _, s := range strs {
			c := pipeline.Change{
				Seq: math.MaxUint64, Model: s, Op: pipeline.OpUpsert, Key: pipeline.Key{PK: s, SK: s},
				Item:    json.RawMessage(item),
				Version: pipeline.Version{Wall: math.MinInt64, Counter: math.MaxUint32, Origin: s},
				Origin:  s, Time: math.MinInt64,
			}
			data, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := changeSize(&c); got < len(data)+1 { // +1: the comma between changes
				t.Errorf("changeSize = %d, JSON is %d bytes: %s", got, len(data), data)
			}
			b := pipeline.Batch{V: pipeline.ProtocolVersion, ID: strings.Repeat("0", 26), Site: s}
			data, _ = json.Marshal(b)
			if got := envelopeSize(s); got < len(data) {
				t.Errorf("envelopeSize(%q) = %d, JSON is %d bytes: %s", s, got, len(data), data)
			}
		}
	}
}

func TestDueFollowsTheClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	b := New(Config{Delay: 50 * time.Millisecond, Limit: 64 * pipeline.Kilobyte, Count: 10}, "dev")
	b.now = func() time.Time { return now }
	c := pipeline.Change{Seq: 1, Model: "M", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "a"}}
	if _, err := b.Add(t.Context(), &pipeline.Batch{Changes: []pipeline.Change{c}}); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Second)
	c.Seq, c.Key.PK = 2, "b"
	if _, err := b.Add(t.Context(), &pipeline.Batch{Changes: []pipeline.Change{c}}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.Due(), t0.Add(50*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Due() = %v, want %v", got, want)
	}
	out, err := b.Cut(t.Context())
	if err != nil || len(out) != 1 || out[0].Site != "dev" || len(out[0].Changes) != 2 {
		t.Fatalf("Cut() = %+v, %v; want one batch of 2 from site dev", out, err)
	}
}
