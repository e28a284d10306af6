package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/triggers/filter"
)

// The variables every run gets.
const (
	envPipeline = "IOTOD_PIPELINE" // the pipeline's name
	envModels   = "IOTOD_MODELS"   // distinct models of the changes, sorted, comma-separated
	envOps      = "IOTOD_OPS"      // distinct operations, likewise
	envOrigins  = "IOTOD_ORIGINS"  // distinct origin sites, likewise
	envCount    = "IOTOD_COUNT"    // number of changes on stdin
)

// Trigger runs its command for the changes it selects. It is safe for
// concurrent use; the runs of every call share max_concurrency slots.
type Trigger struct {
	log       *slog.Logger
	site      string
	filter    filter.Filter
	argv      []string // argv[0] is the program's resolved path
	name      string   // the command as configured, for errors
	dir       string
	env       []string // from the config, KEY=VALUE
	timeout   time.Duration
	perChange bool
	slots     chan struct{}
}

// Fire runs the command with the selected changes: once with all of them
// (an array on stdin), or once per change in order (one object on stdin),
// stopping at the first failure. It returns nil when every run exited 0,
// and an error naming the command, its exit status and the end of its
// stderr otherwise. Each run is bounded by the timeout and by ctx.
func (t *Trigger) Fire(ctx context.Context, pipelineName string, changes []pipeline.Change) error {
	sel := t.filter.Select(t.site, changes)
	if len(sel) == 0 {
		return nil
	}
	if !t.perChange {
		stdin, err := json.Marshal(filter.Payloads(sel))
		if err != nil {
			return fmt.Errorf("exec trigger: encode %d changes: %w", len(sel), err)
		}
		return t.deliver(ctx, pipelineName, sel, stdin)
	}
	for i := range sel {
		stdin, err := json.Marshal(filter.Payload(sel[i]))
		if err != nil {
			return fmt.Errorf("exec trigger: encode change %s: %w", sel[i].Key, err)
		}
		if err := t.deliver(ctx, pipelineName, sel[i:i+1], stdin); err != nil {
			return fmt.Errorf("change %d of %d (%s %s %s): %w", i+1, len(sel), sel[i].Model, sel[i].Op, sel[i].Key, err)
		}
	}
	return nil
}

// deliver runs the command once for changes, whose JSON is stdin.
func (t *Trigger) deliver(ctx context.Context, pipelineName string, changes []pipeline.Change, stdin []byte) error {
	res, err := t.run(ctx, stdin, t.environ(pipelineName, changes))
	if err != nil {
		return err
	}
	t.log.DebugContext(ctx, "exec trigger ran", "pipeline", pipelineName, "command", t.name,
		"changes", len(changes), "duration", res.duration, "stdout_bytes", res.stdoutBytes,
		"stdout", lastBytes(res.stdout, stderrInError))
	return nil
}

// environ is the environment of one run: iotod's own, then env from the
// config, then the IOTOD_* variables (later entries win).
func (t *Trigger) environ(pipelineName string, changes []pipeline.Change) []string {
	env := append(os.Environ(), t.env...)
	return append(env,
		envPipeline+"="+pipelineName,
		envModels+"="+distinct(changes, func(c pipeline.Change) string { return c.Model }),
		envOps+"="+distinct(changes, func(c pipeline.Change) string { return string(c.Op) }),
		envOrigins+"="+distinct(changes, func(c pipeline.Change) string { return c.Origin }),
		envCount+"="+strconv.Itoa(len(changes)),
	)
}

// distinct joins the distinct values of field over changes, sorted, with
// commas.
func distinct(changes []pipeline.Change, field func(pipeline.Change) string) string {
	var vals []string
	for _, c := range changes {
		if v := field(c); !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	slices.Sort(vals)
	return strings.Join(vals, ",")
}

var _ pipeline.Trigger = (*Trigger)(nil)
