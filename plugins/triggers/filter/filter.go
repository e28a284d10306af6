// Package filter holds what the delivering triggers (exec, webhook) share:
// the keys that select the changes of a batch they deliver, and the JSON
// form in which they deliver them.
package filter

import (
	"errors"
	"fmt"
	"slices"

	"github.com/iotod/iotod/pipeline"
)

// The values of Filter.Origin.
const (
	// OriginLocal selects changes made on this site (Origin == the site).
	OriginLocal = "local"
	// OriginRemote selects changes made on other sites.
	OriginRemote = "remote"
	// OriginBoth selects every change.
	OriginBoth = "both"
)

// Filter selects the changes a trigger delivers. A trigger's Config holds
// it inline (`yaml:",inline"`), so its keys sit beside the trigger's own.
// Every key narrows the selection; the zero lists select everything.
type Filter struct {
	// Models limits the changes to these models (empty: all).
	Models []string `yaml:"models" desc:"only changes of these models (empty: all)"`
	// Ops limits the changes to these operations (empty: all).
	Ops []pipeline.Op `yaml:"ops" desc:"only these operations: create, update, upsert, remove (empty: all)"`
	// Origin is local (made on this site), remote (made elsewhere) or both.
	Origin string `yaml:"origin" desc:"local (changes made on this site), remote (made on other sites) or both"`

	_ struct{}
}

// NewDefault returns the default Filter: every change.
func NewDefault() Filter { return Filter{Origin: OriginBoth} }

// Validate reports every fault of f, each naming its key. The faults wrap
// pipeline.ErrInvalid.
func (f Filter) Validate() error {
	var errs []error
	for i, m := range f.Models {
		if m == "" {
			errs = append(errs, fmt.Errorf("%w: models[%d]: empty model name", pipeline.ErrInvalid, i))
		}
	}
	for i, op := range f.Ops {
		if !op.Valid() {
			errs = append(errs, fmt.Errorf("%w: ops[%d]: %q is not one of create, update, upsert, remove", pipeline.ErrInvalid, i, op))
		}
	}
	switch f.Origin {
	case OriginLocal, OriginRemote, OriginBoth:
	default:
		errs = append(errs, fmt.Errorf("%w: origin: %q is not one of local, remote, both", pipeline.ErrInvalid, f.Origin))
	}
	return errors.Join(errs...)
}

// Matches reports whether f selects c on site (the Settings.Site of the
// trigger, which a local change has as its Origin).
func (f Filter) Matches(site string, c pipeline.Change) bool {
	if len(f.Models) > 0 && !slices.Contains(f.Models, c.Model) {
		return false
	}
	if len(f.Ops) > 0 && !slices.Contains(f.Ops, c.Op) {
		return false
	}
	switch f.Origin {
	case OriginLocal:
		return c.Origin == site
	case OriginRemote:
		return c.Origin != site
	}
	return true
}

// Select returns the changes of a batch that f selects on site, in their
// order. It returns changes itself when f selects every one of them.
func (f Filter) Select(site string, changes []pipeline.Change) []pipeline.Change {
	for i, c := range changes {
		if f.Matches(site, c) {
			continue
		}
		out := slices.Clone(changes[:i])
		for _, c := range changes[i+1:] {
			if f.Matches(site, c) {
				out = append(out, c)
			}
		}
		return out
	}
	return changes
}
