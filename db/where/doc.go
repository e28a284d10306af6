// Package where parses and evaluates OneTable `where` filter expressions
// against items held as JSON-like maps (map[string]any).
//
// A filter is compiled once with Parse and then evaluated per item with
// (*Expr).Eval. A parsed Expr is immutable and safe for concurrent use.
//
// # Syntax
//
// The language is DynamoDB's condition-expression language with OneTable's
// notation for names and values (sensedeep/dynamodb-onetable, src/Expression.js,
// Expression.expand):
//
//	${name}        an attribute; dots walk into nested maps (${address.city})
//	               and [n] indexes a list (${readings[0].value})
//	{value}        a literal value, typed as OneTable types it (below)
//	@{name}        the value of substitutions[name], used as given
//	@{...name}     splats a list substitution into an IN list: IN (@{...ids})
//
// Conditions, by precedence from tightest to loosest:
//
//	a = b   a <> b   a < b   a <= b   a > b   a >= b
//	a BETWEEN lo AND hi
//	a IN (b, c, ...)            at most 100 values after splats are expanded
//	attribute_exists(${p})  attribute_not_exists(${p})  attribute_type(${p}, {S})
//	begins_with(${p}, v)    contains(${p}, v)            ( condition )
//	NOT condition
//	condition AND condition
//	condition OR condition
//
// where each operand a, b, v is ${path}, {literal}, @{sub} or size(${path}).
// As in OneTable, a path always splits at ".", so a key that itself holds a
// dot cannot be addressed.
// As in DynamoDB, the keywords AND, OR, NOT, BETWEEN and IN are matched in any
// case (and, And, AND), while function names are case-sensitive and lower
// case. Attribute names must be written ${name}; bare words are rejected.
//
// # Literal values
//
// OneTable reads {value} with the non-greedy pattern {(.*?)}, so a literal
// ends at the first "}" and cannot contain one. Its text is typed exactly as
// OneTable types it:
//
//   - matching ^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$ it is a number: {20},
//     {-1.5}, {.5}, {+3}. Exponents are not numbers: {1e3} is the string "1e3";
//   - wrapped in double quotes it is the string between them: {"20"} is the
//     string "20", {"on"} is "on";
//   - {true} and {false} are booleans;
//   - anything else is the string as written, spaces and all: {on} is "on",
//     { on } is " on ", {'on'} is "'on'" (single quotes are NOT stripped, as in
//     OneTable), {null} is the string "null" (use a nil substitution for NULL).
//
// Substitution values keep their Go type: nil is NULL, bool, string, []byte,
// any Go integer or float, json.Number, a slice (a list) or a map with string
// keys. Other types are rejected by Parse. A substitution that is absent from
// the map is an error; one present with a nil value is NULL (OneTable rejects
// only undefined). @{...name} of a value that is not a list is that one value,
// as in OneTable. Splats are only allowed inside IN (...) and must not be empty
// (OneTable would emit "IN ()", which DynamoDB rejects).
//
// # Evaluation
//
// Eval follows DynamoDB's rules for filter expressions:
//
//   - A missing attribute makes =, <, <=, >, >=, BETWEEN, IN, begins_with and
//     contains false. So does comparing values of different types: the number
//     6 is not equal to the string "6".
//   - a <> b is NOT (a = b), as DynamoDB evaluates it: it is true when the types
//     differ and when either attribute is missing (even both).
//   - Numbers compare numerically whatever their Go type (float64, float32, any
//     int or uint, json.Number); integers compare exactly, also against floats.
//     NaN compares false. Strings and binary compare by byte order. Booleans,
//     NULL, lists and maps support only = and <> (deep equality; list order
//     matters).
//   - contains(s, v) is a substring test when both are strings (or binary), and
//     an element-equality test when s is a list.
//   - size() is the length in bytes of a string or binary, and the element count
//     of a list or map; of anything else it has no value, so comparisons with it
//     are false.
//   - attribute_type types: S string, N number, B []byte, BOOL, NULL (nil), M
//     map, L any list. JSON has no sets, so SS, NS and BS are true for a non-empty
//     list whose elements are all strings, all numbers or all binary.
//
// Errors that DynamoDB would raise at request time for constant operands are
// raised by Parse: an ordered comparison or BETWEEN with a constant that is not
// a number, string or binary, BETWEEN with constant bounds out of order,
// begins_with with a constant that is not a string or binary, and
// attribute_type with an unknown type name.
//
// # Errors and limits
//
// Parse errors are *Error values whose text names the position (1-based byte
// offset into the expression) and what went wrong, for example
//
//	where: position 11: expected value after ">"
//
// They wrap pipeline.ErrInvalid (pipeline.ErrTooLarge for an over-long
// expression), so errors.Is works. Expressions are limited to MaxLength bytes,
// nesting of parentheses and NOT to MaxDepth levels, and IN lists to MaxInValues
// values, so hostile input cannot exhaust the stack or the CPU.
package where
