package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/iotod/iotod/api"
)

// progressEvery is how often `iotod sync` polls the status on a terminal.
const progressEvery = 250 * time.Millisecond

func newSyncCmd() *cobra.Command {
	f := &dbFlags{}
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Force a sync: send what is held and wait until the far side acknowledges it",
		Long: `Asks a running iotod (POST /v1/sync) to send every change it holds now and
waits until every change committed before the call is acknowledged, or
--timeout passes. Prints "synced" and exits 0, or prints the error and
exits 1; nothing is lost on a timeout, the changes stay in the outbox. While
it waits it shows its progress on stderr: on a terminal a bar of the changes
sent out of those waiting, with their rate and the time left; elsewhere, when
it takes more than 2s, a line every 2s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 || timeout > api.MaxSyncTimeout {
				return fmt.Errorf("--timeout: want a duration above 0 and at most %s, got %s", api.MaxSyncTimeout, timeout)
			}
			client, err := f.client(cmd)
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			stop := showProgress(cmd.Context(), client, errOut, isTerminal(errOut))
			err = client.Sync(cmd.Context(), timeout)
			stop()
			if err != nil {
				return oneLineErr(err)
			}
			_, err = fmt.Fprintln(out, "synced")
			return err
		},
	}
	apiFlags(cmd, f)
	cmd.Flags().DurationVar(&timeout, "timeout", api.DefaultSyncTimeout, "give up after this long (at most "+api.MaxSyncTimeout.String()+")")
	return cmd
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// showProgress reports a sync's progress on out (stderr) until the
// returned stop is called: on a terminal a bar of the changes sent and
// acknowledged out of the most seen waiting, with their rate and the time
// left (progressbar), which stop clears; elsewhere, for a sync that takes
// more than plainEvery, a plain line every plainEvery.
func showProgress(ctx context.Context, c *api.Client, out io.Writer, terminal bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	p := newSyncProgress(out, terminal)
	go func() {
		defer close(done)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			if st, err := c.Status(ctx); err == nil {
				p.update(st, time.Now())
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		p.finish()
	}
}

// plainEvery is how often a sync's progress is printed when not on a
// terminal (and how long a sync runs before the first line).
const plainEvery = 2 * time.Second

// syncProgress renders a sync's progress.
type syncProgress struct {
	out   io.Writer
	bar   *progressbar.ProgressBar // nil when not on a terminal
	start time.Time
	last  time.Time // of the last plain line
	most  int64
}

func newSyncProgress(out io.Writer, terminal bool) *syncProgress {
	p := &syncProgress{out: out, start: time.Now()}
	p.last = p.start
	if terminal {
		p.bar = progressbar.NewOptions64(1,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetWidth(24),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("changes"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// update shows the status st read at now.
func (p *syncProgress) update(st *api.Status, now time.Time) {
	left, flying := pending(st)
	p.most = max(p.most, left)
	sent := p.most - left
	catching, got := catchUp(st)
	desc := fmt.Sprintf("syncing: %d of %d changes left, %d in flight", left, p.most, flying)
	if catching {
		desc += fmt.Sprintf("; catching up: %d changes in", got)
	}
	if p.bar != nil {
		// The bar finishes, and clears, when it reaches its max: it must
		// not before the sync returns, as more changes may come.
		top := max(p.most, 1)
		p.bar.ChangeMax64(top)
		_ = p.bar.Set64(min(sent, top-1))
		p.bar.Describe(desc)
		return
	}
	if now.Sub(p.last) < plainEvery {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := float64(sent) / elapsed.Seconds()
	eta := "unknown"
	if rate > 0 {
		eta = "about " + age(time.Duration(float64(left)/rate*float64(time.Second)))
	}
	_, _ = fmt.Fprintf(p.out, "%s, %.0f changes/s, %s left (%s)\n", desc, rate, eta, age(elapsed))
}

// finish clears the bar.
func (p *syncProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// pending sums the outbox depth of every store that feeds a pipeline (each
// store once) and the changes in flight.
func pending(st *api.Status) (left int64, flying int) {
	seen := map[string]bool{}
	for _, p := range st.Pipelines {
		flying += p.InFlight
		if p.Outbox != nil && !seen[p.From] {
			seen[p.From] = true
			left += p.Outbox.Depth
		}
	}
	return left, flying
}

// catchUp reports whether a device down pipeline is catching up, and the
// changes catch-ups have brought.
func catchUp(st *api.Status) (running bool, changes int64) {
	for _, p := range st.Pipelines {
		running = running || p.CatchingUp
		changes += p.CatchUpChanges
	}
	return running, changes
}
