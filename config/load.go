package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

// Load reads the config files at paths, later files overriding earlier
// ones, expanding ${VAR} and ${VAR:-default} from the environment, and
// decodes every plugin's keys into the config of its factory in reg. A
// config with problems returns Errors listing every one (each matches
// pipeline.ErrInvalid); a file that cannot be read returns that error.
func Load(reg *pipeline.Registry, paths ...string) (*Config, error) {
	return LoadWith(reg, os.LookupEnv, paths...)
}

// LoadWith is Load with variables taken from env.
func LoadWith(reg *pipeline.Registry, env Lookup, paths ...string) (*Config, error) {
	if reg == nil {
		return nil, errors.New("load config: no plugin registry")
	}
	if len(paths) == 0 {
		return nil, errors.New("load config: no file given")
	}
	dir, err := filepath.Abs(filepath.Dir(paths[0]))
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", paths[0], err)
	}
	l := &loader{reg: reg, env: env, files: paths, dir: dir,
		origin: map[*yaml.Node]string{}, lines: map[string]pos{}, failed: map[string]bool{}}
	var root *yaml.Node
	unreadable := false
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		n := l.parseFile(data, path)
		if n == nil {
			// Checking the others without this file would only report
			// what it should have set.
			unreadable = true
			continue
		}
		root = merge(root, n)
	}
	var cfg *Config
	if !unreadable {
		cfg = l.build(root)
	}
	if len(l.errs) > 0 {
		l.sortErrors()
		return nil, l.errs
	}
	return cfg, nil
}

// loader holds the state of one Load.
type loader struct {
	reg   *pipeline.Registry
	env   Lookup
	files []string
	dir   string
	// current is the file being parsed.
	current string
	// origin is the file each node of the merged tree came from.
	origin map[*yaml.Node]string
	// lines is where each key path was written.
	lines map[string]pos
	// failed holds the paths already reported: one mistake is one error.
	failed map[string]bool
	errs   Errors
	// schemaText is the schema path as written.
	schemaText string
}

// sortErrors orders the errors by file (in merge order), then line.
func (l *loader) sortErrors() {
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		if fa, fb := slices.Index(l.files, a.File), slices.Index(l.files, b.File); fa != fb {
			return fa - fb
		}
		return a.Line - b.Line
	})
}

// The top-level keys, in the order they are decoded.
var topKeys = []string{"site", "log", "schema", "api", "max_clock_skew", "memory_limit", "dead_letters", "storage", "transports", "broker", "pipelines"}

var stringType = reflect.TypeFor[string]()

// build decodes and checks the merged tree.
func (l *loader) build(root *yaml.Node) *Config {
	cfg := newDefaultConfig()
	cfg.Files = slices.Clone(l.files)
	cfg.Dir = l.dir
	l.lines[""] = l.pos(root)
	l.checkMapping(root, "", func(key string) reflect.Type {
		if slices.Contains(topKeys, key) {
			return handledType
		}
		return nil
	}, slices.Sorted(slices.Values(topKeys)))
	if root.Kind != yaml.MappingNode {
		return cfg
	}
	cfg.Site = l.str(mappingValue(root, "site"), "site")
	if n := mappingValue(root, "log"); n != nil {
		l.logSection(n, &cfg.Log)
	}
	if n := mappingValue(root, "dead_letters"); n != nil {
		l.decode(n, "dead_letters", &cfg.DeadLetters)
		if d := cfg.DeadLetters; d.MaxSize < 64*pipeline.Kilobyte || d.MaxSize > pipeline.Gigabyte {
			l.report("dead_letters.max_size", "must be between 64KB and 1GB, got %s", d.MaxSize)
		}
		if d := cfg.DeadLetters; d.Keep < 0 || d.Keep > 100 {
			l.report("dead_letters.keep", "must be between 0 and 100, got %d", d.Keep)
		}
	}
	if n := mappingValue(root, "max_clock_skew"); n != nil {
		l.decode(n, "max_clock_skew", &cfg.MaxClockSkew)
		if cfg.MaxClockSkew <= 0 && !l.failed["max_clock_skew"] {
			l.report("max_clock_skew", "must be positive, got %s", cfg.MaxClockSkew)
		}
	}
	if n := mappingValue(root, "memory_limit"); n != nil {
		l.decode(n, "memory_limit", &cfg.MemoryLimit)
		if (cfg.MemoryLimit < 16*pipeline.Megabyte || cfg.MemoryLimit > 1<<40) && !l.failed["memory_limit"] {
			l.report("memory_limit", "must be between 16MB and 1TB, got %s", cfg.MemoryLimit)
		}
	}
	l.schemaText = l.str(mappingValue(root, "schema"), "schema")
	cfg.Schema = resolve(l.dir, l.schemaText)
	if n := mappingValue(root, "api"); n != nil {
		l.decode(n, "api", &cfg.API)
		cfg.API.Socket = resolve(l.dir, cfg.API.Socket)
	}
	l.entries(mappingValue(root, "storage"), "storage", func(name string, n *yaml.Node, path string) {
		if s := l.storageEntry(name, n, path, cfg.Site); s != nil {
			cfg.Storage[name] = s
		}
	})
	l.entries(mappingValue(root, "transports"), "transports", func(name string, n *yaml.Node, path string) {
		if t := l.transportEntry(name, n, path); t != nil {
			cfg.Transports[name] = t
		}
	})
	// After the transports: a broker's max_packet follows their max_payload.
	if n := mappingValue(root, "broker"); n != nil {
		cfg.Broker = l.brokerSection(n, cfg.Transports)
	}
	l.entries(mappingValue(root, "pipelines"), "pipelines", func(name string, n *yaml.Node, path string) {
		if p := l.pipelineEntry(name, n, path); p != nil {
			cfg.Pipelines[name] = p
		}
	})
	l.validate(cfg)
	return cfg
}

// str checks that n is a single value and returns it ("" when absent or
// faulty).
func (l *loader) str(n *yaml.Node, path string) string {
	if isNull(n) {
		return ""
	}
	l.check(n, stringType, path)
	if l.failed[path] {
		return ""
	}
	return n.Value
}

// decode checks n against out's type and decodes what is right into out,
// over the values out already holds.
func (l *loader) decode(n *yaml.Node, path string, out any) {
	l.check(n, reflect.TypeOf(out), path)
	if isNull(n) || l.failed[path] {
		return
	}
	if err := l.pruned(n, path).Decode(out); err != nil {
		l.failNode(n, path, "%v", err)
	}
}

// entries calls fn for each name: value pair of the mapping n at path.
func (l *loader) entries(n *yaml.Node, path string, fn func(name string, v *yaml.Node, path string)) {
	if isNull(n) {
		return
	}
	l.checkMapping(n, path, func(string) reflect.Type { return handledType }, nil)
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		p := join(path, k.Value)
		if !componentName.MatchString(k.Value) {
			l.failNode(k, p, "the name must match %s", componentName)
			continue
		}
		fn(k.Value, n.Content[i+1], p)
	}
}
