package schema

import (
	"fmt"
	"strings"

	"github.com/iotod/iotod/errs"
)

// Field returns the model's field called name, or nil.
func (m *Model) Field(name string) *Field {
	return m.Fields[name]
}

// EnabledOn reports whether the model exists on side: a model enabled on
// "cloud" does not exist on the device, and one enabled on "device" not in
// the cloud.
func (m *Model) EnabledOn(side Side) bool {
	return m.Process.Enable == SideBoth || side == SideBoth || m.Process.Enable == side
}

// Syncs reports whether the model's changes replicate at all.
func (p Process) Syncs() bool {
	return p.Sync != SyncNone && p.Sync != ""
}

// Primary returns the primary index.
func (s *Schema) Primary() *Index {
	return s.Indexes["primary"]
}

// Model returns the model called name. The error wraps errs.NotFound
// and lists the known models when there are few.
func (s *Schema) Model(name string) (*Model, error) {
	if m := s.Models[name]; m != nil {
		return m, nil
	}
	const listMax = 12
	known := fmt.Sprintf("%d models", len(s.ModelNames))
	if len(s.ModelNames) <= listMax {
		known = "known: " + strings.Join(s.ModelNames, ", ")
	}
	return nil, fmt.Errorf("schema: model %q: %w (%s)", name, errs.NotFound, known)
}

// EnabledOn returns a view of the schema holding only the models that
// exist on side (see Model.EnabledOn). The view shares models, fields and
// indexes with s.
func (s *Schema) EnabledOn(side Side) *Schema {
	view := *s
	view.Models = make(map[string]*Model, len(s.Models))
	view.ModelNames = nil
	for _, name := range s.ModelNames {
		if m := s.Models[name]; m.EnabledOn(side) {
			view.Models[name] = m
			view.ModelNames = append(view.ModelNames, name)
		}
	}
	return &view
}
