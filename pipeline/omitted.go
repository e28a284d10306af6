package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// Omitted is a type a build leaves out on purpose, a store of a device
// build, say: the registry names it, with why, where it would otherwise
// call it unknown.
type Omitted struct {
	Kind Kind
	Type string
	// Why completes `storage type "sqlite" is ...`, e.g. "not in this
	// device build (64-bit device builds include badger; the full build
	// has both)".
	Why string
}

// String is the sentence a lookup of the type reports.
func (o Omitted) String() string {
	return fmt.Sprintf("%s type %q is %s", o.Kind, o.Type, o.Why)
}

// Omit records types this build leaves out; one it has is an error, as is
// a duplicate.
func (r *Registry) Omit(os ...Omitted) error {
	for _, o := range os {
		if _, ok := r.byKind[o.Kind][o.Type]; ok {
			return fmt.Errorf("registry: %s type %q is built in, it cannot be omitted", o.Kind, o.Type)
		}
		if _, ok := r.OmittedType(o.Kind, o.Type); ok {
			return fmt.Errorf("registry: %s type %q omitted twice", o.Kind, o.Type)
		}
		if o.Why == "" {
			return fmt.Errorf("registry: %s type %q omitted without a reason", o.Kind, o.Type)
		}
		r.omitted = append(r.omitted, o)
	}
	return nil
}

// OmittedType reports whether kind/typ is a type this build leaves out,
// and why.
func (r *Registry) OmittedType(kind Kind, typ string) (Omitted, bool) {
	for _, o := range r.omitted {
		if o.Kind == kind && o.Type == typ {
			return o, true
		}
	}
	return Omitted{}, false
}

// OmittedTypes lists the types this build leaves out, by kind then type.
func (r *Registry) OmittedTypes() []Omitted {
	out := slices.Clone(r.omitted)
	slices.SortFunc(out, func(a, b Omitted) int {
		if c := slices.Index(Kinds, a.Kind) - slices.Index(Kinds, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out
}
