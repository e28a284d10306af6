package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/runner"
)

func newTriggersCmd() *cobra.Command {
	f := &dbFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "triggers",
		Short: "Show the trigger queues of a running iotod: deliveries waiting and dead",
		Long: `Asks a running iotod (GET /v1/triggers) for its trigger queues, named
pipeline:trigger, and prints the deliveries each has waiting and set aside as
dead (after its attempts). "iotod triggers replay NAME" queues the dead ones
again. --json prints the list as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.client(cmd)
			if err != nil {
				return err
			}
			list, err := client.Triggers(cmd.Context())
			if err != nil {
				return oneLineErr(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), list)
			}
			return printTriggers(cmd.OutOrStdout(), list)
		},
	}
	apiFlags(cmd, f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")

	cmd.AddCommand(newReplayCmd("Queue a trigger's dead deliveries again (POST /v1/triggers/replay)"))
	return cmd
}

// newReplayCmd is "replay NAME", of both "iotod triggers" and "iotod
// deadletters".
func newReplayCmd(short string) *cobra.Command {
	rf := &dbFlags{}
	replay := &cobra.Command{
		Use:   "replay PIPELINE:TRIGGER",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := rf.client(cmd)
			if err != nil {
				return err
			}
			n, err := client.ReplayTriggers(cmd.Context(), args[0])
			if err != nil {
				return oneLineErr(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %d deliveries queued again\n", args[0], n)
			return err
		},
	}
	apiFlags(replay, rf)
	return replay
}

func printTriggers(w io.Writer, list []runner.TriggerStatus) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no triggers configured")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRIGGER\tQUEUED\tDEAD")
	for _, t := range list {
		more := ""
		if t.More {
			more = "+"
		}
		fmt.Fprintf(tw, "%s\t%d%s\t%d%s\n", t.Name, t.Queued, more, t.Dead, more)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print the triggers: %w", err)
	}
	return nil
}
