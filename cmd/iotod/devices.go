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
	"github.com/iotod/iotod/runner"
)

func newDevicesCmd() *cobra.Command {
	f := &dbFlags{}
	var asJSON bool
	var q api.DevicesQuery
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the devices a cloud worker has heard from: last contact, catch-up, pending and refused changes",
		Long: `Asks a running cloud worker (GET /v1/devices) for the devices it has heard from,
one line each: when it last heard from the device, whether the device is
connected to this process's embedded broker, where its last catch-up started,
the down changes sent to it and not yet acknowledged, the changes it sent up,
and those the cloud refused with the last reason. A page at a time: --limit
(at most 1000), --page N or --after NEXT (the last line names the next page);
--sort site (default), last_seen (the longest silent first), refused or
pending (the most first), "-" before it reverses it; --filter keeps the sites
that contain it. --json prints the page as JSON. See docs/operations.md,
"The fleet".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.client(cmd)
			if err != nil {
				return err
			}
			page, err := client.Devices(cmd.Context(), q)
			if err != nil {
				return oneLineErr(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), page)
			}
			return printDevices(cmd.OutOrStdout(), page, q, time.Now())
		},
	}
	apiFlags(cmd, f)
	fl := cmd.Flags()
	fl.BoolVar(&asJSON, "json", false, "print the page as JSON")
	fl.StringVar(&q.Sort, "sort", "", `site, last_seen, refused or pending; "-" before it reverses it (default site)`)
	fl.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("devices per page, at most %d (0: the server's default, %d)", runner.MaxFleetLimit, runner.DefaultFleetLimit))
	fl.StringVar(&q.Filter, "filter", "", "only the sites that contain this (any case)")
	fl.IntVar(&q.Page, "page", 0, "the page to show, from 1")
	fl.StringVar(&q.After, "after", "", "the page after this one (the next a page names)")
	return cmd
}

// printDevices writes a page of devices as a table, with times relative
// to now.
func printDevices(w io.Writer, p *api.Devices, q api.DevicesQuery, now time.Time) error {
	var b bytes.Buffer
	if len(p.Devices) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SITE\tLAST SEEN\tCONNECTED\tCATCH-UP FROM\tPENDING\tCHANGES\tREFUSED\tLAST REFUSAL")
		for _, d := range p.Devices {
			refusal := "-"
			if d.LastRefusal != "" {
				refusal = ago(d.LastRefusedAt, now) + ": " + cut(strings.ReplaceAll(d.LastRefusal, "\n", " "), 100)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", d.Site, ago(d.LastSeen, now), connected(d.Connected),
				catchUpFrom(d, now), d.Pending, d.Changes, d.Refused, refusal)
		}
		_ = tw.Flush() // into a buffer: cannot fail
	}
	fmt.Fprintf(&b, "%d shown of %d", len(p.Devices), p.Total)
	if p.Total != p.Known {
		fmt.Fprintf(&b, " matching (%d devices)", p.Known)
	}
	if p.Page > 0 {
		fmt.Fprintf(&b, ", page %d", p.Page)
	}
	b.WriteByte('\n')
	if p.Next != "" {
		args := []string{"iotod devices"}
		if q.Sort != "" {
			args = append(args, "--sort "+q.Sort)
		}
		if q.Filter != "" {
			args = append(args, "--filter "+strconv.Quote(q.Filter))
		}
		if q.Limit > 0 {
			args = append(args, "--limit "+strconv.Itoa(q.Limit))
		}
		fmt.Fprintf(&b, "next page: %s --after %s\n", strings.Join(args, " "), p.Next)
	}
	if !p.Restored {
		b.WriteString("the devices saved before this worker's start are not read back yet\n")
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("print the devices: %w", err)
	}
	return nil
}

// catchUpFrom says where a device's last catch-up started: "full" (from
// nothing), the age of its cursor, or "-" when it never asked.
func catchUpFrom(d runner.DeviceSummary, now time.Time) string {
	switch {
	case d.LastSync.IsZero():
		return "-"
	case d.FullSync || d.Cursor == "":
		return "full"
	case d.CursorTime.IsZero():
		return d.Cursor
	}
	return age(now.Sub(d.CursorTime)) + " back"
}

// cut shortens s to n runes, marking a cut with "…".
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
