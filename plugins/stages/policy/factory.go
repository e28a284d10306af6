package policy

import (
	"context"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the stage type in configuration.
const TypeName = "policy"

// NewFactory returns the policy stage factory.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStage, TypeName,
		"passes only changes the schema's process rules let flow this way, validating their items",
		func() Config { return *NewDefaultConfig() }, create)
}

// create builds a stage over set.Schema, which must be set.
func create(_ context.Context, set pipeline.Settings, c Config) (any, error) {
	if set.Schema == nil {
		return nil, fmt.Errorf("%s: %w: the policy stage needs a schema (set `schema:` in the config)", set.ID, pipeline.ErrInvalid)
	}
	return New(c, set), nil
}
