package where

import (
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// Limits on what Parse accepts.
const (
	// MaxLength is the longest expression, in bytes.
	MaxLength = 4096
	// MaxDepth is the deepest nesting of parentheses and NOT.
	MaxDepth = 32
	// MaxInValues is the most values an IN list may hold, as in DynamoDB.
	MaxInValues = 100
)

// Error is a parse error: what went wrong and where.
type Error struct {
	// Pos is the 1-based byte offset in the expression; 0 when the error is
	// about the whole expression.
	Pos int
	// Msg says what went wrong.
	Msg string
	// Err is the sentinel the error wraps: pipeline.ErrInvalid or
	// pipeline.ErrTooLarge.
	Err error
}

func (e *Error) Error() string {
	if e.Pos > 0 {
		return fmt.Sprintf("where: position %d: %s", e.Pos, e.Msg)
	}
	return "where: " + e.Msg
}

// Unwrap returns the sentinel, so errors.Is(err, pipeline.ErrInvalid) holds.
func (e *Error) Unwrap() error { return e.Err }

// errorf makes an ErrInvalid parse error at pos (0-based; stored 1-based).
func errorf(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos + 1, Msg: fmt.Sprintf(format, args...), Err: pipeline.ErrInvalid}
}
