package pipeline

import (
	"errors"
	"fmt"

	"github.com/iotod/iotod/errs"
)

// Sentinel errors shared by every component (defined in package errs).
// Wrap them with fmt.Errorf("…: %w").
var (
	// ErrNotFound: the item, model or component does not exist.
	ErrNotFound = errs.NotFound
	// ErrExists: a create found an item at the key already.
	ErrExists = errs.Exists
	// ErrConditionFailed: an update or remove required an item that is missing
	// or a condition that does not hold.
	ErrConditionFailed = errs.ConditionFailed
	// ErrInvalid: input failed validation (schema, type, size, syntax).
	ErrInvalid = errs.Invalid
	// ErrTooLarge: an item or payload is over its size limit.
	ErrTooLarge = errs.TooLarge
	// ErrClosed: the component was closed.
	ErrClosed = errs.Closed
)

// ErrTxTooLarge is a transaction over the store's size bound (badger's):
// the writes are fine, there are too many of them at once; fewer per
// transaction succeed. It wraps ErrTooLarge.
var ErrTxTooLarge = fmt.Errorf("the store's transaction is too large: %w", ErrTooLarge)

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
