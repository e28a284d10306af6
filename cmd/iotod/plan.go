package main

import (
	"path/filepath"
	"sort"

	"github.com/iotod/iotod/config"
	"github.com/iotod/iotod/runner"
	"github.com/iotod/iotod/schema"
)

// planOf turns a checked config into what the runner builds. Dead letters
// go to data/deadletters.jsonl under the config file's folder.
func planOf(cfg *config.Config, sch *schema.Schema) runner.Plan {
	plan := runner.Plan{Site: cfg.Site, Schema: sch, Dir: cfg.Dir,
		Storage: map[string]runner.StoragePlan{}, Transports: map[string]runner.ComponentPlan{}, Broker: cfg.Broker,
		MaxClockSkew: cfg.MaxClockSkew}
	for name, s := range cfg.Storage {
		plan.Storage[name] = runner.StoragePlan{ComponentPlan: runner.ComponentPlan{ID: s.ID(), Factory: s.Factory, Config: s.Config},
			Side: s.Side, Site: s.Site, ReadCache: s.ReadCache}
	}
	for name, t := range cfg.Transports {
		plan.Transports[name] = runner.ComponentPlan{ID: t.ID(), Factory: t.Factory, Config: t.Config}
	}
	names := make([]string, 0, len(cfg.Pipelines))
	for name := range cfg.Pipelines {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := cfg.Pipelines[name]
		pp := runner.PipelinePlan{Name: name, Direction: p.Direction, AckTimeout: p.AckTimeout, MaxInFlight: p.MaxInFlight, MaxInFlightBytes: int(p.MaxInFlightBytes), Owner: p.Owner, TriggerDelivery: p.TriggerDelivery,
			From: runner.Ref{Kind: p.From.Kind, Name: p.From.Name}, To: runner.Ref{Kind: p.To.Kind, Name: p.To.Name}}
		pp.Stages = componentPlans(p.Stages)
		pp.Triggers = componentPlans(p.Triggers)
		plan.Pipelines = append(plan.Pipelines, pp)
	}
	if len(cfg.Pipelines) > 0 {
		plan.DeadLetters = filepath.Join(cfg.Dir, "data", "deadletters.jsonl")
		plan.DeadLetterMax, plan.DeadLetterKeep = int64(cfg.DeadLetters.MaxSize), cfg.DeadLetters.Keep
	}
	return plan
}

func componentPlans(cs []config.ComponentConfig) []runner.ComponentPlan {
	out := make([]runner.ComponentPlan, len(cs))
	for i, c := range cs {
		out[i] = runner.ComponentPlan{ID: c.ID, Factory: c.Factory, Config: c.Config}
	}
	return out
}
