package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/config"
)

func newStatusCmd() *cobra.Command {
	f := &dbFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the pipelines of a running iotod: state, outbox, acks, dead letters",
		Long: `Asks a running iotod (GET /v1/status) for its pipelines and prints one line
each: direction, source and target, state, connection, outbox depth and the
age of its oldest change, changes in flight, and the last ack; then the
number of dead letters. --json prints the status as JSON instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.client(cmd)
			if err != nil {
				return err
			}
			st, err := client.Status(cmd.Context())
			if err != nil {
				return oneLineErr(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			if err := printStatus(cmd.OutOrStdout(), st, time.Now()); err != nil {
				return err
			}
			// The trigger queues' dead deliveries, when there are any.
			list, err := client.Triggers(cmd.Context())
			if err != nil {
				return nil // an older server: the status is printed
			}
			for _, t := range list {
				if t.Dead > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "trigger %s: %d dead deliveries (iotod triggers replay %s)\n", t.Name, t.Dead, t.Name)
				}
			}
			return nil
		},
	}
	apiFlags(cmd, f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// apiFlags adds the flags that locate the API of a running iotod.
func apiFlags(cmd *cobra.Command, f *dbFlags) {
	cmd.Flags().StringVar(&f.addr, "addr", "", "API address (default: api.listen of the config, else http://"+config.DefaultListen+")")
	cmd.Flags().StringVar(&f.socket, "socket", "", "API unix socket (default: api.socket of the config)")
}

// oneLineErr keeps an error to one line (the API's errors are one already;
// a joined local one may not be).
func oneLineErr(err error) error {
	if !strings.Contains(err.Error(), "\n") {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
}

// printStatus writes st as a table, with ages relative to now.
func printStatus(w io.Writer, st *api.Status, now time.Time) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "site: %s\n", st.Site)
	if len(st.Pipelines) == 0 {
		fmt.Fprintln(&b, "no pipelines configured")
		if st.Outbox != nil {
			fmt.Fprintf(&b, "local outbox: %d changes, oldest %s\n", st.Outbox.Depth, oldest(st.Outbox.Depth, st.Outbox.Oldest, now))
		}
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE\tDIR\tFROM -> TO\tSTATE\tCONNECTED\tOUTBOX\tOLDEST\tIN FLIGHT\tLAST ACK")
		for _, p := range st.Pipelines {
			depth, age, flying := "-", "-", "-"
			if p.Outbox != nil {
				depth = strconv.FormatInt(p.Outbox.Depth, 10)
				age = oldest(p.Outbox.Depth, p.Outbox.Oldest, now)
			}
			if p.Outbox != nil || strings.HasPrefix(p.From, "storage/") {
				flying = strconv.Itoa(p.InFlight)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s -> %s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Direction, p.From, p.To, p.State,
				connected(p.Connected), depth, age, flying, ago(p.LastAck, now))
		}
		_ = tw.Flush() // into a buffer: cannot fail
		for _, p := range st.Pipelines {
			if p.CatchingUp {
				fmt.Fprintf(&b, "%s: catching up with the cloud: %d changes received\n", p.Name, p.CatchUpChanges)
			}
			if p.LastError != "" {
				fmt.Fprintf(&b, "%s: last error: %s\n", p.Name, p.LastError)
			}
		}
	}
	fmt.Fprintf(&b, "dead letters: %d", st.DeadLetters)
	if st.DeadLetters > 0 {
		b.WriteString(" (GET /v1/deadletters lists the latest; see docs/operations.md)")
	}
	b.WriteByte('\n')
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("print the status: %w", err)
	}
	return nil
}

func connected(c *bool) string {
	switch {
	case c == nil:
		return "-"
	case *c:
		return "yes"
	}
	return "no"
}

// oldest is the age of an outbox's oldest change, "-" when it is empty.
func oldest(depth int64, t, now time.Time) string {
	if depth == 0 || t.IsZero() {
		return "-"
	}
	return age(now.Sub(t))
}

// ago says how long before now t was: "3s ago", or "never" for no time.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return age(now.Sub(t)) + " ago"
}

// age writes d short and rounded down: 0s, 42s, 3m5s, 2h10m, 4d3h.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}
