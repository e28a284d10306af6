package where

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// condFuncs are the functions that are conditions; size is an operand.
var condFuncs = map[string]bool{
	"attribute_exists":     true,
	"attribute_not_exists": true,
	"attribute_type":       true,
	"begins_with":          true,
	"contains":             true,
}

// numberRe is OneTable's test for a numeric {value}.
var numberRe = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// literal types the text of {value} as OneTable's Expression.expand does.
func literal(s string) val {
	if numberRe.MatchString(s) {
		if n, ok := parseNumber(s); ok {
			return numVal(n)
		}
	}
	// OneTable's /^"(.*)"$/ has no s flag: "." stops at line breaks.
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.ContainsAny(s, "\n\r\u2028\u2029") {
		return val{k: kStr, s: s[1 : len(s)-1]}
	}
	switch s {
	case "true":
		return val{k: kBool, t: true}
	case "false":
		return val{k: kBool}
	}
	return val{k: kStr, s: s}
}

// parseOperand parses one value operand; after is the token before it.
func (p *parser) parseOperand(after token) (operand, error) {
	ops, err := p.parseOperands(after, "value", false)
	if err != nil {
		return nil, err
	}
	return ops[0], nil
}

// parseOperands parses one operand, or the values of a splat when allowed.
// what names the expected thing for errors.
func (p *parser) parseOperands(after token, what string, splat bool) ([]operand, error) {
	t := p.peek()
	switch t.kind {
	case tPath:
		p.next()
		pa, err := p.path(t)
		if err != nil {
			return nil, err
		}
		return []operand{pathOp{pa}}, nil
	case tValue:
		p.next()
		return []operand{constOp{literal(t.text)}}, nil
	case tSub:
		p.next()
		return p.substitute(t, splat)
	case tWord:
		if p.toks[p.i+1].kind == tLParen {
			switch {
			case t.text == "size":
				pa, _, err := p.parseCall(false)
				if err != nil {
					return nil, err
				}
				return []operand{sizeOp{pa}}, nil
			case condFuncs[t.text]:
				return nil, errorf(t.pos, "%s() is a condition and cannot be used as a value", t.text)
			}
			if lower := strings.ToLower(t.text); lower == "size" || condFuncs[lower] {
				return nil, errorf(t.pos, "unknown function %q (function names are case-sensitive: %s)", t.text, lower)
			}
			return nil, errorf(t.pos, "unknown function %q", t.text)
		}
		if !isKeyword(t.text) {
			return nil, errorf(t.pos, "unexpected word %q (attribute names are written ${%s}, values {%s})", t.text, t.text, t.text)
		}
	}
	if p.i == 0 {
		return nil, errorf(t.pos, "expected %s, found %s", what, t)
	}
	return nil, p.expected(what, after)
}

func isKeyword(w string) bool {
	for _, kw := range [...]string{"AND", "OR", "NOT", "BETWEEN", "IN"} {
		if strings.EqualFold(w, kw) {
			return true
		}
	}
	return false
}

// substitute resolves @{name} or @{...name}.
func (p *parser) substitute(t token, splat bool) ([]operand, error) {
	v, ok := p.subs[t.text]
	if !ok {
		return nil, errorf(t.pos, "unknown substitution %s", t)
	}
	if !t.splat {
		c, err := subValue(t, v)
		if err != nil {
			return nil, err
		}
		return []operand{c}, nil
	}
	if !splat {
		return nil, errorf(t.pos, "%s splats a list and is only allowed in an IN (...) list", t)
	}
	rv := reflect.ValueOf(v)
	if v == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) || rv.Type().Elem().Kind() == reflect.Uint8 {
		c, err := subValue(t, v) // OneTable: a splat of a non-list is that value
		if err != nil {
			return nil, err
		}
		return []operand{c}, nil
	}
	if rv.Len() == 0 {
		return nil, errorf(t.pos, "%s is an empty list", t)
	}
	if rv.Len() > MaxInValues {
		return nil, errorf(t.pos, "%s has %d values, over the IN limit of %d", t, rv.Len(), MaxInValues)
	}
	ops := make([]operand, rv.Len())
	for i := range ops {
		c, err := subValue(t, rv.Index(i).Interface())
		if err != nil {
			return nil, err
		}
		ops[i] = c
	}
	return ops, nil
}

