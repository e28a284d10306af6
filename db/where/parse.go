package where

import (
	"fmt"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// Parse compiles a where expression. subs fills @{name} placeholders; it may
// be nil when the expression has none.
func Parse(expr string, subs map[string]any) (*Expr, error) {
	if len(expr) > MaxLength {
		return nil, &Error{
			Msg: fmt.Sprintf("expression is %d bytes, over the %d-byte limit", len(expr), MaxLength),
			Err: pipeline.ErrTooLarge,
		}
	}
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tEOF {
		return nil, &Error{Msg: "empty expression", Err: pipeline.ErrInvalid}
	}
	p := &parser{toks: toks, subs: subs, seen: map[string]bool{}}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	switch t := p.peek(); t.kind {
	case tEOF:
	case tRParen:
		return nil, errorf(t.pos, "unbalanced parentheses: unexpected \")\"")
	default:
		return nil, errorf(t.pos, "unexpected %s after a complete condition (expected AND, OR or the end)", t)
	}
	return &Expr{src: expr, root: root, attrs: p.attrs}, nil
}

type parser struct {
	toks  []token
	i     int
	subs  map[string]any
	depth int
	attrs []string
	seen  map[string]bool
	// argPos is where the second argument of the last function call began.
	argPos int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// isWord reports whether the next token is the keyword kw, in any case.
func (p *parser) isWord(kw string) bool {
	t := p.peek()
	return t.kind == tWord && strings.EqualFold(t.text, kw)
}

// enter counts one level of nesting at t.
func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > MaxDepth {
		return errorf(t.pos, "nesting is deeper than %d levels", MaxDepth)
	}
	return nil
}

// expected reports that what was wanted after the token prev.
func (p *parser) expected(what string, prev token) error {
	t := p.peek()
	if t.kind == tEOF {
		return errorf(t.pos, "expected %s after %s", what, prev)
	}
	return errorf(t.pos, "expected %s after %s, found %s", what, prev, t)
}

func (p *parser) parseOr() (cond, error) {
	return p.parseList("OR", p.parseAnd, func(cs []cond) cond { return orCond(cs) })
}

func (p *parser) parseAnd() (cond, error) {
	return p.parseList("AND", p.parseNot, func(cs []cond) cond { return andCond(cs) })
}

// parseList parses operands joined by the keyword kw into one n-ary node.
func (p *parser) parseList(kw string, operand func() (cond, error), join func([]cond) cond) (cond, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	cs := []cond{first}
	for p.isWord(kw) {
		p.next()
		c, err := operand()
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	if len(cs) == 1 {
		return first, nil
	}
	return join(cs), nil
}

func (p *parser) parseNot() (cond, error) {
	if !p.isWord("NOT") {
		return p.parsePrimary()
	}
	t := p.next()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	c, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	p.depth--
	return notCond{c}, nil
}

func (p *parser) parsePrimary() (cond, error) {
	t := p.peek()
	switch t.kind {
	case tLParen:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		p.next()
		c, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.close(t, "AND, OR or \")\""); err != nil {
			return nil, err
		}
		p.depth--
		return c, nil
	case tRParen:
		return nil, errorf(t.pos, "unbalanced parentheses: unexpected \")\"")
	case tEOF:
		if p.i == 0 {
			return nil, errorf(t.pos, "expected a condition")
		}
		return nil, errorf(t.pos, "expected a condition after %s", p.toks[p.i-1])
	case tWord:
		if condFuncs[t.text] && p.toks[p.i+1].kind == tLParen {
			return p.parseFunc()
		}
	}
	return p.parseComparison()
}

// close consumes the ")" matching the "(" at open.
func (p *parser) close(open token, wanted string) error {
	t := p.peek()
	switch t.kind {
	case tRParen:
		p.next()
		return nil
	case tEOF:
		return errorf(open.pos, "unbalanced parentheses: \"(\" is never closed")
	}
	return errorf(t.pos, "expected %s, found %s", wanted, t)
}

func (p *parser) parseComparison() (cond, error) {
	ls, err := p.parseOperands(p.prev(), "a condition", false)
	if err != nil {
		return nil, err
	}
	l := ls[0]
	t := p.peek()
	switch {
	case t.kind == tOp:
		p.next()
		r, err := p.parseOperand(t)
		if err != nil {
			return nil, err
		}
		if t.text != "=" && t.text != "<>" {
			if err := checkOrdered(t, l, r); err != nil {
				return nil, err
			}
		}
		return cmpCond{op: t.text, l: l, r: r}, nil
	case p.isWord("BETWEEN"):
		return p.parseBetween(l)
	case p.isWord("IN"):
		return p.parseIn(l)
	}
	return nil, p.expected("a comparison (=, <>, <, <=, >, >=, BETWEEN or IN)", p.prev())
}

// prev is the token before the next one, or the next one at the start.
func (p *parser) prev() token {
	if p.i == 0 {
		return p.toks[0]
	}
	return p.toks[p.i-1]
}

func (p *parser) parseBetween(x operand) (cond, error) {
	kw := p.next()
	loTok := p.peek()
	lo, err := p.parseOperand(kw)
	if err != nil {
		return nil, err
	}
	if !p.isWord("AND") {
		return nil, p.expected("AND", p.prev())
	}
	and := p.next()
	hiTok := p.peek()
	hi, err := p.parseOperand(and)
	if err != nil {
		return nil, err
	}
	if err := checkOrdered(kw, x, lo, hi); err != nil {
		return nil, err
	}
	if a, ok := lo.(constOp); ok {
		if b, ok := hi.(constOp); ok {
			if c, ok := order(a.v, b.v); !ok || c > 0 {
				return nil, errorf(kw.pos, "BETWEEN bounds %s and %s are out of order or of different types", loTok, hiTok)
			}
		}
	}
	return betweenCond{x: x, lo: lo, hi: hi}, nil
}

func (p *parser) parseIn(x operand) (cond, error) {
	kw := p.next()
	open := p.peek()
	if open.kind != tLParen {
		return nil, p.expected("\"(\"", kw)
	}
	p.next()
	var list []operand
	for {
		ops, err := p.parseOperands(p.prev(), "value", true)
		if err != nil {
			return nil, err
		}
		list = append(list, ops...)
		if len(list) > MaxInValues {
			return nil, errorf(kw.pos, "IN list has more than %d values", MaxInValues)
		}
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if err := p.close(open, "\",\" or \")\""); err != nil {
		return nil, err
	}
	return inCond{x: x, list: list}, nil
}

// checkOrdered rejects constants that <, <=, >, >= and BETWEEN cannot order.
func checkOrdered(op token, ops ...operand) error {
	for _, o := range ops {
		if c, ok := o.(constOp); ok && c.v.k != kNum && c.v.k != kStr && c.v.k != kBin {
			return errorf(op.pos, "%s needs numbers, strings or binary, not a %s value", op, typeName(c.v))
		}
	}
	return nil
}
