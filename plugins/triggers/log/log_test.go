package log

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

func TestLogsOneLinePerBatchWithCounts(t *testing.T) {
	var buf bytes.Buffer
	f := NewFactory()
	cfg := f.NewDefaultConfig().(*Config)
	cfg.Models = []string{"Reading", "User"}
	tr, err := f.Create(context.Background(), pipeline.Settings{Logger: slog.New(slog.NewTextHandler(&buf, nil))}, cfg)
	require.NoError(t, err)
	changes := []pipeline.Change{
		{Model: "Reading", Op: pipeline.OpCreate}, {Model: "Reading", Op: pipeline.OpCreate},
		{Model: "User", Op: pipeline.OpRemove}, {Model: "Account", Op: pipeline.OpCreate},
	}
	require.NoError(t, tr.(*Trigger).Fire(context.Background(), "ingest", changes))
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, "\n"), "one line, not one per change")
	require.Contains(t, out, "changes=3")
	require.Contains(t, out, "Reading.create=2")
	require.Contains(t, out, "User.remove=1")
	require.NotContains(t, out, "Account")
}

func TestConfigValidate(t *testing.T) {
	for level, ok := range map[string]bool{"debug": true, "info": true, "warn": true, "error": false, "": false} {
		err := (&Config{Level: level}).Validate()
		require.Equal(t, ok, err == nil, level)
	}
}
