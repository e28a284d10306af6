package db

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// MaxItemDepth is how deep an item may nest objects and arrays
// (DynamoDB's limit).
const MaxItemDepth = 32

// Source is who sent replicated changes, as the transport vouches for
// it, never as the payload claims.
type Source struct {
	// Site is the sending site. On the cloud it is the device a batch came
	// from: every change must originate there. Empty for a trusted local
	// caller (a test, a benchmark, a migration): each change's own origin
	// is then taken as its sender.
	Site string
	// Owner is the item attribute naming the owning device (e.g.
	// deviceId); empty turns ownership checks off. Ownership is checked
	// only for changes arriving on the cloud.
	Owner string
	// Triggers names the trigger queues every change this apply applies
	// is queued to, in the same transaction (see QueueTriggers).
	Triggers []string
}

// incoming is a remote change that passed validation: its model, its
// decoded item (nil for a remove), and what is stored at its key.
type incoming struct {
	m   *model
	new Item
	// old and rec are what is stored at the key: the live item (nil when
	// none) and its record (also a tombstone's).
	old Item
	rec *pipeline.Record
	// owner is the owner of what is stored at the key ("" for none),
	// kept on the tombstone of a remove.
	owner string
}

// validate is the one check every replicated change passes before it
// touches a store, whatever the store. First what the change says alone
// (check): the envelope (op, model name, key, origin, a version of that
// origin, not ahead of this site's clock); the model known, enabled here
// and replicating towards this side; the key of the template's shape;
// for an item: valid UTF-8, bounded nesting, the type field naming the
// model, every attribute valid for the schema, and the key equal to what
// the model's templates compute from the item (derived templates are
// recomputed). Then, against what is stored at the key (checkStored): a
// record of the same model, and on the cloud ownership decided by what is
// stored and by the sender, not by the body.
func (w *txWriter) validate(ctx context.Context, c *pipeline.Change, src Source) (*incoming, error) {
	in, err := w.check(c, src)
	if err != nil {
		return nil, err
	}
	if err := w.checkStored(ctx, c, src, in); err != nil {
		return nil, err
	}
	return in, nil
}

// sender is the site a change came from.
func (src Source) sender(c *pipeline.Change) string {
	if src.Site == "" {
		return c.Origin
	}
	return src.Site
}

func (w *txWriter) check(c *pipeline.Change, src Source) (*incoming, error) {
	d := w.d
	if err := c.Validate(); err != nil {
		return nil, pipeline.Permanent(err)
	}
	// Devices are held to the cloud's clock. A device does not hold the
	// cloud to its own: the cloud's versions are bounded by its own check,
	// and a device clock that lags (no RTC, no NTP yet) must not make it
	// refuse everything; its HLC moves on past what it observes.
	if d.side == schema.SideCloud {
		if err := c.Version.CheckSkew(w.now, d.maxSkew); err != nil {
			return nil, err
		}
	}
	sender := src.sender(c)
	if d.side == schema.SideCloud && c.Origin != sender {
		return nil, fmt.Errorf("%w: origin %s is not the sending site %s", pipeline.ErrInvalid, pipeline.Quote(c.Origin), pipeline.Quote(sender))
	}
	m, ok := d.models[c.Model]
	if !ok {
		return nil, pipeline.Permanent(fmt.Errorf("%w: unknown model %s on the %s", pipeline.ErrNotFound, pipeline.Quote(c.Model), d.side))
	}
	if !m.accepts {
		return nil, fmt.Errorf("%w: model %s does not replicate to the %s (process: enable %s, sync %s)",
			pipeline.ErrInvalid, m.Name, d.side, orBoth(m.Process.Enable), m.Process.Sync)
	}
	if err := m.checkKeyShape(c.Key); err != nil {
		return nil, err
	}
	in := &incoming{m: m}
	if c.Op == pipeline.OpRemove {
		return in, nil
	}
	item, err := m.checkIncomingItem(c)
	if err != nil {
		return nil, err
	}
	if d.side == schema.SideCloud && src.Owner != "" {
		if owner, _ := item[src.Owner].(string); owner != "" && owner != sender {
			return nil, fmt.Errorf("%w: %s %s: its %s says it belongs to %s, not to the sending site %s", pipeline.ErrInvalid, m.Name, c.Key, src.Owner, pipeline.Quote(owner), pipeline.Quote(sender))
		}
	}
	in.new = item
	return in, nil
}

