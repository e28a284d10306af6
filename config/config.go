// Package config loads and checks pipelines.yaml, the file that says how an
// iotod process runs: its site, schema, storage and local API.
package config

import (
	"net"
	"path/filepath"
)

// Config is the content of pipelines.yaml. Load returns it with defaults
// applied and every relative path resolved against the file's folder.
type Config struct {
	// Site is this site's id: it names the origin of versions and the
	// replication topics. Required.
	Site string `yaml:"site"`
	// Schema is the path of the OneTable schema (JSON, JSON5 or YAML).
	// Required.
	Schema string `yaml:"schema"`
	// Storage maps a storage name to its config. A device uses the one named
	// "local", or the only one.
	Storage map[string]*StorageConfig `yaml:"storage"`
	// API is the local HTTP/JSON API.
	API APIConfig `yaml:"api"`

	// File is the config file's path as given to Load; set by Load.
	File string `yaml:"-"`

	_ struct{}
}

// APIConfig says where the local HTTP/JSON API listens. It has no
// authentication, so it listens only on loopback or on a unix socket.
type APIConfig struct {
	// Listen is a loopback host:port; default 127.0.0.1:7400. An empty
	// string turns TCP off (then Socket is required).
	Listen string `yaml:"listen"`
	// Socket is an optional unix socket path, relative to the config file's
	// folder; the socket is made readable and writable by its owner only.
	Socket string `yaml:"socket"`

	_ struct{}
}

// DefaultListen is the API's default address.
const DefaultListen = "127.0.0.1:7400"

// NewDefaultConfig returns a Config holding every default.
func NewDefaultConfig() *Config {
	return &Config{API: APIConfig{Listen: DefaultListen}}
}

// LocalStorage returns the storage a device uses: the one named "local", or
// the only one. ok is false when there is none such.
func (c *Config) LocalStorage() (name string, s *StorageConfig, ok bool) {
	if s, ok := c.Storage["local"]; ok {
		return "local", s, true
	}
	if len(c.Storage) == 1 {
		for name, s := range c.Storage {
			return name, s, true
		}
	}
	return "", nil, false
}

// resolve makes path relative to dir, unless it is absolute or empty.
func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
