// Package external runs stages and triggers written by third parties in
// processes of their own (pipeline/sdk), as `plugin` components of the
// YAML: iotod starts the binary, checks its checksum and protocol
// version, hands it its config, and sends it whole batches over gRPC
// with mutual TLS, restarting it with backoff when it dies.
package external

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

// TypeName is the type of external components in pipelines.yaml.
const TypeName = "plugin"

// Config configures an external stage or trigger.
type Config struct {
	// Path is the plugin binary, relative to the config file's folder.
	Path string `yaml:"path" desc:"the plugin's executable, relative to the config file's folder; required"`
	// SHA256 pins the binary: iotod refuses to start one whose SHA-256
	// differs. Empty: not checked.
	SHA256 string `yaml:"sha256" desc:"hex SHA-256 the binary must have (empty: not checked)"`
	// Config is passed to the plugin, which validates it.
	Config map[string]any `yaml:"config" desc:"the plugin's own config, passed to it as JSON and validated by it"`
	// StartTimeout bounds the plugin's start and handshake.
	StartTimeout time.Duration `yaml:"start_timeout" desc:"time the plugin has to start and answer the handshake (default 10s)"`
	// CallTimeout bounds one call (a batch), when the caller gives none.
	CallTimeout time.Duration `yaml:"call_timeout" desc:"time one batch may take in the plugin (default 30s)"`
	// RestartDelay is the first delay before restarting a plugin that
	// died; doubled per failed restart up to a minute.
	RestartDelay time.Duration `yaml:"restart_delay" desc:"first delay before restarting a plugin that died, doubled up to 1m (default 500ms)"`

	_ struct{}
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{StartTimeout: 10 * time.Second, CallTimeout: 30 * time.Second, RestartDelay: 500 * time.Millisecond}
}

// Validate checks the host's keys; the plugin checks its config when it
// starts.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, fmt.Errorf("%w: path: required: the plugin's executable", pipeline.ErrInvalid))
	}
	if c.SHA256 != "" {
		if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != 32 {
			errs = append(errs, fmt.Errorf("%w: sha256: %q is not 64 hex digits", pipeline.ErrInvalid, pipeline.Truncate(c.SHA256, 80)))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"start_timeout", c.StartTimeout}, {"call_timeout", c.CallTimeout}, {"restart_delay", c.RestartDelay}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%w: %s: must be positive, got %s", pipeline.ErrInvalid, d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// Check starts the plugin, has it check its config, and stops it
// (pipeline.Checker, for iotod validate): a missing binary, a checksum
// or protocol mismatch, or a config the plugin refuses is reported.
func (c *Config) Check(ctx context.Context, set pipeline.Settings) error {
	p, err := newProcess(set.ID.String(), resolvePath(set.Dir, c.Path), *c,
		sdk.ConfigureRequest{Kind: set.Kind, Name: set.ID.String(), Site: set.Site, Check: true}, loggerOf(set))
	if err != nil {
		return err
	}
	defer p.close()
	_, err = p.clientFor(ctx)
	return err
}
