package pipeline

import "errors"

// Sentinel errors shared by every component. Wrap them with fmt.Errorf("…: %w").
var (
	// ErrNotFound: the item, model or component does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create found an item at the key already.
	ErrExists = errors.New("already exists")
	// ErrConditionFailed: an update or remove required an item that is missing
	// or a condition that does not hold.
	ErrConditionFailed = errors.New("condition failed")
	// ErrInvalid: input failed validation (schema, type, size, syntax).
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: an item or payload is over its size limit.
	ErrTooLarge = errors.New("too large")
	// ErrClosed: the component was closed.
	ErrClosed = errors.New("closed")
)

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying. Nil stays nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return permanent{err}
}

// IsPermanent reports whether err, or anything it wraps, was marked
// Permanent, or wraps one of the input errors (ErrInvalid, ErrTooLarge)
// that no retry can fix.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge)
}
