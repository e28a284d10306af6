package external

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

// NewStageFactory returns the factory of external stages.
func NewStageFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindStage, TypeName,
		"a stage in a process of its own (a binary built with pipeline/sdk)", NewDefaultConfig,
		func(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
			p, err := open(ctx, set, c)
			if err != nil {
				return nil, err
			}
			return &Stage{p: p}, nil
		})
}

// NewTriggerFactory returns the factory of external triggers.
func NewTriggerFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTrigger, TypeName,
		"a trigger in a process of its own (a binary built with pipeline/sdk)", NewDefaultConfig,
		func(ctx context.Context, set pipeline.Settings, c Config) (any, error) {
			p, err := open(ctx, set, c)
			if err != nil {
				return nil, err
			}
			return &Trigger{p: p}, nil
		})
}

// open starts the plugin once, so that a binary that is missing, of
// another protocol, of another checksum, or that refuses its config stops
// the start-up with a clear error.
func open(ctx context.Context, set pipeline.Settings, c Config) (*process, error) {
	name := set.ID.String()
	p, err := newProcess(name, resolvePath(set.Dir, c.Path), c, sdk.ConfigureRequest{Kind: set.Kind, Name: name, Site: set.Site}, loggerOf(set))
	if err != nil {
		return nil, err
	}
	if _, err := p.clientFor(ctx); err != nil {
		p.close()
		return nil, pipeline.Permanent(fmt.Errorf("%w: %w", pipeline.ErrInvalid, err))
	}
	return p, nil
}

// resolvePath anchors a relative plugin path at the config's folder.
func resolvePath(dir, path string) string {
	if !filepath.IsAbs(path) && dir != "" {
		return filepath.Join(dir, path)
	}
	return path
}

func loggerOf(set pipeline.Settings) *slog.Logger {
	if set.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return set.Logger
}

// Stage is an external stage.
type Stage struct{ p *process }

// Process sends the batch to the plugin and checks what comes back: only
// changes it was given (by model and key), at most as many, each at most
// once, kept or rejected.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) (*pipeline.Batch, error) {
	if b == nil {
		return nil, nil
	}
	var out *pipeline.Batch
	err := s.p.call(ctx, func(ctx context.Context, c *sdk.Client) error {
		var err error
		out, err = c.Process(ctx, b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := checkReply(b, out); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", s.p.name, err)
	}
	return out, nil
}

// Close stops the plugin process.
func (s *Stage) Close(context.Context) error { s.p.close(); return nil }

// Trigger is an external trigger.
type Trigger struct{ p *process }

// Fire sends the changes to the plugin.
func (t *Trigger) Fire(ctx context.Context, pipelineName string, changes []pipeline.Change) error {
	if len(changes) == 0 {
		return nil
	}
	return t.p.call(ctx, func(ctx context.Context, c *sdk.Client) error { return c.Fire(ctx, pipelineName, changes) })
}

// Close stops the plugin process.
func (t *Trigger) Close(context.Context) error { t.p.close(); return nil }

var (
	_ pipeline.Stage   = (*Stage)(nil)
	_ pipeline.Trigger = (*Trigger)(nil)
)
