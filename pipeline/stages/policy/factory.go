package policy

import (
	"context"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the stage type in configuration.
const TypeName = "policy"

// Factory makes policy stages.
type Factory struct{}

// NewFactory returns the policy stage factory.
func NewFactory() pipeline.Factory { return Factory{} }

// Kind returns pipeline.KindStage.
func (Factory) Kind() pipeline.Kind { return pipeline.KindStage }

// Type returns TypeName.
func (Factory) Type() string { return TypeName }

// Description is one line for `iotod plugins list`.
func (Factory) Description() string {
	return "passes only changes the schema's process rules let flow this way, validating their items"
}

// NewDefaultConfig returns NewDefaultConfig().
func (Factory) NewDefaultConfig() pipeline.Config { return NewDefaultConfig() }

// Create builds a stage over set.Schema, which must be set.
func (Factory) Create(_ context.Context, set pipeline.Settings, cfg pipeline.Config) (any, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("%s: config is %T, want *policy.Config", set.ID, cfg)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", set.ID, err)
	}
	if set.Schema == nil {
		return nil, fmt.Errorf("%s: %w: the policy stage needs a schema (set `schema:` in the config)", set.ID, pipeline.ErrInvalid)
	}
	return New(*c, set), nil
}

var _ pipeline.Factory = Factory{}
