package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the config files (merged), the schema and every plugin's config, starting nothing",
		Long: `validate loads the config files given with -c (later files override earlier ones),
the schema they name and every plugin's config, exactly as run would, but opens no
storage and starts nothing. It prints "ok" and what the config declares, or every
problem with its file, line and key path, and then exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sch, err := loadChecked(configFiles(cmd)...)
			if err != nil {
				return err
			}
			if err := checkPlugins(cmd.Context(), cfg); err != nil {
				return err
			}
			return printSummary(cmd.OutOrStdout(), cfg, sch)
		},
	}
}

// checkPlugins has each component whose config can be checked further
// (pipeline.Checker: an external plugin, which checks its own config)
// check it, and reports every fault with the entry's file and line.
func checkPlugins(ctx context.Context, cfg *config.Config) error {
	var faults []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Pipelines)) {
		p := cfg.Pipelines[name]
		for _, list := range [][]config.ComponentConfig{p.Stages, p.Triggers} {
			for _, c := range list {
				ch, ok := c.Config.(pipeline.Checker)
				if !ok {
					continue
				}
				set := pipeline.Settings{ID: c.ID, Kind: c.Factory.Kind(), Site: cfg.Site, Dir: cfg.Dir}
				if err := ch.Check(ctx, set); err != nil {
					faults = append(faults, fmt.Sprintf("%s: %s.%s: %s", c.Where, c.Path, c.ID, oneLineErr(err)))
				}
			}
		}
	}
	if len(faults) > 0 {
		return errors.New(strings.Join(faults, "\n"))
	}
	return nil
}

// printSummary writes "ok" and what cfg declares, one line a component.
func printSummary(w io.Writer, cfg *config.Config, sch *schema.Schema) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ok: %s\n", strings.Join(cfg.Files, ", "))
	fmt.Fprintf(&b, "  site       %s\n", cfg.Site)
	fmt.Fprintf(&b, "  schema     %s (models %s)\n", cfg.Schema, strings.Join(sch.ModelNames, ", "))
	for _, name := range slices.Sorted(maps.Keys(cfg.Storage)) {
		s := cfg.Storage[name]
		fmt.Fprintf(&b, "  storage    %s: %s, %s side, site %s\n", name, s.Type, s.Side, s.Site)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Transports)) {
		fmt.Fprintf(&b, "  transport  %s: %s\n", name, cfg.Transports[name].Type)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Pipelines)) {
		p := cfg.Pipelines[name]
		steps := []string{p.From.String()}
		for _, s := range p.Stages {
			steps = append(steps, s.ID.String())
		}
		steps = append(steps, p.To.String())
		fmt.Fprintf(&b, "  pipeline   %s: %s (%s, on the %s side", name, strings.Join(steps, " -> "), p.Direction, p.Side)
		for _, t := range p.Triggers {
			fmt.Fprintf(&b, ", trigger %s", t.ID)
		}
		b.WriteString(")\n")
	}
	if br := cfg.Broker; br != nil {
		scheme, persistence := "mqtt", "memory"
		if br.TLS != nil {
			scheme = "mqtts"
		}
		if br.Persistence != "" {
			persistence = br.Persistence
		}
		fmt.Fprintf(&b, "  broker     %s://%s (topic %s, %d users, anonymous %v, sessions in %s)\n",
			scheme, br.Listen, br.Topic, len(br.Users), br.Anonymous, persistence)
	}
	if cfg.API.Listen != "" {
		fmt.Fprintf(&b, "  api        http://%s\n", cfg.API.Listen)
	}
	if cfg.API.Socket != "" {
		fmt.Fprintf(&b, "  api        unix:%s\n", cfg.API.Socket)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
