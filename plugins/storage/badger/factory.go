package badger

import (
	"context"
	"log/slog"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the storage type of this engine in configuration.
const TypeName = "badger"

// Factory creates badger stores.
type Factory struct{}

// NewFactory returns the badger storage factory.
func NewFactory() Factory { return Factory{} }

// Type returns TypeName.
func (Factory) Type() string { return TypeName }

// CreateDefaultConfig returns NewDefaultConfig(); its Path must still be set.
func (Factory) CreateDefaultConfig() Config { return NewDefaultConfig() }

// Create opens a store with cfg.
func (Factory) Create(ctx context.Context, cfg Config, logger *slog.Logger) (pipeline.Store, error) {
	s, err := Open(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	return s, nil
}
