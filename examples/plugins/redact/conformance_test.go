package main

import (
	"testing"

	"github.com/iotod/iotod/plugins/external/externaltest"
)

// TestConformance runs the stage conformance suite, the one the built-in
// stages pass, against this plugin as iotod runs it: built, started in a
// process of its own and called over gRPC, its replies checked by the
// host. Skipped under -short (it builds the plugin).
func TestConformance(t *testing.T) {
	externaltest.Stage(t, externaltest.Build(t, "."), map[string]any{"fields": []string{"password"}})
}
