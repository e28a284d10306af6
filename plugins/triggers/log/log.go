// Package log is the `log` trigger: it logs one line per applied batch
// with the number of changes per model (never a line per change).
package log

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the trigger's type in pipelines.yaml.
const TypeName = "log"

// Config configures the log trigger.
type Config struct {
	// Level is the log level of the lines: debug, info or warn.
	Level string `yaml:"level" desc:"log level of the lines: debug, info or warn"`
	// Models limits the trigger to these models (empty: all).
	Models []string `yaml:"models" desc:"only changes of these models (empty: all)"`

	_ struct{}
}

// Validate checks the level.
func (c *Config) Validate() error {
	switch c.Level {
	case "debug", "info", "warn":
		return nil
	}
	return fmt.Errorf("%w: level: %q is not one of debug, info, warn", pipeline.ErrInvalid, c.Level)
}

// NewFactory returns the log trigger's factory.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTrigger, TypeName,
		"logs one line per applied batch with its change counts per model",
		func() Config { return Config{Level: "info"} }, create)
}

func create(_ context.Context, set pipeline.Settings, c Config) (any, error) {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn}[c.Level]
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trigger{log: log, level: level, models: c.Models}, nil
}

// Trigger logs applied batches.
type Trigger struct {
	log    *slog.Logger
	level  slog.Level
	models []string
}

// Fire logs one line for the changes, counted per model and operation.
func (t *Trigger) Fire(ctx context.Context, pipelineName string, changes []pipeline.Change) error {
	counts := map[string]int{}
	n := 0
	for _, c := range changes {
		if len(t.models) > 0 && !slices.Contains(t.models, c.Model) {
			continue
		}
		counts[c.Model+"."+string(c.Op)]++
		n++
	}
	if n == 0 {
		return nil
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := []any{"pipeline", pipelineName, "changes", n}
	for _, k := range keys {
		attrs = append(attrs, k, counts[k])
	}
	t.log.Log(ctx, t.level, "changes applied", attrs...)
	return nil
}

var _ pipeline.Trigger = (*Trigger)(nil)
