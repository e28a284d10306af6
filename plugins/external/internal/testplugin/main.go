// Command testplugin is a plugin that misbehaves on request, for the
// tests of plugins/external: its config's mode says how.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

type config struct {
	// Mode: ok (passes batches on, records fired changes), crash-once
	// (exits mid-call when Marker does not exist yet, creating it), hang
	// (never answers), garbage (returns a change of another model), extra
	// (returns a change twice), refuse (a permanent error), refuse-config.
	Mode   string `json:"mode"`
	Marker string `json:"marker"`
	Record string `json:"record"`
}

type component struct{ cfg config }

func (c *component) misbehave(ctx context.Context) error {
	switch c.cfg.Mode {
	case "crash-once":
		if _, err := os.Stat(c.cfg.Marker); errors.Is(err, os.ErrNotExist) {
			_ = os.WriteFile(c.cfg.Marker, []byte("crashed"), 0o600)
			os.Exit(3)
		}
	case "hang":
		time.Sleep(time.Hour)
	case "refuse":
		return pipeline.Permanent(errors.New("testplugin refuses this batch"))
	}
	return nil
}

func (c *component) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	if err := c.misbehave(ctx); err != nil {
		return nil, err
	}
	out := *b
	switch c.cfg.Mode {
	case "garbage":
		if len(out.Changes) > 0 {
			out.Changes = append([]pipeline.Change(nil), out.Changes...)
			out.Changes[0].Model = "SomethingElse"
		}
	case "extra":
		if len(out.Changes) > 0 {
			out.Changes = append(append([]pipeline.Change(nil), out.Changes...), out.Changes[0])
		}
	}
	return &out, nil
}

func (c *component) Fire(ctx context.Context, _ string, changes []pipeline.Change) error {
	if err := c.misbehave(ctx); err != nil {
		return err
	}
	f, err := os.OpenFile(c.cfg.Record, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if _, err := f.WriteString(ch.Key.SK + "\n"); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

func parse(b []byte) (*component, error) {
	var c config
	if err := sdk.Decode(b, &c); err != nil {
		return nil, err
	}
	if c.Mode == "refuse-config" {
		return nil, errors.New("mode refuse-config: this config is refused")
	}
	return &component{cfg: c}, nil
}

func main() {
	sdk.Serve(sdk.Plugin{
		Validate: func(b []byte) error { _, err := parse(b); return err },
		Stage:    func(b []byte) (pipeline.Stage, error) { return parse(b) },
		Trigger:  func(b []byte) (pipeline.Trigger, error) { return parse(b) },
		// A bus in the plugin; crash-once exits on its first publish.
		Transport: newTransport,
	})
}
