//go:build !device

package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/bench"
)

func newBenchPostgresCmd() *cobra.Command {
	var o bench.PostgresOptions
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "P6 cloud apply into PostgreSQL beside a raw pgx INSERT ... ON CONFLICT loop on the same server",
		Long: `P6 on PostgreSQL: device changes (~200-byte items) applied through the cloud database onto the
postgres store (validation, last-writer-wins, SERIALIZABLE updates), in batches of --batch by
--appliers appliers on distinct keys, against raw pgx statements writing the same rows: one
INSERT ... ON CONFLICT (pk, sk) DO UPDATE ... WHERE (wall, counter, origin) is older per batch
of --batch rows, by --appliers writers, into a table t (pk, sk, item, wall, counter, origin)
keyed and typed as the store's items. Each side gets a fresh schema per run (iotod_bench_...),
dropped afterwards, even when interrupted; the order alternates from run to run; a CHECKPOINT
precedes each measurement when the role may run one. Median of --runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			if o.URL == "" {
				// Read here, not as the flag's default: help would show
				// it, and a URL may hold a password.
				o.URL = os.Getenv("IOTOD_POSTGRES_URL")
			}
			stopProfile, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			// Interrupted, the bench stops and still drops its schemas.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return bench.RunPostgres(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "PostgreSQL server and database, postgres://... (default: $IOTOD_POSTGRES_URL, from scripts/services.sh env)")
	f.IntVar(&o.Changes, "changes", 50_000, "changes applied per run")
	f.IntVar(&o.Appliers, "appliers", 8, "concurrent appliers (iotod) and writers (baseline)")
	f.IntVar(&o.Batch, "batch", 500, "changes per db.Apply call, and rows per baseline statement")
	f.IntVar(&o.Runs, "runs", 3, "runs (the median is reported)")
	f.BoolVar(&o.JSON, "json", false, "print the figures as one JSON document instead of the text report")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}
