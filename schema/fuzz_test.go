package schema

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotod/iotod/errs"
)

// fuzzFormats are the formats a fuzz input's format byte picks from.
var fuzzFormats = []string{"json", "json5", "yaml"}

// fuzzTimeout is how long one input may take to parse: a schema of a few
// KB parses in well under a millisecond, so anything near this is a hang.
const fuzzTimeout = 10 * time.Second

// FuzzParseBytes feeds arbitrary bytes, as JSON, JSON5 or YAML, to the
// schema parser. Whatever the input, ParseBytes must return (never panic,
// never hang), and either a usable schema or an error that wraps
// errs.Invalid (a schema fault, or a syntax error naming the source).
// The seed corpus in testdata/fuzz/FuzzParseBytes is the schema test
// files, good and bad, each in its own format.
func FuzzParseBytes(f *testing.F) {
	f.Add([]byte(`{format: 'onetable:1.1.0', version: '1', indexes: {primary: {hash: 'pk'}}, models: {}}`), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		ft := fuzzFormats[int(format)%len(fuzzFormats)]
		s, err := within(t, func() (*Schema, error) { return ParseBytes(data, ft, "fuzz."+ft) })
		checkOutcome(t, s, err)
	})
}

// FuzzLoad writes arbitrary bytes to a schema file and loads it, so the
// file path (blends, relative paths, include cycles) is fuzzed too. The
// file sits in a folder with the blend test files (parts/base.json5,
// parts/common.json, parts/models.yaml, and a file blending itself), so a
// `blend` list the fuzzer finds can name real files.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	for _, name := range []string{"parts/base.json5", "parts/common.json", "parts/models.yaml", "cycle-a.json5", "cycle-b.json5"} {
		data, err := os.ReadFile(filepath.Join("testdata/blend", name))
		if err != nil {
			f.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Add([]byte("{blend: ['parts/base.json5', 'parts/models.yaml'], format: 'onetable:1.1.0', version: '1'}"), uint8(1))
	f.Add([]byte("blend: [main.yaml]\n"), uint8(2))
	f.Add([]byte(`{"blend": ["cycle-a.json5"]}`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		ft := fuzzFormats[int(format)%len(fuzzFormats)]
		path := filepath.Join(dir, "main."+ft)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := within(t, func() (*Schema, error) { return Load(path) })
		checkOutcome(t, s, err)
	})
}

// within runs parse, failing t if it panics or takes over fuzzTimeout.
func within(t *testing.T, parse func() (*Schema, error)) (*Schema, error) {
	t.Helper()
	return withinFor(t, fuzzTimeout, parse)
}

// boundTimeout is how long the tests of the parser's bounds wait: they
// make it do the most work the bounds allow (a few hundred milliseconds
// alone; a CI run under -race on a shared 2-core machine took over 10 s),
// while an unbounded parse of their input takes minutes and gigabytes.
const boundTimeout = 2 * time.Minute

// withinFor is within with a timeout of d.
func withinFor(t *testing.T, d time.Duration, parse func() (*Schema, error)) (*Schema, error) {
	t.Helper()
	type result struct {
		s     *Schema
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		s, err := parse()
		done <- result{s: s, err: err}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("panic: %v", r.panic)
		}
		return r.s, r.err
	case <-time.After(d):
		t.Fatalf("no result after %s: a hang", d)
		return nil, nil
	}
}

// checkOutcome: an error is a schema fault (wraps errs.Invalid) with a
// message; a success is a schema whose lists and maps agree.
func checkOutcome(t *testing.T, s *Schema, err error) {
	t.Helper()
	if err != nil {
		if s != nil {
			t.Errorf("both a schema and an error: %v", err)
		}
		if !errors.Is(err, errs.Invalid) {
			t.Fatalf("error does not wrap errs.Invalid (%T): %v", err, err)
		}
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	if s == nil {
		t.Fatal("no schema and no error")
	}
	if err := consistent(s); err != nil {
		t.Fatal(err)
	}
}

// consistent checks a parsed schema's name lists match its maps.
func consistent(s *Schema) error {
	if len(s.ModelNames) != len(s.Models) {
		return fmt.Errorf("%d model names, %d models", len(s.ModelNames), len(s.Models))
	}
	for _, name := range s.ModelNames {
		m := s.Models[name]
		if m == nil {
			return fmt.Errorf("model %q listed but missing", name)
		}
		if len(m.FieldNames) != len(m.Fields) {
			return fmt.Errorf("model %s: %d field names, %d fields", name, len(m.FieldNames), len(m.Fields))
		}
		for _, fn := range m.FieldNames {
			if m.Fields[fn] == nil {
				return fmt.Errorf("model %s: field %q listed but missing", name, fn)
			}
		}
	}
	if len(s.IndexNames) != len(s.Indexes) {
		return fmt.Errorf("%d index names, %d indexes", len(s.IndexNames), len(s.Indexes))
	}
	return nil
}

// TestYAMLAliasExpansionIsBounded: a YAML schema of a few hundred bytes
// whose anchors refer to anchors (a "billion laughs") must be refused
// quickly, not expanded: every level multiplies the work by nine, so
// unbounded, this file of under 500 bytes (43 million values) takes
// about 20 s and gigabytes, one level more minutes. Found by the seed
// corpus of FuzzParseBytes (the reproducer is not in testdata/fuzz: refusing it
// still costs a few hundred milliseconds, too slow for every fuzz run).
func TestYAMLAliasExpansionIsBounded(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := 1; i < 8; i++ {
		n := fmt.Sprintf("l%d", i)
		doc += fmt.Sprintf("%s: &%s [*%[3]s, *%[3]s, *%[3]s, *%[3]s, *%[3]s, *%[3]s, *%[3]s, *%[3]s, *%[3]s]\n", n, n, prev)
		prev = n
	}
	doc += "format: 'onetable:1.1.0'\nversion: '1'\n"
	// The bound is on the work, not the clock: the decoder counts the
	// values as it expands and stops at maxYAMLNodes (within fails a
	// parse that does not end at all).
	s, err := withinFor(t, boundTimeout, func() (*Schema, error) { return ParseBytes([]byte(doc), "yaml", "laughs.yaml") })
	checkOutcome(t, s, err)
	if err == nil {
		t.Fatal("a schema with 43 million expanded alias values was accepted")
	}
	if !strings.Contains(err.Error(), "once aliases are expanded") {
		t.Errorf("a %d-byte YAML schema was refused, but not by the expansion bound: %v", len(doc), err)
	}
}

// TestJSON5NestingIsLinear: a JSON5 schema nested 8000 objects deep
// (32 KB) must be refused quickly. Found by FuzzParseBytes: decoding
// every nested object's raw text again made the time grow with the
// square of the depth (32 KB took about 3 s, 128 KB about 45 s).
func TestJSON5NestingIsLinear(t *testing.T) {
	const depth = 8000
	doc := "{a:" + strings.Repeat("{a:", depth) + "1" + strings.Repeat("}", depth+1)
	// The bound is on the work, not the clock: the depth is checked in
	// one pass before anything is decoded (within fails a parse that does
	// not end at all).
	s, err := withinFor(t, boundTimeout, func() (*Schema, error) { return ParseBytes([]byte(doc), "json5", "deep.json5") })
	checkOutcome(t, s, err)
	if err == nil {
		t.Fatal("a schema nested 8000 deep was accepted")
	}
	if !strings.Contains(err.Error(), "nested deeper than") {
		t.Errorf("a %d-byte JSON5 schema was refused, but not by the depth check made before decoding: %v", len(doc), err)
	}
}
