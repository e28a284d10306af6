package config

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
)

// The config tests use small fake plugins (and the badger storage), so
// they do not depend on the real transports, stages and triggers.

type fakeFactory struct {
	kind      pipeline.Kind
	typ       string
	newConfig func() pipeline.Config
}

func (f fakeFactory) Kind() pipeline.Kind               { return f.kind }
func (f fakeFactory) Type() string                      { return f.typ }
func (f fakeFactory) Description() string               { return "fake " + f.typ }
func (f fakeFactory) NewDefaultConfig() pipeline.Config { return f.newConfig() }
func (f fakeFactory) Create(context.Context, pipeline.Settings, pipeline.Config) (any, error) {
	return nil, errors.New("fake plugins make nothing")
}

// busConfig is a fake transport's config.
type busConfig struct {
	Buffer int    `yaml:"buffer" desc:"messages held"`
	QoS    int    `yaml:"qos" desc:"0, 1 or 2"`
	URL    string `yaml:"url" desc:"where"`

	_ struct{}
}

func (c *busConfig) Validate() error {
	if c.QoS < 0 || c.QoS > 2 {
		return fmt.Errorf("%w: qos: must be 0, 1 or 2, got %d", pipeline.ErrInvalid, c.QoS)
	}
	return nil
}

// batchConfig is a fake batch stage's config, with a duration and a size.
type batchConfig struct {
	Delay time.Duration     `yaml:"delay"`
	Limit pipeline.ByteSize `yaml:"limit"`
	Count int               `yaml:"count"`

	_ struct{}
}

func (c *batchConfig) Validate() error {
	var errs []error
	if c.Count < 1 {
		errs = append(errs, fmt.Errorf("%w: count: must be at least 1, got %d", pipeline.ErrInvalid, c.Count))
	}
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("%w: delay: must not be negative", pipeline.ErrInvalid))
	}
	return errors.Join(errs...)
}

type policyConfig struct {
	ValidateItems bool `yaml:"validate"`

	_ struct{}
}

func (c *policyConfig) Validate() error { return nil }

type logConfig struct {
	Level  string   `yaml:"level"`
	Models []string `yaml:"models"`

	_ struct{}
}

func (c *logConfig) Validate() error {
	switch c.Level {
	case "debug", "info", "warn":
		return nil
	}
	return fmt.Errorf("%w: level: %q is not one of debug, info, warn", pipeline.ErrInvalid, c.Level)
}

// testRegistry holds badger, a transport "bus", stages "policy" and
// "batch", and a trigger "log".
func testRegistry(t testing.TB) *pipeline.Registry {
	t.Helper()
	reg, err := pipeline.NewRegistry(
		badger.NewFactory(),
		fakeFactory{pipeline.KindTransport, "bus", func() pipeline.Config { return &busConfig{Buffer: 16, QoS: 1} }},
		fakeFactory{pipeline.KindStage, "policy", func() pipeline.Config { return &policyConfig{ValidateItems: true} }},
		fakeFactory{pipeline.KindStage, "batch", func() pipeline.Config {
			return &batchConfig{Delay: time.Second, Limit: 64 * pipeline.Kilobyte, Count: 1000}
		}},
		fakeFactory{pipeline.KindTrigger, "log", func() pipeline.Config { return &logConfig{Level: "info"} }},
	)
	require.NoError(t, err)
	return reg
}
