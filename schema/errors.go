package schema

import (
	"errors"
	"fmt"

	"github.com/iotod/iotod/errs"
)

// Fault is one problem found in a schema, at a path inside it. Load, Parse
// and ParseBytes return every fault they find, joined with errors.Join; each
// fault wraps errs.Invalid (and its cause, if any), so
// errors.Is(err, errs.Invalid) holds for the joined error. Use
// errors.As to get at one Fault.
type Fault struct {
	// Source names the file (or the source given to Parse).
	Source string
	// Path is where in the document, e.g. "models.Status.temp.type".
	Path string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying cause, if any (an I/O or syntax error).
	Err error
}

func (f *Fault) Error() string {
	s := f.Msg
	if f.Path != "" {
		s = f.Path + ": " + s
	}
	if f.Source != "" {
		s = f.Source + ": " + s
	}
	return s
}

// Unwrap gives errs.Invalid and the cause.
func (f *Fault) Unwrap() []error {
	if f.Err != nil {
		return []error{errs.Invalid, f.Err}
	}
	return []error{errs.Invalid}
}

// faults gathers the faults of one source.
type faults struct {
	source string
	list   []error
}

// add records a fault at path.
func (fs *faults) add(path, format string, args ...any) {
	fs.list = append(fs.list, &Fault{Source: fs.source, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addErr records err as is (a fault from another source, say).
func (fs *faults) addErr(err error) {
	if err != nil {
		fs.list = append(fs.list, err)
	}
}

// err joins what was gathered; nil if nothing was.
func (fs *faults) err() error {
	return errors.Join(fs.list...)
}

// join makes a child path: join("models", "User") is "models.User".
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Faults lists the faults err holds, in order (nil if none): the leaves of
// what Load, Parse or ParseBytes returned, for a caller that shows them one
// per line.
func Faults(err error) []*Fault {
	switch t := err.(type) {
	case nil:
		return nil
	case *Fault:
		return []*Fault{t}
	case interface{ Unwrap() []error }:
		var out []*Fault
		for _, e := range t.Unwrap() {
			out = append(out, Faults(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return Faults(t.Unwrap())
	}
	return nil
}
