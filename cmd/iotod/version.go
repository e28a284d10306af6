package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version and commit are set at link time, as make release does
// (scripts/release.sh):
//
//	go build -ldflags "-X main.version=1.2.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/iotod
//
// Left empty, they come from the build's own stamp (runtime/debug): the
// module version go build records, and the VCS revision.
var (
	version string
	commit  string
)

// buildFacts is what `iotod version` prints: which build this binary is.
type buildFacts struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Modified bool   `json:"modified"` // built from a work tree with uncommitted changes
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Variant  string `json:"variant,omitempty"` // the ARM version of a linux/arm build: v7
	// Flavour is "full" (every store) or "device" (-tags device: without
	// the cloud-only stores and their SDKs, and with one device store,
	// badger on 64-bit, SQLite on 32-bit: components_stores_*.go).
	Flavour string   `json:"flavour"`
	Plugins []string `json:"plugins"` // kind/type of each built-in plugin
}

// currentBuild gathers the facts of the running binary.
func currentBuild() (buildFacts, error) {
	b := buildStamp()
	reg, err := components()
	if err != nil {
		return b, err
	}
	for _, f := range reg.Factories() {
		b.Plugins = append(b.Plugins, string(f.Kind())+"/"+f.Type())
	}
	return b, nil
}

// buildStamp is currentBuild without the plugins.
func buildStamp() buildFacts {
	info, _ := debug.ReadBuildInfo()
	return stamp(version, commit, info)
}

// stamp makes the facts of a build linked with -X main.version=ver and
// -X main.commit=rev (empty when not given) whose recorded build info is
// info (nil when there is none): an empty ver is the module version go
// build recorded, an empty rev the VCS revision.
func stamp(ver, rev string, info *debug.BuildInfo) buildFacts {
	b := buildFacts{
		Version: ver, Commit: rev,
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		Flavour: "full",
	}
	if info != nil {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			case "GOARM":
				if b.Arch == "arm" {
					b.Variant = "v" + strings.TrimSuffix(strings.TrimSuffix(s.Value, ",softfloat"), ",hardfloat")
				}
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	// A device build (components_device.go) has no cloud-only store.
	if len(cloudStorage()) == 0 {
		b.Flavour = "device"
	}
	return b
}

// writeText writes b as "key: value" lines, then each plugin on a line of
// its own.
func (b buildFacts) writeText(w io.Writer) error {
	rev := b.Commit
	if b.Modified {
		rev += " (modified)"
	}
	platform := b.OS + "/" + b.Arch
	if b.Variant != "" {
		platform += "/" + b.Variant
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "version:  %s\ncommit:   %s\ngo:       %s\nplatform: %s\nflavour:  %s\nplugins:\n",
		b.Version, rev, b.Go, platform, b.Flavour)
	for _, p := range b.Plugins {
		fmt.Fprintf(&sb, "  %s\n", p)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version, platform, build flavour and built-in plugins",
		Long: `version prints which build this binary is: its version and commit (set by make release,
otherwise the build's VCS stamp, "(modified)" for a work tree with uncommitted changes), the Go
version, the platform, the flavour (full, or device for a -tags device build, which leaves out the
cloud-only stores and holds one device store: badger on 64-bit, sqlite on 32-bit) and the built-in
plugins, kind/type one a line. iotod --version prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := currentBuild()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), b)
			}
			return b.writeText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the build's facts as JSON")
	return cmd
}

// addVersionCmd gives root the version command and the --version flag,
// which prints the same text.
func addVersionCmd(root *cobra.Command) {
	root.Version = buildStamp().Version // cobra adds --version only when it is set
	root.SetVersionTemplate(`{{iotodVersionText}}`)
	root.AddCommand(newVersionCmd())
}

func init() {
	// The --version template runs this only when the flag is given.
	cobra.AddTemplateFunc("iotodVersionText", func() string {
		var sb strings.Builder
		b, err := currentBuild()
		if err != nil {
			return "iotod: " + err.Error() + "\n"
		}
		_ = b.writeText(&sb)
		return sb.String()
	})
}
