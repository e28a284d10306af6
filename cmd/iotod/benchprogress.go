//go:build !device || !(386 || arm || mips || mipsle)

package main

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// withBenchProgress makes every bench command under cmd show its progress
// on a terminal: on stderr, a spinner with the time elapsed, the report
// lines printed so far (one per figure measured, and the headings) with
// their rate, and the last of them. The report itself goes to stdout as
// before. Off a terminal nothing more is shown: the report's lines, each
// printed as its figure is measured, are the plain progress lines. A
// bench's length depends on the machine (a load runs until its store is
// full, a catch-up until it is drained), so there is no time left to show.
func withBenchProgress(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		withBenchProgress(sub)
		run := sub.RunE
		if run == nil {
			continue
		}
		sub.RunE = func(c *cobra.Command, args []string) error {
			if !isTerminal(c.ErrOrStderr()) {
				return run(c, args)
			}
			p := newBenchProgress(c.OutOrStdout(), c.ErrOrStderr(), 100*time.Millisecond)
			c.SetOut(p)
			defer p.finish()
			return run(c, args)
		}
	}
}

// benchProgress passes a bench's report through to out and shows its
// progress on bar (on the terminal's stderr).
type benchProgress struct {
	out io.Writer

	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	line []byte // the report's line being written
	// stop ends the ticker that keeps the spinner and the time elapsed
	// moving between lines; done is closed when it has.
	stop, done chan struct{}
}

// newBenchProgress passes the report to out and draws the bar on errOut
// at most every throttle.
func newBenchProgress(out, errOut io.Writer, throttle time.Duration) *benchProgress {
	p := &benchProgress{out: out, stop: make(chan struct{}), done: make(chan struct{}), bar: progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(errOut),
		progressbar.OptionSetDescription("bench: starting"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("lines"),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionThrottle(throttle),
		progressbar.OptionClearOnFinish(),
	)}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.mu.Lock()
				_ = p.bar.Add(0)
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// Write clears the bar, writes b to the report, and shows the bar again,
// counting the lines b ends and describing the last one.
func (p *benchProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Clear()
	n, err := p.out.Write(b)
	lines := 0
	for rest := b[:n]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			p.line = append(p.line, rest...)
			break
		}
		if last := strings.TrimSpace(string(append(p.line, rest[:i]...))); last != "" {
			p.bar.Describe("bench: " + truncateRunes(last, 60))
		}
		p.line = p.line[:0]
		rest = rest[i+1:]
		lines++
	}
	_ = p.bar.Add(lines)
	return n, err
}

// finish clears the bar for good.
func (p *benchProgress) finish() {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Finish()
	_ = p.bar.Clear()
}

// truncateRunes keeps s to n runes, marking a cut with "…".
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
