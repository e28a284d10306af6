package config

import (
	"gopkg.in/yaml.v3"
)

// LogConfig is the log iotod run writes to stderr (the log key).
type LogConfig struct {
	// Level is the lowest level logged: debug, info (default), warn or
	// error. iotod run's --log-level overrides it.
	Level string `yaml:"level" desc:"lowest level logged: debug, info, warn or error (default info)"`
	// Format is text (key=value lines, the default) or json (one JSON
	// object a line).
	Format string `yaml:"format" desc:"text (key=value lines) or json (one JSON object a line); default text"`

	_ struct{}
}

// The values of LogConfig's keys, and their defaults.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// Defaults of LogConfig.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
)

// logSection decodes and checks the log key at n over the defaults in out.
func (l *loader) logSection(n *yaml.Node, out *LogConfig) {
	l.decode(n, "log", out)
	if !l.failed["log.level"] {
		l.oneOf("log.level", out.Level, LogLevels...)
	}
	if !l.failed["log.format"] {
		l.oneOf("log.format", out.Format, LogFormats...)
	}
}
