package db

import (
	"fmt"
	"strings"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// CheckItem validates a whole stored item of model against the schema, as
// it arrives from another site: every attribute declared (plus the type
// field and the version), each of the right type and within its enum,
// regex and nested schema, the required ones present, and the type field
// naming the model. Errors wrap pipeline.ErrInvalid and name the attribute.
// For many items, build a Checker once instead.
func CheckItem(s *schema.Schema, model string, item map[string]any) error {
	return NewChecker(s).Check(model, item)
}

// Checker validates whole items against a schema whose models it compiled
// once. It is safe for concurrent use.
type Checker struct {
	models map[string]*model
}

// NewChecker compiles every model of s.
func NewChecker(s *schema.Schema) *Checker {
	c := &Checker{models: make(map[string]*model, len(s.Models))}
	for name, sm := range s.Models {
		c.models[name] = compileModel(s, sm, schema.SideDevice)
	}
	return c
}

// Check is CheckItem with the compiled models.
func (c *Checker) Check(model string, item map[string]any) error {
	m, ok := c.models[model]
	if !ok {
		return fmt.Errorf("%w: unknown model %q", pipeline.ErrNotFound, model)
	}
	return m.check(item)
}

func (m *model) check(item map[string]any) error {
	for k, v := range item {
		path := m.Name + "." + k
		switch {
		case k == m.typeField:
			if sv, ok := v.(string); !ok || sv != m.Name {
				return invalid(path, "must be %q", m.Name)
			}
			continue
		case k == VersionAttr:
			sv, ok := v.(string)
			if !ok {
				return invalid(path, "want a version string")
			}
			if _, err := pipeline.ParseVersion(sv); err != nil {
				return invalid(path, "%v", err)
			}
			continue
		}
		f, ok := m.Fields[k]
		if !ok {
			return invalid(path, "unknown attribute (the model declares %s)", strings.Join(m.FieldNames, ", "))
		}
		if v == nil {
			continue
		}
		if f.Value != "" {
			if _, ok := v.(string); !ok {
				return invalid(path, "want a string, got %s", typeName(v))
			}
			continue
		}
		if _, err := m.castValue(path, f, v, false); err != nil {
			return err
		}
	}
	return m.checkRequired(item)
}
