package batch

import (
	"errors"
	"fmt"
	"time"

	"github.com/iotod/iotod/pipeline"
)

// MaxLimit is the largest byte limit a batch may have.
const MaxLimit = 16 * pipeline.Megabyte

// Config is the `batch` stage's configuration. A batch is cut at whichever
// comes first: Delay after its first change arrived, Limit bytes, Count
// changes; or at once on a forced sync.
type Config struct {
	// Delay is how long the first held change waits for others to join it.
	Delay time.Duration `yaml:"delay" desc:"how long the first held change waits for company before the batch is cut; 0 sends at once (default 1s)"`
	// Limit bounds a batch's JSON size; keep it under the transport's
	// largest message (AWS IoT Core takes 128KB).
	Limit pipeline.ByteSize `yaml:"limit" desc:"largest batch, as JSON: 512, 10KB, 1MB (default 64KB, at most 16MB); one larger change goes alone"`
	// Count bounds the changes in a batch.
	Count int `yaml:"count" desc:"most changes in one batch (default 1000)"`

	_ struct{}
}

// NewDefaultConfig returns the defaults: 1s, 64KB, 1000 changes.
func NewDefaultConfig() *Config {
	return &Config{Delay: time.Second, Limit: 64 * pipeline.Kilobyte, Count: 1000}
}

// Validate reports every fault, each naming its field and wrapping
// pipeline.ErrInvalid.
func (c *Config) Validate() error {
	var errs []error
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("%w: delay: must not be negative, got %s", pipeline.ErrInvalid, c.Delay))
	}
	if c.Limit <= 0 || c.Limit > MaxLimit {
		errs = append(errs, fmt.Errorf("%w: limit: must be between 1 and %s, got %d", pipeline.ErrInvalid, MaxLimit, int64(c.Limit)))
	}
	if c.Count < 1 {
		errs = append(errs, fmt.Errorf("%w: count: must be at least 1, got %d", pipeline.ErrInvalid, c.Count))
	}
	return errors.Join(errs...)
}
