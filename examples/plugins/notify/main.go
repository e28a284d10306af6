// Command notify is an example iotod trigger plugin: it appends each
// change it is given, as one JSON line, to a file (where a log shipper or
// another program picks it up). Build it with `go build`, then name it in
// the YAML:
//
//	triggers:
//	  - plugin/notify:
//	      path: ./notify
//	      config: {file: /var/log/iotod-changes.jsonl}
//
// Each line is a whole change, so a reader can rebuild it:
//
//	{"pipeline":"ingest","change":{"seq":7,"model":"User","op":"create","key":{...},"item":{...},"version":{...},"origin":"dev-1","time":1700000000000}}
//
// A reader decodes a line into a struct like line below; its Change is a
// pipeline.Change again.
package main

import (
	"bytes"
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

// line is one line of the file: the pipeline that fired, and the change
// in iotod's own JSON form (model, op, key, item, version, origin, time,
// seq).
type line struct {
	Pipeline string          `json:"pipeline"`
	Change   pipeline.Change `json:"change"`
}

type trigger struct{ cfg config }

// Fire appends the changes and syncs the file: once Fire returns, they
// are on disk (iotod delivers the same batch again when Fire fails, so a
// reader may see a change twice).
func (t *trigger) Fire(_ context.Context, pipelineName string, changes []pipeline.Change) error {
	// The lines of the batch go to the file in one write, so batches
	// written at once (several pipelines, one file) do not mix their lines.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // Encode ends each object with a newline
	for _, c := range changes {
		if err := enc.Encode(line{Pipeline: pipelineName, Change: c}); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	f, err := os.OpenFile(t.cfg.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		_ = f.Close()
		return fmt.Errorf("notify: %w", err)
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
