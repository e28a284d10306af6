// Command notify is an example iotod trigger plugin: it appends each
// change it is given, as one JSON line, to a file (where a log shipper or
// another program picks it up). Build it with `go build`, then name it in
// the YAML:
//
//	triggers:
//	  - plugin/notify:
//	      path: ./notify
//	      config: {file: /var/log/iotod-changes.jsonl}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

type config struct {
	// File is where the changes are appended, one JSON object a line.
	File string `json:"file"`
}

func parse(b []byte) (config, error) {
	var c config
	if err := sdk.Decode(b, &c); err != nil {
		return c, err
	}
	if c.File == "" {
		return c, errors.New("config: file: required")
	}
	return c, nil
}

type trigger struct{ cfg config }

// Fire appends the changes and syncs the file: once Fire returns, they
// are on disk (iotod delivers the same batch again when Fire fails).
func (t *trigger) Fire(_ context.Context, pipelineName string, changes []pipeline.Change) error {
	f, err := os.OpenFile(t.cfg.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, c := range changes {
		line := map[string]any{"pipeline": pipelineName, "model": c.Model, "op": c.Op, "key": c.Key, "version": c.Version.String(), "item": c.Item}
		if err := enc.Encode(line); err != nil {
			_ = f.Close()
			return fmt.Errorf("notify: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("notify: %w", err)
	}
	return f.Close()
}

func main() {
	sdk.Serve(sdk.Plugin{
		Validate: func(b []byte) error { _, err := parse(b); return err },
		Trigger: func(b []byte) (pipeline.Trigger, error) {
			c, err := parse(b)
			return &trigger{cfg: c}, err
		},
	})
}
