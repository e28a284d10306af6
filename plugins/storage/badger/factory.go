package badger

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the storage type of this engine in configuration.
const TypeName = "badger"

type factory struct{}

// NewFactory returns the badger storage factory.
func NewFactory() pipeline.Factory { return factory{} }

func (factory) Kind() pipeline.Kind { return pipeline.KindStorage }

func (factory) Type() string { return TypeName }

func (factory) Description() string {
	return "embedded crash-safe store (badger v4) with group commit and an atomic outbox"
}

// NewDefaultConfig returns a *Config holding NewDefaultConfig(); its Path
// must still be set.
func (factory) NewDefaultConfig() pipeline.Config {
	c := NewDefaultConfig()
	return &c
}

// Create opens a *Store; a relative cfg.Path is taken from set.Dir.
func (factory) Create(ctx context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("%w: badger storage %s: config is %T, want *badger.Config", pipeline.ErrInvalid, set.ID, cfg)
	}
	opts := *c
	if opts.Path != "" && !filepath.IsAbs(opts.Path) && set.Dir != "" {
		opts.Path = filepath.Join(set.Dir, opts.Path)
	}
	s, err := Open(ctx, opts, set.Logger) // its errors name the store's path
	if err != nil {
		return nil, err
	}
	return s, nil
}

var _ pipeline.Factory = factory{}
