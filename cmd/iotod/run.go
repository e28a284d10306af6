package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/runner"
)

// shutdownTimeout bounds the wait for requests in flight at shutdown.
const shutdownTimeout = 10 * time.Second

func newRunCmd() *cobra.Command {
	var drain time.Duration
	var level string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Open the stores, run the pipelines and serve the local API until SIGINT or SIGTERM",
		Long: `run opens every store of the config, starts its pipelines and serves the
local HTTP API. On SIGINT or SIGTERM it drains: the API stops taking requests,
the pipelines stop reading their outboxes, send what they hold and wait for its
acknowledgements (up to --drain-timeout), then everything closes. Whatever is
not acknowledged stays in its outbox and is sent after the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if level != "" && !slices.Contains(config.LogLevels, level) {
				return fmt.Errorf("--log-level: %q is not one of %s", level, strings.Join(config.LogLevels, ", "))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, stop, configFiles(cmd), drain, cmd.ErrOrStderr(), level)
		},
	}
	cmd.Flags().DurationVar(&drain, "drain-timeout", 10*time.Second, "how long a shutdown waits for in-flight batches to be acknowledged")
	cmd.Flags().StringVar(&level, "log-level", "", "lowest level logged: "+strings.Join(config.LogLevels, ", ")+" (default: log.level of the config, else info)")
	return cmd
}

// newLogger is iotod run's logger on w, in the config's log format and
// level, or at level when it is not empty (--log-level). The level is a
// variable a reload sets.
func newLogger(w io.Writer, c config.LogConfig, level string) (*slog.Logger, *slog.LevelVar) {
	if level != "" {
		c.Level = level
	}
	var lv slog.Level                     // info, unless c.Level says otherwise
	_ = lv.UnmarshalText([]byte(c.Level)) // checked by config.Load and the flag
	v := new(slog.LevelVar)
	v.Set(lv)
	opts := &slog.HandlerOptions{Level: v}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), v
	}
	return slog.New(slog.NewTextHandler(w, opts)), v
}

// runDaemon serves until ctx ends, then stops the API, drains and stops
// the pipelines and closes the stores. stop restores default signal
// handling, so a second signal during shutdown kills the process. It logs
// to logTo, at level if not empty (else the config's).
func runDaemon(ctx context.Context, stop func(), paths []string, drain time.Duration, logTo io.Writer, level string) (err error) {
	cfg, sch, err := loadChecked(paths...)
	if err != nil {
		return err
	}
	log, logLevel := newLogger(logTo, cfg.Log, level)
	if cfg.MemoryLimit > 0 {
		// The collector works harder near the limit instead of letting
		// the heap grow past it (a device's memory budget).
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
		log.Info("go memory limit set", "memory_limit", cfg.MemoryLimit.String())
	}
	name, _, ok := cfg.LocalStorage()
	if !ok && len(cfg.Storage) == 1 {
		for only := range cfg.Storage {
			name, ok = only, true // a cloud worker's one (cloud) store
		}
	}
	if !ok {
		return fmt.Errorf("%s: no device storage to serve", strings.Join(cfg.Files, ", "))
	}
	// The API's addresses are bound first: a port in use fails here,
	// before the broker or a store opens.
	lns, err := api.Listen(ctx, cfg.API.Listen, cfg.API.Socket)
	if err != nil {
		return err
	}
	// Undo steps run in reverse, with fresh contexts since ctx is done.
	closers := []func(context.Context) error{func(context.Context) error { return lns.Close() }}
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout+drain)
			err = errors.Join(err, closers[i](cctx))
			cancel()
		}
		if err == nil {
			log.Info("iotod stopped")
		}
	}()
	run, err := runner.New(planOf(cfg, sch), runner.Options{Logger: log})
	if err != nil {
		return err
	}
	// The stores and the local API come first and wait for no network:
	// the pipelines start after, in the background, and a transport that
	// cannot connect keeps trying while the API serves.
	if err := run.Open(ctx); err != nil {
		return err
	}
	closers = append(closers, func(context.Context) error {
		dctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		if err := run.Shutdown(dctx); err != nil {
			log.Warn("shutdown incomplete; unacknowledged changes stay in their outboxes", "err", err)
		}
		return nil
	})

	var pipes api.Pipelines
	if len(cfg.Pipelines) > 0 {
		pipes = run
	}
	stores := map[string]api.Database{}
	for other := range cfg.Storage {
		if other != name {
			stores[other] = run.DB(other)
		}
	}
	rl, err := newReloader(paths, cfg, run, log, logLevel, level, drain)
	if err != nil {
		return err
	}
	srv, err := api.NewServer(api.Options{DB: run.DB(name), Name: name, Stores: stores, Site: cfg.Site, Logger: log, Pipelines: pipes, UI: cfg.API.UI, Reload: rl.reload})
	if err != nil {
		return err
	}
	if err := srv.Serve(lns); err != nil {
		return err
	}
	closers = append(closers, srv.Shutdown)
	attrs := []any{"site", cfg.Site, "pipelines", len(cfg.Pipelines)}
	for _, a := range srv.Addrs() {
		if a.Network() == "unix" {
			attrs = append(attrs, "socket", a.String())
		} else {
			attrs = append(attrs, "addr", "http://"+a.String())
		}
	}
	log.Info("iotod serving", attrs...)

	// Start's context outlives the signal: a shutdown during the start
	// goes through the drain closer, which ends the start too.
	started := make(chan error, 1)
	go func() { started <- run.Start(context.WithoutCancel(ctx)) }()
	// SIGHUP reloads the configuration, as iotod reload does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			go func() {
				if _, err := rl.reload(ctx); err != nil {
					log.Error("reload on SIGHUP failed", "err", err)
				}
			}()
		case <-ctx.Done():
			stop()
			log.Info("iotod shutting down")
			return nil
		case err := <-srv.Err():
			return err
		case err := <-started:
			if err != nil {
				return fmt.Errorf("pipelines did not start: %w", err)
			}
			started = nil
		}
	}
}
