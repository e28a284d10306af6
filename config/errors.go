package config

import (
	"fmt"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// Error is one problem found in a config file, with its place.
type Error struct {
	// File is the config file's path as given to Load.
	File string
	// Line is the 1-based line of the offending key or value; 0 if unknown.
	Line int
	// Path is the dotted key path, such as "storage.local.durability";
	// empty for a problem with the whole file.
	Path string
	Msg  string
}

// Error formats the problem as "file:line: path: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every config error match pipeline.ErrInvalid.
func (e *Error) Unwrap() error { return pipeline.ErrInvalid }

// Errors is every problem found in one config file, in file order.
type Errors []*Error

// Error lists the problems, one a line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.Is and errors.As see each one.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
