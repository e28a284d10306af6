package pipeline

import (
	"context"
	"fmt"
)

// MakeFactory returns the Factory of a plugin whose typed config is C
// (handed around as *C): NewDefaultConfig returns a new *C from defaults,
// and Create checks the config's type and Validate before it calls create,
// and names the component in create's errors. Plugins need not write the
// Factory methods by hand.
func MakeFactory[C any, PC interface {
	*C
	Config
}](kind Kind, typ, description string, defaults func() C, create func(ctx context.Context, set Settings, cfg C) (any, error)) Factory {
	return madeFactory[C, PC]{kind: kind, typ: typ, desc: description, defaults: defaults, create: create}
}

type madeFactory[C any, PC interface {
	*C
	Config
}] struct {
	kind     Kind
	typ      string
	desc     string
	defaults func() C
	create   func(context.Context, Settings, C) (any, error)
}

func (f madeFactory[C, PC]) Kind() Kind          { return f.kind }
func (f madeFactory[C, PC]) Type() string        { return f.typ }
func (f madeFactory[C, PC]) Description() string { return f.desc }

func (f madeFactory[C, PC]) NewDefaultConfig() Config {
	c := f.defaults()
	return PC(&c)
}

func (f madeFactory[C, PC]) Create(ctx context.Context, set Settings, cfg Config) (any, error) {
	c, ok := cfg.(PC)
	if !ok || c == nil {
		return nil, fmt.Errorf("%w: %s %s: config is %T, want %T", ErrInvalid, f.typ, f.kind, cfg, PC(nil))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return f.create(ctx, set, *c)
}
