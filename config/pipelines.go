package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// The keys of a pipeline entry.
var pipelineKeys = []string{"ack_timeout", "direction", "from", "max_in_flight", "max_in_flight_bytes", "owner", "stages", "to", "trigger_delivery", "triggers"}

// pipelineEntry decodes pipelines.NAME. The wiring between entries is
// checked later, by validatePipelines.
func (l *loader) pipelineEntry(name string, n *yaml.Node, path string) *PipelineConfig {
	p := &PipelineConfig{Name: name, AckTimeout: DefaultAckTimeout, TriggerDelivery: pipeline.DefaultTriggerDelivery()}
	l.checkMapping(n, path, func(key string) reflect.Type {
		for _, k := range pipelineKeys {
			if k == key {
				return handledType
			}
		}
		return nil
	}, pipelineKeys)
	if n.Kind != yaml.MappingNode {
		return p
	}
	p.From = l.ref(n, path, "from")
	p.To = l.ref(n, path, "to")
	if d := l.str(mappingValue(n, "direction"), path+".direction"); d != "" {
		p.Direction = pipeline.Direction(d)
		l.oneOf(path+".direction", d, string(pipeline.Up), string(pipeline.Down))
	}
	if at := mappingValue(n, "ack_timeout"); at != nil {
		l.decode(at, path+".ack_timeout", &p.AckTimeout)
		if p.AckTimeout <= 0 {
			l.report(path+".ack_timeout", "must be positive, got %s", p.AckTimeout)
		}
	}
	if v := mappingValue(n, "max_in_flight"); v != nil {
		l.decode(v, path+".max_in_flight", &p.MaxInFlight)
		if p.MaxInFlight < 1 || p.MaxInFlight > 10_000_000 {
			l.report(path+".max_in_flight", "must be between 1 and 10000000 changes, got %d", p.MaxInFlight)
		}
	}
	if v := mappingValue(n, "max_in_flight_bytes"); v != nil {
		l.decode(v, path+".max_in_flight_bytes", &p.MaxInFlightBytes)
		if p.MaxInFlightBytes < 64<<10 || p.MaxInFlightBytes > 1<<30 {
			l.report(path+".max_in_flight_bytes", "must be between 64KB and 1GB, got %d bytes", int64(p.MaxInFlightBytes))
		}
	}
	if o := mappingValue(n, "owner"); o != nil {
		p.Owner = l.str(o, path+".owner")
	}
	if td := mappingValue(n, "trigger_delivery"); td != nil {
		l.decode(td, path+".trigger_delivery", &p.TriggerDelivery)
		d, at := p.TriggerDelivery, path+".trigger_delivery."
		if d.Batch < 1 || d.Batch > 10000 {
			l.report(at+"batch", "must be between 1 and 10000, got %d", d.Batch)
		}
		if d.Attempts < 1 || d.Attempts > 1000 {
			l.report(at+"attempts", "must be between 1 and 1000, got %d", d.Attempts)
		}
		if d.Timeout <= 0 {
			l.report(at+"timeout", "must be positive, got %s", d.Timeout)
		}
		if d.RetryDelay <= 0 || d.MaxRetryDelay < d.RetryDelay {
			l.report(at+"retry_delay", "must be positive and at most max_retry_delay, got %s and %s", d.RetryDelay, d.MaxRetryDelay)
		}
	}
	p.Stages = l.components(mappingValue(n, "stages"), path+".stages", pipeline.KindStage)
	p.Triggers = l.components(mappingValue(n, "triggers"), path+".triggers", pipeline.KindTrigger)
	return p
}

// ref reads the from or to key of pipeline n: storage/NAME or
// transport/NAME. The zero Ref means missing or faulty (reported).
func (l *loader) ref(n *yaml.Node, path, key string) Ref {
	p := join(path, key)
	v := l.str(mappingValue(n, key), p)
	if v == "" {
		if !l.failed[p] {
			l.report(p, "is required: storage/NAME or transport/NAME")
		}
		return Ref{}
	}
	kind, name, _ := strings.Cut(v, "/")
	if (kind != string(pipeline.KindStorage) && kind != string(pipeline.KindTransport)) || name == "" {
		l.report(p, "%q is not storage/NAME or transport/NAME", v)
		return Ref{}
	}
	return Ref{Kind: pipeline.Kind(kind), Name: name}
}

// components decodes a stages or triggers list.
func (l *loader) components(n *yaml.Node, path string, kind pipeline.Kind) []ComponentConfig {
	if isNull(n) || !l.wantKind(n, yaml.SequenceNode, path) {
		return nil
	}
	l.lines[path] = l.pos(n)
	var out []ComponentConfig
	seen := map[pipeline.ID]int{}
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		c, ok := l.component(item, p, kind)
		if !ok {
			continue
		}
		if first, dup := seen[c.ID]; dup {
			list := path[strings.LastIndexByte(path, '.')+1:]
			l.report(p, "%s is already %s[%d]: give each its own name, such as %s/second", c.ID, list, first, c.ID.Type)
			continue
		}
		seen[c.ID] = i
		at := l.pos(item)
		c.Where, c.Path = fmt.Sprintf("%s:%d", at.file, at.line), p
		out = append(out, c)
	}
	return out
}

