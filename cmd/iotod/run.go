package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// shutdownTimeout bounds the wait for requests in flight at shutdown.
const shutdownTimeout = 10 * time.Second

func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Open the database and serve the local API until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, stop, configFiles(cmd), log)
		},
	}
}

// runDaemon serves until ctx ends, then closes the server, the db and the
// store, in that order. stop restores default signal handling, so a second
// signal during shutdown kills the process.
func runDaemon(ctx context.Context, stop func(), paths []string, log *slog.Logger) (err error) {
	cfg, sch, err := loadChecked(paths...)
	if err != nil {
		return err
	}
	name, sc, ok := cfg.LocalStorage()
	if !ok {
		return fmt.Errorf("%s: no device storage to serve", strings.Join(cfg.Files, ", "))
	}
	made, err := sc.Factory.Create(ctx, pipeline.Settings{ID: sc.ID(), Kind: pipeline.KindStorage, Site: sc.Site,
		Logger: log.With("storage", name), Metrics: prometheus.NewRegistry(), Schema: sch, Dir: cfg.Dir}, sc.Config)
	if err != nil {
		return fmt.Errorf("open storage %s: %w", name, err)
	}
	store, ok := made.(pipeline.Store)
	if !ok {
		return fmt.Errorf("open storage %s: type %s made a %T, not a store", name, sc.Type, made)
	}
	// Each step registers its undo; they run in reverse, with a fresh
	// context since ctx is done by then.
	var closers []func(context.Context) error
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i](cctx))
		}
		if err == nil {
			log.Info("iotod stopped")
		}
	}()
	closers = append(closers, store.Close)

	d, err := db.Open(ctx, db.Options{Schema: sch, Store: store, Site: cfg.Site, Logger: log})
	if err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	closers = append(closers, d.Close)

	srv, err := api.NewServer(api.Options{DB: d, Site: cfg.Site, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx, cfg.API.Listen, cfg.API.Socket); err != nil {
		return err
	}
	closers = append(closers, srv.Shutdown)
	attrs := []any{"site", cfg.Site}
	for _, a := range srv.Addrs() {
		if a.Network() == "unix" {
			attrs = append(attrs, "socket", a.String())
		} else {
			attrs = append(attrs, "addr", "http://"+a.String())
		}
	}
	log.Info("iotod serving", attrs...)

	select {
	case <-ctx.Done():
		stop()
		log.Info("iotod shutting down")
		return nil
	case err := <-srv.Err():
		return err
	}
}
