package log

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// lockedBuffer is a log output read while triggers write to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The log trigger's target is its logger: a line per batch, with counts
// per model and op. It has no target that hangs or refuses.
func TestConformance(t *testing.T) {
	plugintest.TestTrigger(t, plugintest.TriggerHarness{
		Factory:    NewFactory(),
		CountsOnly: true,
		Concurrent: true,
		Working: func(t *testing.T) plugintest.TriggerTarget {
			out := &lockedBuffer{}
			cfg := NewFactory().NewDefaultConfig()
			return plugintest.TriggerTarget{
				Config:   cfg,
				Settings: pipeline.Settings{Logger: slog.New(slog.NewTextHandler(out, nil))},
				Received: func() [][]pipeline.Change { return parseLines(t, out.String()) },
			}
		},
	})
}

// parseLines reads each "changes applied" line back as changes with only
// their Model and Op, as many as the line counts.
func parseLines(t *testing.T, text string) [][]pipeline.Change {
	var out [][]pipeline.Change
	for line := range strings.Lines(text) {
		if !strings.Contains(line, `msg="changes applied"`) {
			t.Errorf("unexpected log line %q", line)
			continue
		}
		var d []pipeline.Change
		total := -1
		for _, field := range strings.Fields(line) {
			k, v, _ := strings.Cut(field, "=")
			n, err := strconv.Atoi(v)
			model, op, isCount := strings.Cut(k, ".")
			switch {
			case k == "changes":
				total = n
			case isCount && err == nil:
				for range n {
					d = append(d, pipeline.Change{Model: model, Op: pipeline.Op(op)})
				}
			}
		}
		if total != len(d) {
			t.Errorf("line %q: changes=%d, but the counts add up to %d", line, total, len(d))
		}
		out = append(out, d)
	}
	return out
}
