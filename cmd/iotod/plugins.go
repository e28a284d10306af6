package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iotod/iotod/pipeline"
)

func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the built-in plugins and describe their config",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Print each plugin's kind, type and description",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := components()
			if err != nil {
				return err
			}
			return listPlugins(cmd.OutOrStdout(), reg)
		},
	}, &cobra.Command{
		Use:   "describe KIND/TYPE",
		Short: "Print a plugin's config keys (type, default, meaning) and a sample",
		Example: `  iotod plugins describe storage/badger
  iotod plugins describe stage/batch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := components()
			if err != nil {
				return err
			}
			kind, typ, ok := strings.Cut(args[0], "/")
			if !ok {
				return fmt.Errorf("%w: %q is not KIND/TYPE, such as storage/badger", pipeline.ErrInvalid, args[0])
			}
			f, err := reg.Lookup(pipeline.Kind(kind), typ)
			if err != nil {
				return fmt.Errorf("describe %s: %w (see iotod plugins list)", args[0], err)
			}
			return describePlugin(cmd.OutOrStdout(), f)
		},
	})
	return cmd
}

// listPlugins writes one line per plugin: kind, type, description.
func listPlugins(w io.Writer, reg *pipeline.Registry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tTYPE\tDESCRIPTION")
	for _, f := range reg.Factories() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Kind(), f.Type(), f.Description())
	}
	return tw.Flush()
}

// describePlugin writes f's description, a table of its config keys and a
// sample of its place in pipelines.yaml holding every default.
func describePlugin(w io.Writer, f pipeline.Factory) error {
	sample, err := sampleYAML(f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s/%s: %s\n\n", f.Kind(), f.Type(), f.Description())
	if fields := configFields(f.NewDefaultConfig()); len(fields) == 0 {
		fmt.Fprintln(tw, "No config keys.")
	} else {
		fmt.Fprintln(tw, "KEY\tTYPE\tDEFAULT\tDESCRIPTION")
		for _, fd := range fields {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fd.Name, fd.Type, fd.Default, fd.Desc)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\nSample (every key at its default):\n\n%s", sample)
	return err
}