// validatePipelines checks what ties pipelines to the rest: their ends
// exist and are a storage and a transport, their direction, one reader per
// outbox, triggers only where changes are applied, and no cycle.
func (l *loader) validatePipelines(c *Config) {
	readers := map[string]string{} // storage -> the pipeline reading its outbox
	for _, name := range sortedKeys(c.Pipelines) {
		p := c.Pipelines[name]
		path := "pipelines." + name
		from, to := l.exists(c, p.From, path+".from"), l.exists(c, p.To, path+".to")
		if !from || !to {
			continue
		}
		if p.From.Kind == p.To.Kind {
			l.report(path+".to", "%s -> %s: a pipeline goes from a storage to a transport or from a transport to a storage", p.From, p.To)
			continue
		}
		st := c.Storage[p.Storage()]
		p.Side = st.Side
		if p.Direction == "" {
			// From a device or into the cloud is up; the rest is down.
			if p.Sends() == (st.Side == schema.SideDevice) {
				p.Direction = pipeline.Up
			} else {
				p.Direction = pipeline.Down
			}
		}
		if p.Sends() {
			if other, dup := readers[p.From.Name]; dup {
				l.report(path+".from", "%s is already read by pipeline %s: a storage's outbox feeds one pipeline", p.From, other)
			}
			readers[p.From.Name] = name
		}
	}
	l.checkCycles(c)
}

// exists reports whether r names an entry of c, reporting at path when not.
func (l *loader) exists(c *Config, r Ref, path string) bool {
	var names []string
	switch r.Kind {
	case "":
		return false
	case pipeline.KindStorage:
		if _, ok := c.Storage[r.Name]; ok {
			return true
		}
		names = sortedKeys(c.Storage)
	case pipeline.KindTransport:
		if _, ok := c.Transports[r.Name]; ok {
			return true
		}
		names = sortedKeys(c.Transports)
	}
	if len(names) == 0 {
		l.report(path, "%s names nothing: there is no %s entry", r, r.Kind)
	} else {
		l.report(path, "%s names nothing: the %s entries are %s", r, r.Kind, strings.Join(names, ", "))
	}
	return false
}

// hop is a storage's changes going out by send and into another storage
// by recv, over one transport in one direction.
type hop struct{ send, recv *PipelineConfig }

// checkCycles reports pipelines that carry a storage's changes, in one
// direction, through transports back into the same storage: a storage
// that relays what it applies would send them round forever.
func (l *loader) checkCycles(c *Config) {
	next := map[string][]hop{}
	for _, s := range sortedKeys(c.Pipelines) {
		send := c.Pipelines[s]
		if send.Direction == "" || send.Side == "" || !send.Sends() {
			continue
		}
		for _, r := range sortedKeys(c.Pipelines) {
			recv := c.Pipelines[r]
			if recv.Side != "" && !recv.Sends() && recv.From == send.To && recv.Direction == send.Direction {
				next[send.From.Name] = append(next[send.From.Name], hop{send, recv})
			}
		}
	}
	// A cycle is reported from its least storage: the search from start
	// visits only greater ones, along hops of one direction.
	for _, dir := range []pipeline.Direction{pipeline.Up, pipeline.Down} {
		for _, start := range sortedKeys(next) {
			l.findCycle(next, start, dir)
		}
	}
}

// findCycle reports the first cycle found through start in direction dir.
func (l *loader) findCycle(next map[string][]hop, start string, dir pipeline.Direction) {
	seen := map[string]bool{}
	var path []hop
	var walk func(at string) bool
	walk = func(at string) bool {
		for _, h := range next[at] {
			to := h.recv.To.Name
			switch {
			case h.send.Direction != dir:
			case to == start:
				l.reportCycle(append(path, h))
				return true
			case to > start && !seen[to]:
				seen[to] = true
				path = append(path, h)
				if walk(to) {
					return true
				}
				path = path[:len(path)-1]
			}
		}
		return false
	}
	walk(start)
}

func (l *loader) reportCycle(hops []hop) {
	var b strings.Builder
	b.WriteString(hops[0].send.From.String())
	for _, h := range hops {
		fmt.Fprintf(&b, " -> %s -> %s -> %s -> %s", h.send.Name, h.send.To, h.recv.Name, h.recv.To)
	}
	l.report("pipelines."+hops[0].send.Name, "the pipelines form a cycle: %s (all %s): a change would go round forever",
		b.String(), hops[0].send.Direction)
}
