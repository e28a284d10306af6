// Package errs holds the error sentinels every iotod package shares, in a
// leaf package so that any package can import it. Package pipeline
// re-exports them; most code uses those names.
package errs

import "errors"

// Sentinel errors. Wrap them with fmt.Errorf("…: %w").
var (
	// NotFound: the item, model or component does not exist.
	NotFound = errors.New("not found")
	// Exists: a create found an item at the key already.
	Exists = errors.New("already exists")
	// ConditionFailed: an update or remove required an item that is
	// missing or a condition that does not hold.
	ConditionFailed = errors.New("condition failed")
	// Invalid: input failed validation (schema, type, size, syntax).
	Invalid = errors.New("invalid")
	// TooLarge: an item or payload is over its size limit.
	TooLarge = errors.New("too large")
	// Closed: the component was closed.
	Closed = errors.New("closed")
)
