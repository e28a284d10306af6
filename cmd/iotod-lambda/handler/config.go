package handler

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/transport/mqtt"
)

// DefaultOwner is the item attribute naming the device an item belongs
// to, as in `iotod run` (runner.DefaultOwner).
const DefaultOwner = "deviceId"

// Config is the function's configuration: a YAML file (IOTOD_LAMBDA_CONFIG)
// and environment variables, which override the file's keys they name.
type Config struct {
	// Schema is the path of the schema (OneTable JSON or JSON5 with
	// iotod's `process` rules).
	Schema string `yaml:"schema"`
	// Site is the cloud's site: stated in the batches, and the origin of
	// writes made outside iotod.
	Site string `yaml:"site"`
	// Owner is the attribute naming the device an item goes to; an item
	// without it is broadcast to every device.
	Owner string `yaml:"owner"`
	// PublishTimeout bounds one publish (including the wait for the
	// broker's connection); a publish that times out fails its records.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// Batch bounds a batch: its changes and its JSON size.
	BatchCount int               `yaml:"batch_count"`
	BatchLimit pipeline.ByteSize `yaml:"batch_limit"`
	// ValidateItems checks each item against its model (the policy
	// stage's `validate`).
	ValidateItems bool `yaml:"validate"`
	// MQTT is the mqtt transport's configuration (docs of `iotod plugins
	// show transport mqtt`).
	MQTT mqtt.Config `yaml:"mqtt"`
}

// Environment variables read by FromEnv.
const (
	EnvConfig         = "IOTOD_LAMBDA_CONFIG"
	EnvSchema         = "IOTOD_SCHEMA"
	EnvSite           = "IOTOD_SITE"
	EnvOwner          = "IOTOD_OWNER"
	EnvMQTTURL        = "IOTOD_MQTT_URL"
	EnvMQTTUsername   = "IOTOD_MQTT_USERNAME"
	EnvMQTTPassword   = "IOTOD_MQTT_PASSWORD"
	EnvMQTTClientID   = "IOTOD_MQTT_CLIENT_ID"
	EnvMQTTTopic      = "IOTOD_MQTT_TOPIC"
	EnvPublishTimeout = "IOTOD_PUBLISH_TIMEOUT"
)

// DefaultConfig returns the defaults: site "cloud", owner deviceId, the
// mqtt transport's defaults with a random client id (each concurrent
// instance of the function is a client of its own), no persistent
// session, its session folder under /tmp (Lambda's only writable folder).
func DefaultConfig() Config {
	m := mqtt.NewDefaultConfig()
	var b [6]byte
	_, _ = rand.Read(b[:])
	m.ClientID = "iotod-lambda-" + hex.EncodeToString(b[:])
	m.SessionExpiry = 0
	m.CleanStart = true
	m.ShareGroup = ""
	return Config{
		Site: "cloud", Owner: DefaultOwner, PublishTimeout: 10 * time.Second,
		BatchCount: 1000, BatchLimit: 64 * pipeline.Kilobyte, ValidateItems: true, MQTT: m,
	}
}

// FromEnv reads the configuration: the defaults, then the YAML file named
// by IOTOD_LAMBDA_CONFIG if set, then the environment variables that are
// set. Relative paths in the file are read from its folder.
func FromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	if path := getenv(EnvConfig); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(data, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
		if c.Schema != "" && !filepath.IsAbs(c.Schema) {
			c.Schema = filepath.Join(filepath.Dir(path), c.Schema)
		}
	}
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&c.Schema, EnvSchema)
	set(&c.Site, EnvSite)
	set(&c.Owner, EnvOwner)
	set(&c.MQTT.URL, EnvMQTTURL)
	set(&c.MQTT.Username, EnvMQTTUsername)
	set(&c.MQTT.Password, EnvMQTTPassword)
	set(&c.MQTT.ClientID, EnvMQTTClientID)
	set(&c.MQTT.Topic, EnvMQTTTopic)
	if v := getenv(EnvPublishTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("%s=%s: %w", EnvPublishTimeout, strconv.Quote(v), err)
		}
		c.PublishTimeout = d
	}
	if c.MQTT.SessionDir == "" {
		c.MQTT.SessionDir = filepath.Join(os.TempDir(), "iotod-mqtt")
	}
	return c, c.Validate()
}

// Validate reports the faults of c.
func (c Config) Validate() error {
	var errs []error
	if c.Schema == "" {
		errs = append(errs, fmt.Errorf("schema: required (%s or `schema:` in %s)", EnvSchema, EnvConfig))
	}
	if err := pipeline.ValidSite(c.Site); err != nil {
		errs = append(errs, fmt.Errorf("site: %w", err))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("publish_timeout: must be positive, got %s", c.PublishTimeout))
	}
	if c.BatchCount <= 0 {
		errs = append(errs, fmt.Errorf("batch_count: must be positive, got %d", c.BatchCount))
	}
	if c.BatchLimit <= 0 {
		errs = append(errs, fmt.Errorf("batch_limit: must be positive, got %s", c.BatchLimit))
	}
	if err := c.MQTT.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: %w", err))
	}
	return errors.Join(errs...)
}
