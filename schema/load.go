package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Load reads the schema file at path (JSON, JSON5 or YAML, chosen by the
// extension .json, .json5, .yaml or .yml), blends in the files its `blend`
// list names, and parses the result. Every fault found is returned, joined;
// each wraps errs.Invalid. A file that cannot be read is an error
// wrapping the fs error.
//
// Blending: `blend: [paths...]` names files relative to the including file;
// they may blend further. Blended files are merged in list order (a later
// one wins over an earlier one), then the including file is merged on top
// (it wins). Objects merge deeply, so models and their fields merge; any
// other value replaces. An include cycle is a fault.
func Load(path string) (*Schema, error) {
	doc, err := loadFile(path, nil)
	if err != nil && !isFault(err) {
		return nil, fmt.Errorf("load schema: %w", err)
	}
	if err != nil {
		return nil, err
	}
	return parseDocument(doc, path)
}

// loadFile decodes the file at path and merges in its blends. stack holds
// the absolute paths of the files being loaded, outermost first.
func loadFile(path string, stack []string) (*object, error) {
	flt := faults{source: path}
	format := formatOf(path)
	if format == "" {
		flt.add("", "unknown file extension %q (want .json, .json5, .yaml or .yml)", filepath.Ext(path))
		return nil, flt.err()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := decode(data, format)
	if err != nil {
		flt.list = append(flt.list, &Fault{Source: path, Msg: "syntax: " + err.Error(), Err: err})
		return nil, flt.err()
	}
	raw, ok := doc.get("blend")
	if !ok {
		return doc, nil
	}
	doc.remove("blend")
	list, ok := raw.([]any)
	if !ok {
		flt.add("blend", "must be a list of file paths")
		return nil, flt.err()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load schema %s: %w", path, err)
	}
	stack = append(stack[:len(stack):len(stack)], abs)
	base := newObject()
	for i, e := range list {
		at := fmt.Sprintf("blend[%d]", i)
		name, ok := e.(string)
		if !ok || name == "" {
			flt.add(at, "must be a file path")
			continue
		}
		child := name
		if !filepath.IsAbs(child) {
			child = filepath.Join(filepath.Dir(path), name)
		}
		childAbs, err := filepath.Abs(child)
		if err != nil {
			flt.add(at, "%v", err)
			continue
		}
		if i := slices.Index(stack, childAbs); i >= 0 {
			flt.add(at, "include cycle: %s", cycleText(stack[i:], childAbs))
			continue
		}
		part, err := loadFile(child, stack)
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe) && !isFault(err):
			flt.list = append(flt.list, &Fault{Source: path, Path: at,
				Msg: fmt.Sprintf("%s %s: %v", pe.Op, name, pe.Err), Err: err})
		case err != nil:
			flt.addErr(err)
		default:
			base = merge(base, part)
		}
	}
	if err := flt.err(); err != nil {
		return nil, err
	}
	return merge(base, doc), nil
}

// isFault reports whether err holds a Fault (it came from a nested file).
func isFault(err error) bool {
	var f *Fault
	return errors.As(err, &f)
}

// cycleText shows a cycle by file names: "a.json5 -> b.json5 -> a.json5".
func cycleText(cycle []string, back string) string {
	names := make([]string, 0, len(cycle)+1)
	for _, p := range cycle {
		names = append(names, filepath.Base(p))
	}
	return strings.Join(append(names, filepath.Base(back)), " -> ")
}
