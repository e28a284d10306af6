package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotod/iotod/schema"
)

// Kind is a plugin kind: it says which slot of a pipeline a component fits.
type Kind string

// The plugin kinds.
const (
	KindStorage   Kind = "storage"
	KindTransport Kind = "transport"
	KindStage     Kind = "stage"
	KindTrigger   Kind = "trigger"
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{KindStorage, KindTransport, KindStage, KindTrigger}

var (
	typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)
)

// ID names a component as type[/name]: "batch", "policy/strict".
type ID struct {
	Type string
	Name string
}

// ParseID reads "type[/name]". Types are lower_snake_case.
func ParseID(s string) (ID, error) {
	typ, name, hasName := strings.Cut(s, "/")
	if !typePattern.MatchString(typ) {
		return ID{}, fmt.Errorf("%w: %q is not a component id: the type must match %s", ErrInvalid, s, typePattern)
	}
	if hasName && !namePattern.MatchString(name) {
		return ID{}, fmt.Errorf("%w: %q is not a component id: the name must match %s", ErrInvalid, s, namePattern)
	}
	return ID{Type: typ, Name: name}, nil
}

func (id ID) String() string {
	if id.Name == "" {
		return id.Type
	}
	return id.Type + "/" + id.Name
}

// Config is a component's typed, user-facing configuration: a pointer to a
// struct with yaml tags (and `desc` tags that document each field). Validate
// reports every fault, each naming its field; it is fast and pure.
type Config interface {
	Validate() error
}

// Settings is what the framework hands a component besides its Config.
type Settings struct {
	ID     ID
	Kind   Kind
	Site   string
	Logger *slog.Logger
	// Metrics registers the component's metrics; never nil.
	Metrics prometheus.Registerer
	// Schema is the loaded schema (nil when the config has none).
	Schema *schema.Schema
	// Dir is the config file's folder, for resolving relative paths.
	Dir string
	// Transport finds a configured transport by name, for triggers that
	// publish (nil, or false, when there is none).
	Transport func(name string) (Transport, bool)
}

// Checker is implemented by configs that can be checked further than
// Validate does, by `iotod validate`, without running anything for good:
// an external plugin's config, which only the plugin can check.
type Checker interface {
	Check(ctx context.Context, set Settings) error
}

// Factory makes components of one type of one kind.
type Factory interface {
	Kind() Kind
	Type() string
	// Description is one line for `iotod plugins list`.
	Description() string
	// NewDefaultConfig returns a new config holding every default.
	NewDefaultConfig() Config
	// Create builds the component from a validated config. What it returns
	// depends on the kind: pipeline.Store for storage, Transport, Stage
	// (or Batcher) for stages, Trigger for triggers.
	Create(ctx context.Context, set Settings, cfg Config) (any, error)
}

// Registry holds the factories a process knows, per kind. It is a value
// built in main and passed in; there is no global registry.
type Registry struct {
	byKind  map[Kind]map[string]Factory
	omitted []Omitted // types this build leaves out (omitted.go)
}

// NewRegistry builds a registry; a duplicate kind/type is an error.
func NewRegistry(fs ...Factory) (*Registry, error) {
	r := &Registry{byKind: map[Kind]map[string]Factory{}}
	for _, f := range fs {
		if !typePattern.MatchString(f.Type()) {
			return nil, fmt.Errorf("registry: %s type %q does not match %s", f.Kind(), f.Type(), typePattern)
		}
		m := r.byKind[f.Kind()]
		if m == nil {
			m = map[string]Factory{}
			r.byKind[f.Kind()] = m
		}
		if _, dup := m[f.Type()]; dup {
			return nil, fmt.Errorf("registry: duplicate %s type %q", f.Kind(), f.Type())
		}
		m[f.Type()] = f
	}
	return r, nil
}

// Lookup finds the factory of kind/typ; the error lists the known types.
func (r *Registry) Lookup(kind Kind, typ string) (Factory, error) {
	if f, ok := r.byKind[kind][typ]; ok {
		return f, nil
	}
	if o, ok := r.OmittedType(kind, typ); ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, o)
	}
	return nil, fmt.Errorf("%w: unknown %s type %q (known: %s)", ErrNotFound, kind, typ, strings.Join(r.Types(kind), ", "))
}

// Types lists the types of kind, sorted.
func (r *Registry) Types(kind Kind) []string {
	out := make([]string, 0, len(r.byKind[kind]))
	for t := range r.byKind[kind] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Factories lists every factory, by kind then type.
func (r *Registry) Factories() []Factory {
	var out []Factory
	for _, k := range Kinds {
		for _, t := range r.Types(k) {
			out = append(out, r.byKind[k][t])
		}
	}
	return out
}
