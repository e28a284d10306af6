package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

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
exits 1; nothing is lost on a timeout, the changes stay in the outbox. On a
terminal it shows how many changes are left while it waits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 || timeout > api.MaxSyncTimeout {
				return fmt.Errorf("--timeout: want a duration above 0 and at most %s, got %s", api.MaxSyncTimeout, timeout)
			}
			client, err := f.client(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			stop := func() {}
			if isTerminal(out) {
				stop = showProgress(cmd.Context(), client, out)
			}
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

// showProgress keeps one line on out up to date with the changes the
// outboxes still hold, polling the status, until the returned stop is
// called; stop clears the line.
func showProgress(ctx context.Context, c *api.Client, out io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		var most int64
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			if st, err := c.Status(ctx); err == nil {
				left, flying := pending(st)
				most = max(most, left)
				catching, got := catchUp(st)
				down := ""
				if catching {
					down = fmt.Sprintf("; catching up: %d changes in", got)
				}
				_, _ = fmt.Fprintf(out, "\r\x1b[Ksyncing: %d of %d changes left, %d in flight%s (%s)",
					left, most, flying, down, age(time.Since(start)))
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
		_, _ = fmt.Fprint(out, "\r\x1b[K")
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