// checkStored loads what is stored at the change's key into in and
// checks the change may replace it.
func (w *txWriter) checkStored(ctx context.Context, c *pipeline.Change, src Source, in *incoming) error {
	rec, err := w.tx.Get(ctx, c.Key)
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", c.Key, err)
	}
	m := in.m
	stored := rec.Model
	if t, ok := tombstoneOf(rec); ok {
		stored, in.owner = t.Model, t.Owner
	}
	if stored != m.Name {
		return fmt.Errorf("%w: %s %s: the key holds a %s item", pipeline.ErrInvalid, m.Name, c.Key, pipeline.Quote(stored))
	}
	in.rec = rec
	if rec.Model == m.Name {
		if in.old, err = decodeItem(rec.Item); err != nil {
			return fmt.Errorf("stored item %s: %w", c.Key, err)
		}
		if src.Owner != "" {
			in.owner, _ = in.old[src.Owner].(string)
		}
	}
	if sender := src.sender(c); w.d.side == schema.SideCloud && src.Owner != "" && in.owner != "" && in.owner != sender {
		return fmt.Errorf("%w: %s %s belongs to %s, not to the sending site %s", pipeline.ErrInvalid, m.Name, c.Key, pipeline.Quote(in.owner), pipeline.Quote(sender))
	}
	return nil
}

func orBoth(s schema.Side) schema.Side {
	if s == "" {
		return schema.SideBoth
	}
	return s
}

// checkIncomingItem decodes and checks a replicated item against the
// model and returns it with its type field, version and derived
// templates set.
func (m *model) checkIncomingItem(c *pipeline.Change) (Item, error) {
	if !utf8.Valid(c.Item) {
		return nil, fmt.Errorf("%w: %s %s: item is not valid UTF-8", pipeline.ErrInvalid, m.Name, c.Key)
	}
	if len(c.Item) > MaxItemSize {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, over the %d byte item limit", pipeline.ErrTooLarge, m.Name, c.Key, len(c.Item), MaxItemSize)
	}
	if err := pipeline.CheckJSONDepth(c.Item, MaxItemDepth+1); err != nil {
		return nil, fmt.Errorf("%s %s: %w", m.Name, c.Key, err)
	}
	item, err := decodeItem(c.Item)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: item is not a JSON object: %s", pipeline.ErrInvalid, m.Name, c.Key, pipeline.Truncate(err.Error(), 80))
	}
	if t, ok := item[m.typeField]; ok {
		if s, isStr := t.(string); !isStr || s != m.Name {
			return nil, invalid(m.Name+"."+m.typeField, "names another model: want %q", m.Name)
		}
	}
	item[m.typeField] = m.Name
	delete(item, VersionAttr) // the change's version is the item's
	if err := m.check(item); err != nil {
		return nil, err
	}
	key, missing := m.primaryKey(item)
	if len(missing) > 0 {
		return nil, invalid(m.Name, "missing key attributes: %s", strings.Join(missing, ", "))
	}
	for _, part := range []struct{ attr, want string }{{m.primary.Hash, key.PK}, {m.primary.Sort, key.SK}} {
		if given, ok := item[part.attr].(string); ok && part.attr != "" && given != part.want {
			return nil, fmt.Errorf("%w: %s: its %s %s is not the item's key %s (from the model's template)", pipeline.ErrInvalid, m.Name,
				part.attr, pipeline.Quote(given), pipeline.Quote(part.want))
		}
	}
	if key != c.Key {
		return nil, fmt.Errorf("%w: %s: the change's key %s is not the item's key %s", pipeline.ErrInvalid, m.Name,
			pipeline.Truncate(c.Key.String(), 100), pipeline.Truncate(key.String(), 100))
	}
	if err := m.computeTemplates(item, key); err != nil {
		return nil, err
	}
	item[VersionAttr] = c.Version.String()
	return item, nil
}

// checkKeyShape refuses a key whose parts cannot have come from the
// model's key templates (the literal text around their variables), so a
// remove cannot aim at a key of another shape.
func (m *model) checkKeyShape(k pipeline.Key) error {
	if m.primary.Sort == "" && k.SK != "" {
		return fmt.Errorf("%w: %s: key.sk %s given, but the model's primary index has no sort key", pipeline.ErrInvalid, m.Name, pipeline.Quote(k.SK))
	}
	for _, part := range []struct {
		name string
		re   *regexp.Regexp
		v    string
	}{{"pk", m.pkShape, k.PK}, {"sk", m.skShape, k.SK}} {
		if part.re != nil && !part.re.MatchString(part.v) {
			return fmt.Errorf("%w: %s: key.%s %s does not fit the model's template %s", pipeline.ErrInvalid, m.Name, part.name,
				pipeline.Quote(part.v), pipeline.Quote(m.Fields[m.keyAttr(part.name)].Value))
		}
	}
	return nil
}

func (m *model) keyAttr(part string) string {
	if part == "pk" {
		return m.primary.Hash
	}
	return m.primary.Sort
}

// templateShape compiles a value template to the pattern of the values it
// makes: its literal text, with anything in place of each variable. Nil
// when attr has no template.
func templateShape(f *schema.Field) *regexp.Regexp {
	if f == nil || f.Value == "" {
		return nil
	}
	var b strings.Builder
	b.WriteString(`^`)
	rest := f.Value
	for {
		i := strings.Index(rest, "${")
		j := -1
		if i >= 0 {
			j = strings.IndexByte(rest[i:], '}')
		}
		if i < 0 || j < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		b.WriteString(`(?s:.*)`)
		rest = rest[i+j+1:]
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil
	}
	return re
}
