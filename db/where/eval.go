package where

import (
	"bytes"
	"strings"
)

// Expr is a parsed where expression. The zero of *Expr (nil) matches every
// item. An Expr is immutable and safe for concurrent use.
type Expr struct {
	src   string
	root  cond
	attrs []string
}

// Eval reports whether item satisfies the expression. A nil Expr matches
// every item.
func (e *Expr) Eval(item map[string]any) bool {
	if e == nil {
		return true
	}
	return e.root.eval(item)
}

// Attributes returns the top-level attribute names the expression refers to,
// each once, in order of first use. ${address.city} yields "address". Names
// are returned as written; mapping schema property names to stored attribute
// names is the caller's business.
func (e *Expr) Attributes() []string {
	if e == nil {
		return nil
	}
	return append([]string(nil), e.attrs...)
}

// String returns the expression as it was parsed.
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	return e.src
}

// step is one segment of a path: a map key, or a list index when key is "".
type step struct {
	key   string
	index int
}

// path is a parsed ${a.b[0]} reference.
type path []step

// resolve walks the item; ok is false when any step is missing.
func (p path) resolve(item map[string]any) (any, bool) {
	var cur any = item
	for _, s := range p {
		if s.key != "" {
			m, ok := cur.(map[string]any)
			if !ok {
				v := toVal(cur)
				if v.k != kMap {
					return nil, false
				}
				m = v.m
			}
			if cur, ok = m[s.key]; !ok {
				return nil, false
			}
			continue
		}
		v := toVal(cur)
		if v.k != kList || s.index >= len(v.list) {
			return nil, false
		}
		cur = v.list[s.index]
	}
	return cur, true
}

// operand yields a value; ok is false when it has none (a missing attribute).
type operand interface {
	value(item map[string]any) (val, bool)
}

type constOp struct{ v val }

func (c constOp) value(map[string]any) (val, bool) { return c.v, true }

type pathOp struct{ p path }

func (o pathOp) value(item map[string]any) (val, bool) {
	v, ok := o.p.resolve(item)
	if !ok {
		return val{}, false
	}
	return toVal(v), true
}

type sizeOp struct{ p path }

func (o sizeOp) value(item map[string]any) (val, bool) {
	v, ok := o.p.resolve(item)
	if !ok {
		return val{}, false
	}
	x := toVal(v)
	var n int
	switch x.k {
	case kStr:
		n = len(x.s)
	case kBin:
		n = len(x.b)
	case kList:
		n = len(x.list)
	case kMap:
		n = len(x.m)
	default:
		return val{}, false
	}
	return numVal(number{i: int64(n), isInt: true}), true
}

// cond is a condition node.
type cond interface {
	eval(item map[string]any) bool
}

type andCond []cond

func (c andCond) eval(item map[string]any) bool {
	for _, x := range c {
		if !x.eval(item) {
			return false
		}
	}
	return true
}

type orCond []cond

func (c orCond) eval(item map[string]any) bool {
	for _, x := range c {
		if x.eval(item) {
			return true
		}
	}
	return false
}

type notCond struct{ c cond }

func (c notCond) eval(item map[string]any) bool { return !c.c.eval(item) }

type cmpCond struct {
	op   string
	l, r operand
}

func (c cmpCond) eval(item map[string]any) bool {
	l, lok := c.l.value(item)
	r, rok := c.r.value(item)
	if c.op == "<>" {
		return !(lok && rok && equal(l, r))
	}
	if !lok || !rok {
		return false
	}
	if c.op == "=" {
		return equal(l, r)
	}
	o, ok := order(l, r)
	if !ok {
		return false
	}
	switch c.op {
	case "<":
		return o < 0
	case "<=":
		return o <= 0
	case ">":
		return o > 0
	}
	return o >= 0
}

type betweenCond struct{ x, lo, hi operand }

func (c betweenCond) eval(item map[string]any) bool {
	x, ok1 := c.x.value(item)
	lo, ok2 := c.lo.value(item)
	hi, ok3 := c.hi.value(item)
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	a, ok1 := order(x, lo)
	b, ok2 := order(x, hi)
	return ok1 && ok2 && a >= 0 && b <= 0
}

type inCond struct {
	x    operand
	list []operand
}

func (c inCond) eval(item map[string]any) bool {
	x, ok := c.x.value(item)
	if !ok {
		return false
	}
	for _, o := range c.list {
		if v, ok := o.value(item); ok && equal(x, v) {
			return true
		}
	}
	return false
}

type existsCond struct {
	p    path
	want bool
}

func (c existsCond) eval(item map[string]any) bool {
	_, ok := c.p.resolve(item)
	return ok == c.want
}

type funcCond struct {
	name string // attribute_type, begins_with or contains
	p    path
	arg  operand
}

func (c funcCond) eval(item map[string]any) bool {
	raw, ok := c.p.resolve(item)
	if !ok {
		return false
	}
	arg, ok := c.arg.value(item)
	if !ok {
		return false
	}
	v := toVal(raw)
	switch c.name {
	case "attribute_type":
		return arg.k == kStr && hasType(v, arg.s)
	case "begins_with":
		switch {
		case v.k == kStr && arg.k == kStr:
			return strings.HasPrefix(v.s, arg.s)
		case v.k == kBin && arg.k == kBin:
			return bytes.HasPrefix(v.b, arg.b)
		}
		return false
	}
	// contains
	switch {
	case v.k == kStr && arg.k == kStr:
		return strings.Contains(v.s, arg.s)
	case v.k == kBin && arg.k == kBin:
		return bytes.Contains(v.b, arg.b)
	case v.k == kList:
		for _, e := range v.list {
			if equal(toVal(e), arg) {
				return true
			}
		}
	}
	return false
}

// validTypes are the type names attribute_type accepts.
var validTypes = map[string]bool{
	"S": true, "N": true, "B": true, "BOOL": true, "NULL": true,
	"M": true, "L": true, "SS": true, "NS": true, "BS": true,
}

// hasType is attribute_type. JSON has no sets, so a set type matches a
// non-empty list whose elements all have the element type.
func hasType(v val, t string) bool {
	if name := typeName(v); name == t {
		return true
	}
	var elem kind
	switch t {
	case "SS":
		elem = kStr
	case "NS":
		elem = kNum
	case "BS":
		elem = kBin
	default:
		return false
	}
	if v.k != kList || len(v.list) == 0 {
		return false
	}
	for _, e := range v.list {
		if toVal(e).k != elem {
			return false
		}
	}
	return true
}
