package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/api"
)

func newDeadLettersCmd() *cobra.Command {
	f := &dbFlags{}
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "deadletters",
		Short: "List the dead letters of a running iotod: refused changes and dead trigger deliveries",
		Long: `Asks a running iotod (GET /v1/deadletters) for its latest dead letters, newest
first: changes the far side or a stage refused for good, messages that could not
be read, and trigger deliveries that failed every attempt (their reason starts
with "trigger PIPELINE:TRIGGER"). "iotod deadletters replay PIPELINE:TRIGGER"
queues a trigger's dead deliveries again (as "iotod triggers replay" does); a
refused change is not replayed: it would be refused again (fix it at its
source and write it again). --json prints the letters as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.client(cmd)
			if err != nil {
				return err
			}
			list, err := client.DeadLetters(cmd.Context(), limit)
			if err != nil {
				return oneLineErr(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), list)
			}
			return printDeadLetters(cmd.OutOrStdout(), list)
		},
	}
	apiFlags(cmd, f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the letters as JSON")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many letters, newest first (0: the server's default)")
	cmd.AddCommand(newReplayCmd("Queue a trigger's dead deliveries again (POST /v1/triggers/replay)"))
	return cmd
}

func printDeadLetters(w io.Writer, list *api.DeadLetters) error {
	if len(list.DeadLetters) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPIPELINE\tSITE\tMODEL\tKEY\tREASON")
	for _, l := range list.DeadLetters {
		key := l.Reject.Key.PK
		if l.Reject.Key.SK != "" {
			key += " " + l.Reject.Key.SK
		}
		reason := strings.ReplaceAll(l.Reject.Reason, "\n", " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Time.Local().Format(time.DateTime), l.Pipeline, l.Site, l.Reject.Model, key, reason)
	}
	fmt.Fprintf(tw, "%d shown of %d\n", len(list.DeadLetters), list.Total)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print the dead letters: %w", err)
	}
	return nil
}
