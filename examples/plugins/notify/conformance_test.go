//go:build unix

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
	"github.com/iotod/iotod/plugins/external/externaltest"
)

// TestConformance runs the trigger conformance suite, the one the
// built-in triggers pass, against this plugin as iotod runs it: built,
// each trigger in a process of its own, called over gRPC. Its working
// target is a file the test reads back; its hanging target is a FIFO
// nobody reads (opening it blocks in the plugin, so Fire returns only
// because the host ends the call on its context); it refuses a file in
// a folder that is not there. Skipped under -short (it builds the
// plugin).
func TestConformance(t *testing.T) {
	bin := externaltest.Build(t, ".")
	notify := func(file string) plugintest.TriggerTarget {
		return plugintest.TriggerTarget{Config: externaltest.Config(bin, map[string]any{"file": file})}
	}
	externaltest.Trigger(t, plugintest.TriggerHarness{
		Concurrent: true, // one write a batch, to a file opened for appending
		Working: func(t *testing.T) plugintest.TriggerTarget {
			file := filepath.Join(t.TempDir(), "changes.jsonl")
			target := notify(file)
			// The file does not mark where one Fire's batch ends, so each
			// line is a delivery of its own (the suite checks the order of
			// each batch's changes across deliveries).
			target.Received = func() [][]pipeline.Change {
				data, err := os.ReadFile(file)
				if os.IsNotExist(err) {
					return nil
				}
				if err != nil {
					t.Errorf("read what notify wrote: %v", err)
					return nil
				}
				text := string(data)
				text = text[:strings.LastIndexByte(text, '\n')+1] // a batch still being written
				var got [][]pipeline.Change
				for l := range strings.Lines(text) {
					var ln line
					if err := json.Unmarshal([]byte(l), &ln); err != nil || ln.Pipeline == "" {
						t.Errorf("notify wrote a line that is not {pipeline, change}: %v: %q", err, l)
						continue
					}
					got = append(got, []pipeline.Change{ln.Change})
				}
				return got
			}
			return target
		},
		Hanging: func(t *testing.T) plugintest.TriggerTarget {
			fifo := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			return notify(fifo)
		},
		Refusals: []plugintest.TriggerRefusal{{
			Name: "FileCannotBeOpened",
			New: func(t *testing.T) plugintest.TriggerTarget {
				return notify(filepath.Join(t.TempDir(), "missing-folder", "changes.jsonl"))
			},
			Permanent: false, // the folder may be there next time
		}},
	})
}
