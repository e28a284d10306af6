package external

import (
	"path/filepath"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
)

// configured is the external stage factory whose default config runs a
// given plugin, so the suite's factory checks apply as to a built-in.
type configured struct {
	pipeline.Factory
	cfg func() *Config
}

func (f configured) NewDefaultConfig() pipeline.Config { return f.cfg() }

// The stage conformance suite, the same the built-in stages pass, runs
// against the example redact stage through the plugin wrapper: its own
// process, gRPC, the checks of its replies.
func TestRedactPluginConformance(t *testing.T) {
	bin := binaries(t)
	f := configured{Factory: NewStageFactory(), cfg: func() *Config {
		return testConfig(filepath.Join(bin, "redact"), map[string]any{"fields": []string{"password"}})
	}}
	plugintest.TestStage(t, f, f.NewDefaultConfig())
}
