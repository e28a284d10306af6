//go:build !device

package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/plugins/storage/postgres"
)

// newStorageCmd groups the commands that look after a store itself.
func newStorageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "look after a store: its tables (PostgreSQL)",
	}
	cmd.AddCommand(newStorageMigrateCmd())
	return cmd
}

func newStorageMigrateCmd() *cobra.Command {
	var name string
	var print bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "create a PostgreSQL store's schema, tables and indexes, or print their SQL for a DBA",
		Long: `migrate creates the schema, tables and indexes of a storage of type postgres (named by
--storage, or the only one), as the store does at start with create_tables: true; with --print it
only prints the SQL (run it again: it changes nothing), for a database where the workers run with
create_tables: false.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFiles(cmd)...)
			if err != nil {
				return err
			}
			var names []string
			for n, s := range cfg.Storage {
				if s.Type == postgres.TypeName && (name == "" || n == name) {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			if len(names) != 1 {
				return fmt.Errorf("storage migrate: %s", pickMessage(name, names))
			}
			pc, ok := cfg.Storage[names[0]].Config.(*postgres.Config)
			if !ok {
				return fmt.Errorf("storage migrate: storage %s: unexpected config %T", names[0], cfg.Storage[names[0]].Config)
			}
			if print {
				_, err := fmt.Fprint(cmd.OutOrStdout(), postgres.MigrationSQL(pc.Schema))
				return err
			}
			c := *pc
			c.CreateTables, c.Listen = true, false
			st, err := postgres.Open(cmd.Context(), c, nil)
			if err != nil {
				return fmt.Errorf("storage migrate: storage %s: %w", names[0], err)
			}
			if err := st.Close(context.WithoutCancel(cmd.Context())); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "storage %s: schema %s is ready\n", names[0], pc.Schema)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "storage", "", "the storage entry (default: the only one of type postgres)")
	cmd.Flags().BoolVar(&print, "print", false, "print the SQL instead of running it")
	return cmd
}

// pickMessage says why no single postgres storage was found.
func pickMessage(name string, found []string) string {
	if name != "" {
		return fmt.Sprintf("no storage %q of type postgres in the config", name)
	}
	if len(found) == 0 {
		return "the config has no storage of type postgres"
	}
	return "several storages of type postgres (" + strings.Join(found, ", ") + "): name one with --storage"
}
