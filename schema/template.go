package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// templateVar is one ${name}, ${name:size} or ${name:size:pad} of a value
// template.
type templateVar struct {
	Name string // may be a path into a nested object: "address.city"
	Size int    // 0 if not given
	Pad  string // "0" if not given
}

// Root is the field the variable starts from.
func (v templateVar) Root() string {
	root, _, _ := strings.Cut(v.Name, ".")
	root, _, _ = strings.Cut(root, "[")
	return strings.TrimSpace(root)
}

// parseTemplate returns the variables of a value template, in order.
func parseTemplate(tpl string) ([]templateVar, error) {
	var vars []templateVar
	rest := tpl
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			return vars, nil
		}
		rest = rest[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return vars, errors.New("unterminated ${ in template")
		}
		v, err := parseTemplateVar(rest[:j])
		if err != nil {
			return vars, err
		}
		vars = append(vars, v)
		rest = rest[j+1:]
	}
}

func parseTemplateVar(s string) (templateVar, error) {
	parts := strings.Split(s, ":")
	v := templateVar{Name: strings.TrimSpace(parts[0]), Pad: "0"}
	if v.Name == "" {
		return v, fmt.Errorf("${%s}: empty variable name", s)
	}
	if len(parts) > 3 {
		return v, fmt.Errorf("${%s}: want ${name}, ${name:size} or ${name:size:pad}", s)
	}
	if len(parts) > 1 {
		n, err := strconv.Atoi(parts[1])
		if err != nil || n < 1 {
			return v, fmt.Errorf("${%s}: size %q is not a positive integer", s, parts[1])
		}
		v.Size = n
	}
	if len(parts) > 2 {
		if parts[2] == "" {
			return v, fmt.Errorf("${%s}: empty pad", s)
		}
		v.Pad = parts[2]
	}
	return v, nil
}
