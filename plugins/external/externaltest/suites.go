package externaltest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
	"github.com/iotod/iotod/plugins/external"
)

// Stage runs plugintest.TestStage against the plugin through the wrapper
// (its own process, gRPC, the host's reply checks).
//
// The factory under test is the external stage factory, its default
// config Config(path, config), so the suite's factory checks apply as to
// a built-in stage. Each stage the suite creates is a process, stopped
// when t ends.
func Stage(t *testing.T, path string, config map[string]any) {
	f := &factory{
		Factory:  external.NewStageFactory(),
		defaults: func() pipeline.Config { return Config(path, config) },
		t:        t,
	}
	plugintest.TestStage(t, f, nil) // nil: each stage of a new default config
}

// Trigger runs plugintest.TestTrigger with h; h.Factory, when nil, is the
// external trigger factory, each component closed when its test ends (the
// suite does not close what it creates, and each is a process). Targets'
// Config are made with Config(path, ...).
//
// With a Factory of its own, h is passed to the suite as it is.
func Trigger(t *testing.T, h plugintest.TriggerHarness) {
	if h.Factory == nil {
		h.Factory = &factory{Factory: external.NewTriggerFactory(), t: t}
		h.Working = owned(h.Working)
		h.Hanging = owned(h.Hanging)
		refusals := make([]plugintest.TriggerRefusal, len(h.Refusals))
		for i, r := range h.Refusals {
			r.New = owned(r.New)
			refusals[i] = r
		}
		h.Refusals = refusals
	}
	plugintest.TestTrigger(t, h)
}

// Transport runs plugintest.TestTransport: each open starts the plugin at
// path as a transport with config(t) (closed when t ends). config may be
// nil: the plugin then gets an empty config.
//
// Every transport opened must reach the same message space (for a client
// of a hub or broker, the same hub): config gives each the address of
// one the test started.
func Transport(t *testing.T, features plugintest.TransportFeatures, path string, config func(t *testing.T) map[string]any) {
	f := external.NewTransportFactory()
	plugintest.TestTransport(t, features, func(t *testing.T) pipeline.Transport {
		t.Helper()
		var conf map[string]any
		if config != nil {
			conf = config(t)
		}
		set := pipeline.Settings{
			ID:     pipeline.ID{Type: f.Type(), Name: "externaltest"},
			Kind:   f.Kind(),
			Site:   "externaltest",
			Logger: slog.New(slog.DiscardHandler),
		}
		c, err := f.Create(t.Context(), set, Config(path, conf))
		if err != nil {
			t.Fatalf("start the transport plugin %s: %v", path, err)
		}
		tr := c.(pipeline.Transport)
		t.Cleanup(func() { _ = tr.Close(context.Background()) })
		return tr
	})
}

// factory is a factory of plugin components that closes each one it
// creates when its owner test ends: the test of its target's config
// (see owned), else t. With defaults, its default config is defaults().
type factory struct {
	pipeline.Factory
	defaults func() pipeline.Config
	t        *testing.T
}

func (f *factory) NewDefaultConfig() pipeline.Config {
	if f.defaults != nil {
		return f.defaults()
	}
	return f.Factory.NewDefaultConfig()
}

func (f *factory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	t := f.t
	if o, ok := cfg.(*ownedConfig); ok {
		cfg, t = o.Config, o.t
	}
	c, err := f.Factory.Create(ctx, set, cfg)
	if cl, ok := c.(interface{ Close(context.Context) error }); ok && err == nil {
		t.Cleanup(func() { _ = cl.Close(context.Background()) })
	}
	return c, err
}

// ownedConfig is a target's config with the test the target was made
// for, so that the triggers of it are closed when that test ends, not
// when the whole suite does.
type ownedConfig struct {
	pipeline.Config
	t *testing.T
}

// owned wraps a harness's target function so that its targets' configs
// carry the test they were made for (nil stays nil: no such target).
func owned(target func(t *testing.T) plugintest.TriggerTarget) func(t *testing.T) plugintest.TriggerTarget {
	if target == nil {
		return nil
	}
	return func(t *testing.T) plugintest.TriggerTarget {
		tt := target(t)
		if tt.Config != nil {
			tt.Config = &ownedConfig{Config: tt.Config, t: t}
		}
		return tt
	}
}
