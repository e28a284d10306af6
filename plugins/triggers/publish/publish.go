// Package publish is the `publish` trigger: it publishes each change a
// pipeline applied as a JSON message on an MQTT topic, through a
// transport of the config, so that other clients of the broker (a
// dashboard, a rule engine) hear of it. Topics come from a template, per
// model if wanted.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/triggers/filter"
)

// TypeName is the trigger's type in pipelines.yaml.
const TypeName = "publish"

// DefaultTopic is the topic template when the config gives none.
const DefaultTopic = "iotod/changes/{site}/{model}"

// Config configures the publish trigger.
type Config struct {
	filter.Filter `yaml:",inline"`
	// Transport names the transport (of type mqtt) to publish through.
	Transport string `yaml:"transport" desc:"the transport (type mqtt) to publish through; required"`
	// Topic is the topic template: {site} (this site), {model}, {op},
	// {origin}, {pk} and {sk} are replaced by the change's values.
	Topic string `yaml:"topic" desc:"topic template with {site}, {model}, {op}, {origin}, {pk}, {sk} (default iotod/changes/{site}/{model})"`
	// Topics overrides Topic per model.
	Topics map[string]string `yaml:"topics" desc:"topic template per model, over topic"`

	_ struct{}
}

// placeholder matches a {name} of a template.
var placeholder = regexp.MustCompile(`\{([a-z]+)\}`)

var known = map[string]bool{"site": true, "model": true, "op": true, "origin": true, "pk": true, "sk": true}

// Validate checks the filter, the transport name and the templates.
func (c *Config) Validate() error {
	errs := []error{c.Filter.Validate()}
	if c.Transport == "" {
		errs = append(errs, fmt.Errorf("%w: transport: required: the mqtt transport to publish through", pipeline.ErrInvalid))
	}
	check := func(field, tmpl string) {
		if tmpl == "" {
			errs = append(errs, fmt.Errorf("%w: %s: empty topic", pipeline.ErrInvalid, field))
			return
		}
		if strings.HasPrefix(tmpl, "$") || strings.ContainsAny(placeholder.ReplaceAllString(tmpl, ""), "+#{}") {
			errs = append(errs, fmt.Errorf("%w: %s: %q: a topic holds no wildcard ('+', '#'), starts with no '$', and uses '{' '}' only around a placeholder", pipeline.ErrInvalid, field, tmpl))
		}
		for _, m := range placeholder.FindAllStringSubmatch(tmpl, -1) {
			if !known[m[1]] {
				errs = append(errs, fmt.Errorf("%w: %s: unknown placeholder {%s} (known: site, model, op, origin, pk, sk)", pipeline.ErrInvalid, field, m[1]))
			}
		}
	}
	check("topic", c.Topic)
	for model, tmpl := range c.Topics {
		check("topics."+model, tmpl)
	}
	return errors.Join(errs...)
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{Filter: filter.NewDefault(), Topic: DefaultTopic}
}

// NewFactory returns the publish trigger's factory.
func NewFactory() pipeline.Factory {
	return pipeline.MakeFactory(pipeline.KindTrigger, TypeName,
		"publishes each applied change as JSON on an MQTT topic of a transport",
		NewDefaultConfig, create)
}

func create(_ context.Context, set pipeline.Settings, c Config) (any, error) {
	if set.Transport == nil {
		return nil, fmt.Errorf("%w: transport: %q: no transports here", pipeline.ErrInvalid, c.Transport)
	}
	t, ok := set.Transport(c.Transport)
	if !ok {
		return nil, fmt.Errorf("%w: transport: no transport %q in the config", pipeline.ErrInvalid, c.Transport)
	}
	p, ok := t.(pipeline.TopicPublisher)
	if !ok {
		return nil, fmt.Errorf("%w: transport: %q cannot publish on a topic of its own (use a transport of type mqtt)", pipeline.ErrInvalid, c.Transport)
	}
	return &Trigger{site: set.Site, filter: c.Filter, pub: p, topic: c.Topic, topics: c.Topics}, nil
}

// Trigger publishes changes.
type Trigger struct {
	site   string
	filter filter.Filter
	pub    pipeline.TopicPublisher
	topic  string
	topics map[string]string
}

// Fire publishes each selected change in order; it stops at the first
// that fails (the queue delivers the batch again: the ones before it are
// published again, at least once in all). A change whose topic is too
// long, or that the transport refuses, fails the batch permanently.
func (t *Trigger) Fire(ctx context.Context, _ string, changes []pipeline.Change) error {
	for _, c := range t.filter.Select(t.site, changes) {
		topic, err := t.topicOf(c)
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("publish trigger: %s %s: %w", c.Model, c.Key, err))
		}
		body, err := json.Marshal(filter.Payload(c))
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("publish trigger: %s %s: %w", c.Model, c.Key, err))
		}
		if err := t.pub.PublishTopic(ctx, topic, body); err != nil {
			if errors.Is(err, pipeline.ErrTooLargeForTransport) {
				err = pipeline.Permanent(err)
			}
			return fmt.Errorf("publish trigger: %s %s: %w", c.Model, c.Key, err)
		}
	}
	return nil
}

// topicOf fills the change's template. A value's '%', '/', '+' and '#'
// are percent-encoded (%25, %2F, %2B, %23: OneTable keys hold '#'), so a
// value stays one level and never a wildcard.
func (t *Trigger) topicOf(c pipeline.Change) (string, error) {
	tmpl := t.topic
	if m, ok := t.topics[c.Model]; ok {
		tmpl = m
	}
	values := map[string]string{"site": t.site, "model": c.Model, "op": string(c.Op), "origin": c.Origin, "pk": c.Key.PK, "sk": c.Key.SK}
	topic := placeholder.ReplaceAllStringFunc(tmpl, func(s string) string {
		return levelEscaper.Replace(values[s[1:len(s)-1]])
	})
	if len(topic) > maxTopic {
		return "", fmt.Errorf("the topic is %d bytes, at most %d", len(topic), maxTopic)
	}
	return topic, nil
}

// levelEscaper keeps a value within one topic level.
var levelEscaper = strings.NewReplacer("%", "%25", "/", "%2F", "+", "%2B", "#", "%23")

// maxTopic bounds a topic (the mqtt transport takes at most 1024 bytes).
const maxTopic = 1024

var _ pipeline.Trigger = (*Trigger)(nil)
