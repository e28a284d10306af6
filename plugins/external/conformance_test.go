package external

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// The conformance suites run against the example plugins through this
// wrapper beside each example (examples/plugins/*/conformance_test.go,
// with plugins/external/externaltest). What needs the test plugin stays
// here: a trigger whose plugin says retrying cannot help fails each
// delivery of the same batch with a permanent error naming the trigger,
// not a context error (the suite's refusal check).
func TestPluginTriggerPermanentRefusal(t *testing.T) {
	bin := binaries(t)
	set, _ := settings(t, pipeline.KindTrigger, "refuse")
	c, err := NewTriggerFactory().Create(context.Background(), set, testConfig(filepath.Join(bin, "testplugin"), map[string]any{"mode": "refuse"}))
	require.NoError(t, err)
	tr := c.(*Trigger)
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	batch := batchOf(3).Changes
	for attempt := 1; attempt <= 2; attempt++ {
		err := tr.Fire(context.Background(), "ingest", batch)
		require.Error(t, err, "attempt %d", attempt)
		assert.True(t, pipeline.IsPermanent(err), "attempt %d: permanent: %v", attempt, err)
		assert.Contains(t, err.Error(), "plugin/refuse", "names the trigger")
		assert.Contains(t, err.Error(), "testplugin refuses this batch", "the plugin's reason")
		assert.False(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled), "not a context error: %v", err)
	}
}
