//go:build !device

package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/bench"
)

func newBenchDynamoDBCmd() *cobra.Command {
	var o bench.DynamoDBOptions
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "dynamodb",
		Short: "P6 cloud apply into DynamoDB beside a raw BatchWriteItem loop on the same endpoint, and the stream-to-outbox latency",
		Long: `P6: device changes (~200-byte items) applied through the cloud database onto the dynamodb store,
in batches of 500 by --concurrency appliers on distinct keys, against raw aws-sdk-go-v2 BatchWriteItem
calls (25 items) of the same items at the same concurrency on the same endpoint; each on a fresh table,
median of --runs. Then the latency from a write into the table to its change read from the stream
source's outbox. Meant for DynamoDB Local (static made-up credentials; DynamoDB Local is not AWS).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			stopProfile, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			return bench.RunDynamoDB(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Endpoint, "endpoint", os.Getenv("IOTOD_DYNAMODB_URL"), "DynamoDB endpoint (default: $IOTOD_DYNAMODB_URL, from scripts/services.sh env)")
	f.StringVar(&o.Region, "region", "us-east-1", "region the clients sign for")
	f.IntVar(&o.Changes, "changes", 5_000, "changes applied per run")
	f.IntVar(&o.Concurrency, "concurrency", 8, "concurrent appliers (iotod) and writers (baseline)")
	f.IntVar(&o.Runs, "runs", 3, "runs (the median is reported)")
	f.IntVar(&o.Latency, "latency", 200, "changes timed from the table to the stream source's outbox (0: skip)")
	f.IntVar(&o.Rate, "rate", 50, "pace of the timed changes, per second")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}
