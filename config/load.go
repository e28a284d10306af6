package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path, expanding ${VAR} and ${VAR:-default}
// from the environment. A config with problems returns Errors listing every
// one; a file that cannot be read returns that error.
func Load(path string) (*Config, error) {
	return LoadWith(path, os.LookupEnv)
}

// LoadWith is Load with variables taken from env.
func LoadWith(path string, env Lookup) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	cfg, errs := parse(data, path, dir, env)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse decodes and checks data, the content of file, resolving relative
// paths against dir.
func parse(data []byte, file, dir string, env Lookup) (*Config, Errors) {
	var root, extra yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "the file is empty"}}
		}
		e := &Error{File: file, Msg: err.Error()}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		return nil, Errors{e}
	}
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Errors{{File: file, Line: extra.Line, Msg: "the file must hold one YAML document"}}
	}
	c := &checker{file: file, env: env, lines: map[string]int{}, failed: map[string]bool{}}
	c.expandScalars(&root, "")
	c.check(&root, reflect.TypeFor[Config](), "")

	cfg := NewDefaultConfig()
	// Problems in the tree were reported above: decode what can be, to
	// report the remaining problems too.
	_ = root.Decode(cfg)
	decodeStorage(&root, cfg)
	cfg.File = file
	cfg.Schema = resolve(dir, cfg.Schema)
	cfg.API.Socket = resolve(dir, cfg.API.Socket)
	for _, s := range cfg.Storage {
		s.Badger.Path = resolve(dir, s.Badger.Path)
	}
	v := &validator{checker: c}
	v.validate(cfg)
	slices.SortStableFunc(c.errs, func(a, b *Error) int { return a.Line - b.Line })
	return cfg, c.errs
}

// decodeStorage decodes each storage entry over its defaults (decoding the
// whole map would start each entry from zero).
func decodeStorage(root *yaml.Node, cfg *Config) {
	n := mappingValue(root.Content[0], "storage")
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	if cfg.Storage == nil {
		cfg.Storage = map[string]*StorageConfig{}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		s := newDefaultStorageConfig()
		_ = n.Content[i+1].Decode(s)
		cfg.Storage[n.Content[i].Value] = s
	}
}

// mappingValue returns the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