func subValue(t token, v any) (constOp, error) {
	x := toVal(v)
	if x.k == kInvalid {
		return constOp{}, errorf(t.pos, "substitution %s has unsupported type %T", t, v)
	}
	return constOp{x}, nil
}

// parseFunc parses a condition function call.
func (p *parser) parseFunc() (cond, error) {
	name := p.peek()
	if name.text == "attribute_exists" || name.text == "attribute_not_exists" {
		pa, _, err := p.parseCall(false)
		if err != nil {
			return nil, err
		}
		return existsCond{p: pa, want: name.text == "attribute_exists"}, nil
	}
	pa, arg, err := p.parseCall(true)
	if err != nil {
		return nil, err
	}
	if c, ok := arg.(constOp); ok {
		at := p.argPos
		switch {
		case name.text == "attribute_type" && (c.v.k != kStr || !validTypes[c.v.s]):
			return nil, errorf(at, "attribute_type: unknown type %v (want S, N, B, BOOL, NULL, M, L, SS, NS or BS)", describe(c.v))
		case name.text == "begins_with" && c.v.k != kStr && c.v.k != kBin:
			return nil, errorf(at, "begins_with needs a string or binary value, not %s", describe(c.v))
		}
	}
	return funcCond{name: name.text, p: pa, arg: arg}, nil
}

// parseCall parses name "(" ${path} ")" or, withArg, name "(" ${path} ","
// operand ")". The caller has seen name followed by "(".
func (p *parser) parseCall(withArg bool) (path, operand, error) {
	name := p.next()
	open := p.next()
	t := p.peek()
	if t.kind != tPath {
		return nil, nil, p.expected(fmt.Sprintf("an attribute ${name} as the first argument of %s", name.text), open)
	}
	p.next()
	pa, err := p.path(t)
	if err != nil {
		return nil, nil, err
	}
	var arg operand
	if withArg {
		if p.peek().kind != tComma {
			return nil, nil, p.expected(fmt.Sprintf("\",\" and a second argument of %s", name.text), t)
		}
		comma := p.next()
		p.argPos = p.peek().pos
		arg, err = p.parseOperand(comma)
		if err != nil {
			return nil, nil, err
		}
	}
	if err := p.close(open, fmt.Sprintf("\")\" to end %s(", name.text)); err != nil {
		return nil, nil, err
	}
	return pa, arg, nil
}

// describe renders a constant for error messages.
func describe(v val) string {
	switch v.k {
	case kStr:
		return strconv.Quote(v.s)
	case kNum:
		if v.n.isInt {
			return strconv.FormatInt(v.n.i, 10)
		}
		return strconv.FormatFloat(v.n.f, 'g', -1, 64)
	case kBool:
		return strconv.FormatBool(v.t)
	}
	return "a " + typeName(v) + " value"
}

// path parses the text of a ${...} token: names joined by ".", each name
// optionally followed by [n] list indexes.
func (p *parser) path(t token) (path, error) {
	var pa path
	for part := range strings.SplitSeq(t.text, ".") {
		name, idxs := part, ""
		if i := strings.IndexByte(part, '['); i >= 0 {
			name, idxs = part[:i], part[i:]
		}
		if name == "" || strings.ContainsAny(name, "] \t\n\r") {
			return nil, errorf(t.pos, "invalid attribute reference %s", t)
		}
		pa = append(pa, step{key: name})
		if len(pa) == 1 && !p.seen[name] {
			p.seen[name] = true
			p.attrs = append(p.attrs, name)
		}
		for idxs != "" {
			end := strings.IndexByte(idxs, ']')
			if idxs[0] != '[' || end < 2 || end > 10 || strings.Trim(idxs[1:end], "0123456789") != "" {
				return nil, errorf(t.pos, "invalid list index in %s", t)
			}
			n, _ := strconv.Atoi(idxs[1:end])
			pa = append(pa, step{index: n})
			idxs = idxs[end+1:]
		}
	}
	return pa, nil
}
