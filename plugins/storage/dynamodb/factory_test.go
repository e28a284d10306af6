package dynamodb

import (
	"errors"
	"testing"

	"github.com/iotod/iotod/pipeline"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Kind() != pipeline.KindStorage || f.Type() != "dynamodb" || f.Description() == "" {
		t.Fatalf("kind %q type %q description %q", f.Kind(), f.Type(), f.Description())
	}
	cfg, ok := f.NewDefaultConfig().(*Config)
	if !ok || *cfg != NewDefaultConfig() {
		t.Fatalf("default config %#v", f.NewDefaultConfig())
	}
	set := pipeline.Settings{ID: pipeline.ID{Type: "dynamodb", Name: "cloud"}}
	if _, err := f.Create(t.Context(), set, cfg); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("create without a table: %v", err)
	}
	if _, err := f.Create(t.Context(), set, NewDefaultConfig()); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("create with a Config value, not a pointer: %v", err)
	}

	// The layout comes from the settings' schema.
	live := testConfig(t)
	set.Schema = testSchema(t)
	s, err := f.Create(t.Context(), set, &live)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	st, ok := s.(*Store)
	if !ok {
		t.Fatalf("created a %T, not a *Store", s)
	}
	defer st.Close(t.Context())
	if st.l.byName["gs2"] == nil || st.l.ttlAttr != "expires" {
		t.Fatalf("layout not from the schema: %+v", st.l)
	}
}
