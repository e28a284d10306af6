package policy

import (
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// Config is the `policy` stage's configuration.
type Config struct {
	// Direction, when set, pins the direction this stage expects: the
	// pipeline it is placed in must move changes that way, or start-up
	// fails. Empty takes the pipeline's direction.
	Direction pipeline.Direction `yaml:"direction" desc:"up or down; if set, the pipeline must run this way (default: the pipeline's direction)"`
	// ValidateItems checks every created or updated item against its model
	// in the schema (types, required attributes, enums, patterns).
	ValidateItems bool `yaml:"validate" desc:"validate each item against its model in the schema (default true)"`

	_ struct{}
}

// NewDefaultConfig returns the defaults: the pipeline's direction, items
// validated.
func NewDefaultConfig() *Config {
	return &Config{ValidateItems: true}
}

// Validate reports a direction other than up or down. Faults wrap
// pipeline.ErrInvalid.
func (c *Config) Validate() error {
	switch c.Direction {
	case "", pipeline.Up, pipeline.Down:
		return nil
	}
	return fmt.Errorf("%w: direction: %q is not up or down", pipeline.ErrInvalid, c.Direction)
}
