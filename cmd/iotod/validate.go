package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the config and the schema it names, without opening storage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("config")
			cfg, sch, err := loadChecked(path)
			if err != nil {
				return err
			}
			name, st, _ := cfg.LocalStorage()
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: site %s, schema %s (models %s), storage %s (%s at %s)\n",
				path, cfg.Site, cfg.Schema, strings.Join(sch.ModelNames, ", "), name, st.Type, st.Badger.Path)
			return err
		},
	}
}
