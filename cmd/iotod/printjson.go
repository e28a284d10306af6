package main

import (
	"encoding/json"
	"io"
)

// printJSON writes v as indented JSON, leaving <, > and & as they are
// (the CLI's --json output and db results are read by people and tools,
// not embedded in HTML).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
