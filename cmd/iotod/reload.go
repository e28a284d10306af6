package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/runner"
)

func newReloadCmd() *cobra.Command {
	f := &dbFlags{}
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make a running iotod re-read its configuration and apply it without a restart",
		Long: `Asks a running iotod (POST /v1/reload; SIGHUP does the same) to re-read its
config files and apply the difference: pipelines added, removed or changed
(and those on a changed transport) are drained and restarted, the others run
on; the stores stay open and the embedded broker keeps its sessions.

An invalid file changes nothing, and the error names its file and line. A
change only a restart can make (a store, the broker, the API's addresses, the
site, the schema, the log format) is refused and nothing changes.
docs/operations.md, "Reloading the configuration", says more.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.client(cmd)
			if err != nil {
				return err
			}
			got, err := client.Reload(cmd.Context())
			if err != nil {
				return oneLineErr(err)
			}
			printReloaded(cmd.OutOrStdout(), got.Reloaded)
			return nil
		},
	}
	apiFlags(cmd, f)
	return cmd
}

// printReloaded says what a reload did.
func printReloaded(w io.Writer, d runner.Reloaded) {
	if !d.Changed() {
		fmt.Fprintf(w, "reloaded: nothing changed (%d pipelines run on)\n", len(d.Unchanged))
		return
	}
	fmt.Fprintln(w, "reloaded:")
	for _, l := range []struct {
		what  string
		names []string
	}{{"added", d.Added}, {"restarted", d.Restarted}, {"removed", d.Removed}, {"unchanged", d.Unchanged}, {"transports replaced", d.Transports}} {
		if len(l.names) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", l.what, strings.Join(l.names, ", "))
		}
	}
	if d.Undrained != "" {
		fmt.Fprintf(w, "  not drained in time (sent again by the new pipelines): %s\n", d.Undrained)
	}
}

// reloader is iotod run's reload: it re-reads the config files, checks
// what the runner does not see (the API, the log, the schema), and has
// the runner apply the rest. One reload runs at a time.
type reloader struct {
	paths []string
	run   *runner.Runner
	log   *slog.Logger
	level *slog.LevelVar
	// flagLevel is --log-level: it overrides the config's level.
	flagLevel string
	drain     time.Duration

	mu     sync.Mutex
	cfg    *config.Config
	schema [32]byte // the schema file's SHA-256 at start
}

func newReloader(paths []string, cfg *config.Config, run *runner.Runner, log *slog.Logger, level *slog.LevelVar, flagLevel string, drain time.Duration) (*reloader, error) {
	sum, err := fileSum(cfg.Schema)
	if err != nil {
		return nil, err
	}
	return &reloader{paths: paths, run: run, log: log, level: level, flagLevel: flagLevel, drain: drain, cfg: cfg, schema: sum}, nil
}

func fileSum(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, fmt.Errorf("schema: %w", err)
	}
	return sha256.Sum256(b), nil
}

// reload re-reads and applies the config; the drain of the pipelines it
// stops is bounded by --drain-timeout (and ctx).
func (l *reloader) reload(ctx context.Context) (runner.Reloaded, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg, sch, err := loadChecked(l.paths...)
	if err != nil {
		return runner.Reloaded{}, fmt.Errorf("%w: reload refused, nothing changed: %w", api.ErrInvalidConfig, err)
	}
	sum, err := fileSum(cfg.Schema)
	if err != nil {
		return runner.Reloaded{}, fmt.Errorf("%w: reload refused, nothing changed: %w", api.ErrInvalidConfig, err)
	}
	var refused []string
	if !reflect.DeepEqual(cfg.API, l.cfg.API) {
		refused = append(refused, "the API's addresses or status page change")
	}
	if cfg.Log.Format != l.cfg.Log.Format {
		refused = append(refused, "the log format changes")
	}
	if cfg.Schema != l.cfg.Schema || !bytes.Equal(sum[:], l.schema[:]) {
		refused = append(refused, "the schema changes ("+cfg.Schema+")")
	}
	if len(refused) > 0 {
		return runner.Reloaded{}, fmt.Errorf("reload refused, nothing changed: %s: %w", strings.Join(refused, "; "), runner.ErrRestartNeeded)
	}
	dctx, cancel := context.WithTimeout(ctx, l.drain)
	defer cancel()
	got, err := l.run.Reload(dctx, planOf(cfg, sch))
	if err != nil {
		return got, err
	}
	// What applies at once.
	if l.flagLevel == "" && cfg.Log.Level != l.cfg.Log.Level {
		var lv slog.Level
		_ = lv.UnmarshalText([]byte(cfg.Log.Level)) // checked by config.Load
		l.level.Set(lv)
	}
	if cfg.MemoryLimit != l.cfg.MemoryLimit && cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	l.cfg = cfg
	l.log.Info("configuration reloaded", "added", got.Added, "restarted", got.Restarted, "removed", got.Removed,
		"unchanged", len(got.Unchanged), "transports_replaced", got.Transports)
	return got, nil
}
