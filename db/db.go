// Package db is the device database: OneTable-style models over a
// pipeline.Store, with schema validation, value templates, secondary
// indexes, finds, and an outbox change written atomically with each item.
package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// Options configure a DB.
type Options struct {
	// Schema is the loaded schema; models with `enable: cloud` are left out.
	Schema *schema.Schema
	// Store is the storage engine, owned by the caller (Close does not close it).
	Store pipeline.Store
	// Site is this site's id, the origin of its versions.
	Site string
	// Side is where this DB runs; models not enabled there do not exist.
	// Default schema.SideDevice.
	Side   schema.Side
	Logger *slog.Logger
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// MaxClockSkew is how far ahead of this site's clock a replicated
	// change's version may be; one further ahead is refused, so no site
	// can drag the clocks of the others into the future. Default
	// pipeline.DefaultMaxClockSkew (5 minutes).
	MaxClockSkew time.Duration
	// ReadCacheBytes bounds the cache of what reads found: set, half
	// for items by key (Get) and half for whole partitions of the primary
	// index (Find by a complete hash key); 0: DefaultReadCacheBytes of
	// items only on a device, none on the cloud, whose store others may
	// write; negative: none. The cache assumes every write to the items
	// goes through this DB.
	ReadCacheBytes int64
}

// DB is the device database. It is safe for concurrent use.
type DB struct {
	schema *schema.Schema
	models map[string]*model
	store  pipeline.Store
	clock  *pipeline.Clock
	site   string
	side   schema.Side
	log    *slog.Logger
	now    func() time.Time
	// maxSkew bounds how far ahead of the clock a remote version may be.
	maxSkew time.Duration
	// captured says the store's change stream feeds its outbox: writes
	// never Emit (pipeline.ChangeCapturer).
	captured bool
	// cache holds what reads found (nil: none); writes invalidate it.
	cache *readCache
	// localTriggers are the trigger queues of local writes (SetLocalTriggers).
	localTriggers atomic.Pointer[[]string]

	ctxMu   sync.RWMutex
	context Item

	subMu  sync.RWMutex
	subs   map[int]subscription
	nextID int

	closed atomic.Bool
}

// Open checks opts and returns a DB over opts.Store.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Schema == nil || opts.Store == nil {
		return nil, errors.New("db: Schema and Store are required")
	}
	if opts.Site == "" {
		return nil, errors.New("db: Site is required")
	}
	if opts.Side == "" {
		opts.Side = schema.SideDevice
	}
	d := &DB{
		schema: opts.Schema,
		models: map[string]*model{},
		store:  opts.Store,
		site:   opts.Site,
		side:   opts.Side,
		log:    opts.Logger,
		now:    opts.Now,
		subs:   map[int]subscription{},

		maxSkew: opts.MaxClockSkew,
	}
	if d.maxSkew <= 0 {
		d.maxSkew = pipeline.DefaultMaxClockSkew
	}
	if c, ok := opts.Store.(pipeline.ChangeCapturer); ok {
		d.captured = c.CapturesChanges()
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.clock = &pipeline.Clock{Origin: opts.Site, Now: d.now}
	switch {
	case opts.ReadCacheBytes > 0:
		d.cache = newReadCache(opts.ReadCacheBytes, true)
	case opts.ReadCacheBytes == 0 && opts.Side == schema.SideDevice:
		d.cache = newReadCache(DefaultReadCacheBytes, false)
	}
	for name, m := range opts.Schema.Models {
		if m.Process.Enable == opts.Side || m.Process.Enable == schema.SideBoth || m.Process.Enable == "" {
			d.models[name] = compileModel(opts.Schema, m, opts.Side)
		}
	}
	return d, nil
}

// Replicates reports whether changes of model replicate away from this
// side (the model exists here and its sync rule points away from it).
func (d *DB) Replicates(model string) bool {
	m, ok := d.models[model]
	return ok && m.emits
}

// Schema returns the schema the DB was opened with.
func (d *DB) Schema() *schema.Schema { return d.schema }

// Site returns this site's id.
func (d *DB) Site() string { return d.site }

// Store returns the storage engine.
func (d *DB) Store() pipeline.Store { return d.store }

// Clock returns the DB's hybrid logical clock.
func (d *DB) Clock() *pipeline.Clock { return d.clock }

// SetContext sets attributes blended into every write and key lookup, as
// OneTable's setContext does (for example deviceId). Context values win over
// the caller's properties, so a device cannot write another device's id.
// Only attributes the model declares are blended.
func (d *DB) SetContext(c Item) {
	d.ctxMu.Lock()
	d.context = maps.Clone(c)
	d.ctxMu.Unlock()
}

// Context returns a copy of the current context.
func (d *DB) Context() Item {
	d.ctxMu.RLock()
	defer d.ctxMu.RUnlock()
	return maps.Clone(d.context)
}

// Close marks the DB closed; later calls fail with pipeline.ErrClosed. The
// store stays open: its owner closes it.
func (d *DB) Close(context.Context) error {
	d.closed.Store(true)
	return nil
}

func (d *DB) model(name string) (*model, error) {
	if d.closed.Load() {
		return nil, fmt.Errorf("db: %w", pipeline.ErrClosed)
	}
	m, ok := d.models[name]
	if !ok {
		names := make([]string, 0, len(d.models))
		for n := range d.models {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: unknown model %q (known: %s)", pipeline.ErrNotFound, name, strings.Join(names, ", "))
	}
	return m, nil
}

// readProps is blendContext for reads, which only look props up: props
// itself when no context attribute applies (the common case), so a read
// does not copy the caller's map.
func (d *DB) readProps(m *model, props Item) Item {
	d.ctxMu.RLock()
	n := len(d.context)
	d.ctxMu.RUnlock()
	if n == 0 && props != nil {
		return props
	}
	return d.blendContext(m, props)
}

// blendContext returns props with the context attributes the model has.
func (d *DB) blendContext(m *model, props Item) Item {
	out := maps.Clone(props)
	if out == nil {
		out = Item{}
	}
	d.ctxMu.RLock()
	defer d.ctxMu.RUnlock()
	for k, v := range d.context {
		if _, ok := m.Fields[k]; ok {
			out[k] = v
		}
	}
	return out
}
