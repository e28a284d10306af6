//go:build !device || !(386 || arm || mips || mipsle)

package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The report passes through whole, however it is cut into writes, and the
// bar counts its lines and shows the last one.
func TestBenchProgress(t *testing.T) {
	var out, bar bytes.Buffer
	p := newBenchProgress(&out, &bar, 0)
	report := "P1 durable creates\n  iotod: 28,796/s\n  raw badger: 8,762/s (3.3x)\n"
	for _, part := range []string{report[:5], report[5:30], report[30:]} {
		n, err := fmt.Fprint(p, part)
		assert.NoError(t, err)
		assert.Equal(t, len(part), n)
	}
	p.finish()
	assert.Equal(t, report, out.String(), "the report is unchanged")
	assert.Contains(t, bar.String(), "bench: raw badger: 8,762/s (3.3x)", "the last line is shown")
	assert.Contains(t, bar.String(), "(3/-, ", "the lines are counted")
	assert.Equal(t, "abc", truncateRunes("abc", 3))
	assert.Equal(t, "ab…", truncateRunes("abcd", 3))
}
