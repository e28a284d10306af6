package exec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/triggers/filter"
)

// Defaults of Config.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxConcurrency = 4
)

// reservedEnv are the variables the trigger sets itself; env may not set them.
var reservedEnv = []string{envPipeline, envModels, envOps, envOrigins, envCount}

// Config configures the exec trigger.
type Config struct {
	// Command is the program and its arguments, run without a shell. A
	// program named with a slash and a relative path is found from the
	// config file's folder; a bare name is looked up in PATH.
	Command []string `yaml:"command" desc:"program and arguments, run without a shell: [/usr/local/bin/hook, --flag]; a relative path with a slash is from the config's folder (required)"`
	// Env adds variables to the environment iotod passes on.
	Env map[string]string `yaml:"env" desc:"extra environment variables (the IOTOD_* ones are set by iotod)"`
	// Dir is the working directory, relative to the config file's folder.
	Dir string `yaml:"dir" desc:"working directory, relative to the config's folder (default: the config's folder)"`
	// Timeout bounds one run; the run's whole process group is killed then.
	Timeout time.Duration `yaml:"timeout" desc:"bound of one run: then its process group is killed and the run failed; also the longest wait for a free run slot"`
	// MaxConcurrency bounds the runs going at once, over all calls.
	MaxConcurrency int `yaml:"max_concurrency" desc:"most runs going at once (over every batch of this trigger)"`
	// PerChange runs the command once per change (stdin: one object)
	// instead of once per batch (stdin: an array).
	PerChange bool `yaml:"per_change" desc:"run once per change, in order, with one change object on stdin, instead of once per batch with an array"`
	// Filter selects the changes delivered.
	Filter filter.Filter `yaml:",inline"`

	_ struct{}
}

// NewDefaultConfig returns the defaults; Command is left for the user.
func NewDefaultConfig() Config {
	return Config{Timeout: DefaultTimeout, MaxConcurrency: DefaultMaxConcurrency, Filter: filter.NewDefault()}
}

// Validate reports every fault of c, each naming its key. The faults wrap
// pipeline.ErrInvalid.
func (c *Config) Validate() error {
	var errs []error
	fault := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", pipeline.ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	switch {
	case len(c.Command) == 0:
		fault("command", "must be set: the program and its arguments, as a list")
	case c.Command[0] == "":
		fault("command", "the program (the first item) is empty")
	}
	for i, a := range c.Command {
		if strings.ContainsRune(a, 0) {
			fault(fmt.Sprintf("command[%d]", i), "holds a NUL byte")
		}
	}
	for k, v := range c.Env {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			fault("env", "%q is not a variable name", k)
		case strings.ContainsRune(v, 0):
			fault("env."+k, "holds a NUL byte")
		}
		if slices.Contains(reservedEnv, k) {
			fault("env."+k, "is set by iotod")
		}
	}
	if c.Timeout <= 0 {
		fault("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.MaxConcurrency < 1 {
		fault("max_concurrency", "must be at least 1, got %d", c.MaxConcurrency)
	}
	errs = append(errs, c.Filter.Validate())
	return errors.Join(errs...)
}
