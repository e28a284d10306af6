package where

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF    tokKind = iota
	tPath           // ${...}: text is the path
	tValue          // {...}: text is the literal
	tSub            // @{...}: text is the name, splat set for @{...name}
	tLParen         // (
	tRParen         // )
	tComma          // ,
	tOp             // = <> < <= > >=
	tWord           // a keyword or function name
)

type token struct {
	kind  tokKind
	text  string
	pos   int // 0-based byte offset
	splat bool
}

// String describes the token for error messages.
func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tPath:
		return "${" + t.text + "}"
	case tValue:
		return "{" + t.text + "}"
	case tSub:
		if t.splat {
			return "@{..." + t.text + "}"
		}
		return "@{" + t.text + "}"
	}
	return fmt.Sprintf("%q", t.text)
}

// lex splits src into tokens, ending with a tEOF token.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '$' || c == '@':
			if i+1 >= len(src) || src[i+1] != '{' {
				return nil, errorf(i, "%q must be followed by \"{\"", string(c))
			}
			text, next, err := braced(src, i, i+2)
			if err != nil {
				return nil, err
			}
			t := token{kind: tPath, text: text, pos: i}
			if c == '@' {
				t.kind = tSub
				if name, ok := strings.CutPrefix(text, "..."); ok {
					t.text, t.splat = name, true
				}
			}
			toks = append(toks, t)
			i = next
		case c == '{':
			text, next, err := braced(src, i, i+1)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tValue, text: text, pos: i})
			i = next
		case c == '(' || c == ')' || c == ',':
			k := tComma
			if c == '(' {
				k = tLParen
			} else if c == ')' {
				k = tRParen
			}
			toks = append(toks, token{kind: k, text: string(c), pos: i})
			i++
		case c == '=':
			toks = append(toks, token{kind: tOp, text: "=", pos: i})
			i++
		case c == '<' || c == '>':
			n := 1
			if i+1 < len(src) && (src[i+1] == '=' || (c == '<' && src[i+1] == '>')) {
				n = 2
			}
			toks = append(toks, token{kind: tOp, text: src[i : i+n], pos: i})
			i += n
		case isWordStart(c):
			j := i + 1
			for j < len(src) && isWordPart(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tWord, text: src[i:j], pos: i})
			i = j
		case c == '!':
			return nil, errorf(i, "unexpected character \"!\" (not-equal is written <>)")
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, errorf(i, "unexpected character %q", string(r))
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

// braced returns the text from start up to the first "}" (OneTable's
// non-greedy {(.*?)}) and the offset after that "}".
func braced(src string, open, start int) (string, int, error) {
	end := strings.IndexByte(src[start:], '}')
	if end < 0 {
		return "", 0, errorf(open, "%q is never closed by \"}\"", src[open:start])
	}
	return src[start : start+end], start + end + 1, nil
}

func isWordStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isWordPart(c byte) bool { return isWordStart(c) || (c >= '0' && c <= '9') }
