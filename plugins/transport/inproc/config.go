package inproc

import (
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

const (
	// DefaultBuffer is the default of Config.Buffer.
	DefaultBuffer = 256
	// MaxBuffer is the largest Config.Buffer accepted.
	MaxBuffer = 1 << 20
)

// Config is the user configuration of an inproc transport.
type Config struct {
	// Buffer is how many messages one subscription holds that its consumer
	// has not acked yet; a publisher to a full subscription waits for room
	// (or for its context to end).
	Buffer int `yaml:"buffer" desc:"messages a subscription holds before publishers to it wait (1 to 1048576)"`

	_ struct{}
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{Buffer: DefaultBuffer}
}

// Validate reports every fault of c, each naming its field. The faults
// wrap pipeline.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	if c.Buffer < 1 || c.Buffer > MaxBuffer {
		errs = append(errs, fieldError{field: "buffer",
			msg: fmt.Sprintf("must be between 1 and %d, got %d", MaxBuffer, c.Buffer)})
	}
	return errors.Join(errs...)
}

// fieldError is a fault of one config field.
type fieldError struct{ field, msg string }

func (e fieldError) Error() string { return e.field + ": " + e.msg }
func (e fieldError) Unwrap() error { return pipeline.ErrInvalid }
