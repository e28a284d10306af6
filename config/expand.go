package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Lookup returns the value of an environment variable and whether it is
// set; os.LookupEnv is one.
type Lookup func(name string) (string, bool)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${NAME} and ${NAME:-default} in s. A default is used when
// NAME is unset or empty, as in the shell; "$${" stands for a literal "${".
// Other "$" signs are kept as they are.
func expand(s string, env Lookup) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // "$${": an escaped "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("variable reference %q has no closing '}'", s[i:])
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !varName.MatchString(name) {
			return "", fmt.Errorf("bad variable reference ${%s}: want ${NAME} or ${NAME:-default}", ref)
		}
		val, ok := env(name)
		switch {
		case ok && val != "":
		case hasDef:
			val = def
		case !ok:
			return "", fmt.Errorf("variable %s is not set (write ${%s:-default} to give a default)", name, name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}
