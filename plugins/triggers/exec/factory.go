// Package exec is the `exec` trigger: it runs a command, without a shell,
// with the changes a pipeline applied as JSON on its stdin, once per batch
// or once per change. A failed run (non-zero exit, timeout, failure to
// start) is an error, so iotod's trigger queue retries the batch.
package exec

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"

	"github.com/iotod/iotod/pipeline"
)

// TypeName is the trigger's type in pipelines.yaml.
const TypeName = "exec"

// NewFactory returns the exec trigger's factory.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTrigger, TypeName,
		"runs a command with the applied changes as JSON on its stdin",
		NewDefaultConfig, create)
}

func create(_ context.Context, set pipeline.Settings, c Config) (any, error) {
	dir := set.Dir
	if c.Dir != "" {
		dir = resolve(set.Dir, c.Dir)
	}
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: dir: %s is not a directory", pipeline.ErrInvalid, dir)
		}
	}
	prog := c.Command[0]
	if strings.ContainsRune(prog, filepath.Separator) {
		prog = resolve(set.Dir, prog)
	}
	path, err := osexec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: command: %v", pipeline.ErrInvalid, err)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	env := make([]string, 0, len(c.Env))
	for k, v := range c.Env {
		env = append(env, k+"="+v)
	}
	return &Trigger{
		log:       log,
		site:      set.Site,
		filter:    c.Filter,
		argv:      append([]string{path}, c.Command[1:]...),
		name:      commandName(c.Command),
		dir:       dir,
		env:       env,
		timeout:   c.Timeout,
		perChange: c.PerChange,
		slots:     make(chan struct{}, c.MaxConcurrency),
	}, nil
}

// resolve anchors a relative path at dir.
func resolve(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}

// commandName is the command as errors name it: its argv, quoted, cut
// short if long.
func commandName(argv []string) string {
	return pipeline.Truncate(fmt.Sprintf("%q", argv), 200)
}
