package runner

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// The fleet is the cloud's view of every device (site) it has heard
// from: when it last heard from it, the cursor of its last catch-up,
// the changes it sent and those the cloud refused, and the down changes
// waiting for its ack. Receivers, senders and catch-up responders of a
// cloud worker record into it as messages arrive (a map update under a
// mutex: nothing is logged per message); GET /v1/devices lists it, and
// the iotod_fleet_* metrics sum it up with a bounded label set.
//
// It survives a restart: every fleetSaveEvery the devices with news are
// written to the worker's cloud store, one iotod-internal meta record
// each (pk "~meta", sk "fleet#<site>": catch-ups, finds and the DynamoDB
// stream skip them), read back at start. News that is only contact (the
// times, the count of changes) waits until the device's record is
// fleetLazyEvery old; a new device, a refusal or another catch-up cursor
// goes at the next save; everything goes at shutdown. A save merges with what the
// store holds (times: the later; counters: what is stored plus what
// this worker counted since its last save), so several workers on one
// store add up instead of overwriting each other.

// Limits and periods of the fleet.
const (
	// MaxFleetDevices bounds the devices the index keeps: messages from
	// more sites are counted (iotod_fleet_untracked_messages_total), not
	// indexed.
	MaxFleetDevices = 100_000
	// DefaultFleetLimit and MaxFleetLimit bound a page of devices.
	DefaultFleetLimit = 100
	MaxFleetLimit     = 1000

	fleetSaveEvery   = 5 * time.Second
	fleetReloadEvery = time.Minute
	// fleetLazyEvery is how often a device whose news is only contact
	// (times, counts of applied changes) is saved: a busy fleet costs one
	// write per device per minute, not one per save.
	fleetLazyEvery  = time.Minute
	fleetMetaPrefix = "fleet#"
	// fleetChunk is the most records one save transaction writes.
	fleetChunk = 25
	// maxRefusalLen bounds a kept refusal reason.
	maxRefusalLen = 256
	// connectedTTL is how long a read of the broker's clients is reused.
	connectedTTL = time.Second
)

// The sorts of a fleet listing; each has its natural direction, and a
// leading "-" reverses it.
const (
	FleetSortSite     = "site"      // A to Z
	FleetSortLastSeen = "last_seen" // the longest silent first
	FleetSortRefused  = "refused"   // the most refused first
	FleetSortPending  = "pending"   // the most pending first
)

var fleetSorts = []string{FleetSortSite, FleetSortLastSeen, FleetSortRefused, FleetSortPending}

// DeviceRecord is what the cloud keeps of a device across restarts.
type DeviceRecord struct {
	Site string `json:"site"`
	// FirstSeen and LastSeen are the first and last message from it: an
	// up batch, an ack of a down batch or a sync request.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	LastUp    time.Time `json:"last_up,omitzero"`
	LastAck   time.Time `json:"last_ack,omitzero"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	// Cursor is what its last sync request asked from ("" with FullSync:
	// everything).
	Cursor   string `json:"cursor,omitempty"`
	FullSync bool   `json:"full_sync,omitempty"`
	// Changes counts the changes it sent up; Refused those the cloud
	// refused (and unreadable messages from it, one each), the last
	// with its time and reason.
	Changes       int64     `json:"changes"`
	Refused       int64     `json:"refused"`
	LastRefusedAt time.Time `json:"last_refused_at,omitzero"`
	LastRefusal   string    `json:"last_refusal,omitempty"`
}

// DeviceSummary is one device of GET /v1/devices: its record and what
// this worker knows live.
type DeviceSummary struct {
	DeviceRecord
	// CursorTime is the wall time of Cursor (a version).
	CursorTime time.Time `json:"cursor_time,omitzero"`
	// Pending counts the down changes this worker sent it and is waiting
	// for it to acknowledge (not those still in the outbox, nor
	// broadcasts to every device).
	Pending int `json:"pending"`
	// Connected is whether it holds a connection to the embedded broker
	// of this process; absent when the process runs none.
	Connected *bool `json:"connected,omitempty"`
}

// FleetQuery selects a page of devices.
type FleetQuery struct {
	// Sort is one of the FleetSort names, "-" before it reverses it
	// ("": site).
	Sort string
	// Filter keeps the devices whose site contains it (any case).
	Filter string
	// Limit is the page's size (0: none, only the totals).
	Limit int
	// After resumes after the Next of a previous page of the same sort;
	// Page (from 1) skips to a page instead. At most one of them.
	After string
	Page  int
}

// FleetPage is the body of GET /v1/devices.
type FleetPage struct {
	Devices []DeviceSummary `json:"devices"`
	// Total counts the devices that match the filter; Known every device
	// in the index.
	Total int    `json:"total"`
	Known int    `json:"known"`
	Sort  string `json:"sort"`
	Limit int    `json:"limit"`
	Page  int    `json:"page,omitempty"`
	// Next resumes after this page (?after=), when more follow.
	Next string `json:"next,omitempty"`
	// Restored says the records saved before this start were read back;
	// SavedAt is when the index was last written to the store.
	Restored bool      `json:"restored"`
	SavedAt  time.Time `json:"saved_at,omitzero"`
}

// fleetEntry is one device in the index.
type fleetEntry struct {
	rec   DeviceRecord
	lower string // the site in lower case, for filters
	// changes and refused are counted since the last save.
	changes, refused int64
	// saved is when it was last saved (zero: never).
	saved time.Time
}

// fleetSave is a device's record and counts on their way to the store.
type fleetSave struct {
	rec              DeviceRecord
	changes, refused int64
}

// Fleet is the cloud worker's index of devices. Its recording methods
// are safe on a nil *Fleet (they do nothing), so a device's runner,
// which has none, calls them too.
type Fleet struct {
	store pipeline.Store // nil: not saved
	clock *pipeline.Clock
	log   *slog.Logger
	max   int
	now   func() time.Time

	saveEvery, reloadEvery, lazyEvery time.Duration
	// connected reads the sites connected to the embedded broker (nil:
	// no broker in this process).
	connected func() map[string]bool

	mu      sync.Mutex
	devices map[string]*fleetEntry
	// dirty holds the devices with news since their last save: true
	// when it is urgent (a new device, a refusal, another catch-up
	// cursor: saved at the next save), false when it is contact only
	// (saved once lazyEvery has passed since the device's last save).
	dirty    map[string]bool
	pending  map[string]int // by site: down changes in flight
	restored bool
	savedAt  time.Time
	saveDown bool // the last save failed (logged once)

	cmu       sync.Mutex
	conn      map[string]bool
	connAt    time.Time
	done      chan struct{}
	startOnce sync.Once

	m fleetMetrics
}

// newFleet makes an index saved in store (nil: kept in memory only),
// writing its records with versions of origin site.
func newFleet(store pipeline.Store, site string, log *slog.Logger) *Fleet {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{store: store, clock: pipeline.NewClock(site), log: log, max: MaxFleetDevices,
		now:       func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
		saveEvery: fleetSaveEvery, reloadEvery: fleetReloadEvery, lazyEvery: fleetLazyEvery,
		devices: map[string]*fleetEntry{}, dirty: map[string]bool{}, pending: map[string]int{},
		done: make(chan struct{}), m: newFleetMetrics()}
}

// touch finds or adds site's entry and marks contact at now; nil when
// the site is not one or the index is full. f.mu is held.
func (f *Fleet) touch(site string, now time.Time) *fleetEntry {
	e := f.devices[site]
	if e == nil {
		if len(f.devices) >= f.max || pipeline.ValidSite(site) != nil {
			f.m.untracked.Inc()
			return nil
		}
		e = &fleetEntry{rec: DeviceRecord{Site: site, FirstSeen: now}, lower: strings.ToLower(site)}
		f.devices[site] = e
		f.dirty[site] = true
	}
	if now.After(e.rec.LastSeen) {
		e.rec.LastSeen = now
	}
	if _, ok := f.dirty[site]; !ok {
		f.dirty[site] = false // contact only, unless urgent news comes
	}
	return e
}

// upBatch records a batch of changes from site: received changes in it,
// refused of them (or 1 for a message refused whole), the last refusal's
// reason.
func (f *Fleet) upBatch(site string, received, refused int, reason string) {
	if f == nil {
		return
	}
	now := f.now()
	if refused > 0 {
		f.m.refused.Add(float64(refused))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.touch(site, now)
	if e == nil {
		return
	}
	e.rec.LastUp = now
	e.rec.Changes += int64(received)
	e.changes += int64(received)
	if refused > 0 {
		e.rec.Refused += int64(refused)
		e.refused += int64(refused)
		e.rec.LastRefusedAt = now
		e.rec.LastRefusal = pipeline.Truncate(reason, maxRefusalLen)
		f.dirty[site] = true
	}
}

// acked records an ack from site (of a down batch, live or catch-up).
func (f *Fleet) acked(site string) {
	if f == nil {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.touch(site, now); e != nil {
		e.rec.LastAck = now
	}
}

// syncRequest records a sync request from site, from cursor (full: it
// asked for everything); an unreadable one is contact only.
func (f *Fleet) syncRequest(site string, req *pipeline.SyncRequest) {
	if f == nil {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.touch(site, now)
	if e == nil {
		return
	}
	e.rec.LastSync = now
	if req != nil {
		cursor := pipeline.Truncate(req.Cursor, 64)
		if cursor != e.rec.Cursor || req.Full != e.rec.FullSync {
			e.rec.Cursor, e.rec.FullSync = cursor, req.Full
			f.dirty[site] = true
		}
	}
}

// inFlight adds delta to the down changes in flight to site (a device,
// not all).
func (f *Fleet) inFlight(site string, delta int) {
	if f == nil || site == pipeline.Broadcast || delta == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.pending[site] + delta
	if n <= 0 {
		delete(f.pending, site)
		return
	}
	f.pending[site] = n
}

// connectedSites is the broker's connected sites, read at most every
// connectedTTL; nil when unknown.
func (f *Fleet) connectedSites() map[string]bool {
	if f.connected == nil {
		return nil
	}
	f.cmu.Lock()
	defer f.cmu.Unlock()
	if f.conn == nil || time.Since(f.connAt) > connectedTTL {
		f.conn, f.connAt = f.connected(), time.Now()
		if f.conn == nil {
			f.conn = map[string]bool{}
		}
	}
	return f.conn
}

// fleetKey is a device's place in a sort: a number in the sort's natural
// order (ascending), then the site.
type fleetKey struct {
	n    int64
	site string
}

func (k fleetKey) compare(o fleetKey) int {
	if c := cmp.Compare(k.n, o.n); c != 0 {
		return c
	}
	return strings.Compare(k.site, o.site)
}

// keyOf is the key of site's device for sort (without its "-"); the
// site sort reads nothing of its record.
func keyOf(sort, site string, r *DeviceRecord, pending int) fleetKey {
	switch sort {
	case FleetSortLastSeen:
		return fleetKey{r.LastSeen.UnixNano(), site}
	case FleetSortRefused:
		return fleetKey{-r.Refused, site}
	case FleetSortPending:
		return fleetKey{-int64(pending), site}
	}
	return fleetKey{0, site}
}

// parseSort splits a sort into its name and direction.
func parseSort(s string) (name string, reverse bool, err error) {
	if s == "" {
		return FleetSortSite, false, nil
	}
	name, reverse = strings.CutPrefix(s, "-")
	if !slices.Contains(fleetSorts, name) {
		return "", false, fmt.Errorf("%w: sort %s: want one of %s, or one of them after \"-\" to reverse it",
			pipeline.ErrInvalid, pipeline.Quote(s), strings.Join(fleetSorts, ", "))
	}
	return name, reverse, nil
}

// encodeCursor and decodeCursor make the opaque Next of a page: the sort
// and the last device's key.
func encodeCursor(sort string, k fleetKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sort + "|" + strconv.FormatInt(k.n, 10) + "|" + k.site))
}

func decodeCursor(sort, s string) (fleetKey, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: after %s: %s (pass the next of a page of the same sort)", pipeline.ErrInvalid, pipeline.Quote(s), why)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fleetKey{}, bad("not a cursor")
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 {
		return fleetKey{}, bad("not a cursor")
	}
	if parts[0] != sort {
		return fleetKey{}, bad("a cursor of sort " + pipeline.Quote(parts[0]) + ", not " + pipeline.Quote(sort))
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return fleetKey{}, bad("not a cursor")
	}
	return fleetKey{n, parts[2]}, nil
}

// List returns a page of devices. A page past the end is empty, with
// the totals.
func (f *Fleet) List(q FleetQuery) (FleetPage, error) {
	name, reverse, err := parseSort(q.Sort)
	if err != nil {
		return FleetPage{}, err
	}
	sortName := name
	if reverse {
		sortName = "-" + name
	}
	switch {
	case q.Limit < 0 || q.Limit > MaxFleetLimit:
		return FleetPage{}, fmt.Errorf("%w: limit %d: want 0 to %d", pipeline.ErrInvalid, q.Limit, MaxFleetLimit)
	case q.Page < 0:
		return FleetPage{}, fmt.Errorf("%w: page %d: pages count from 1", pipeline.ErrInvalid, q.Page)
	case q.Page > 0 && q.After != "":
		return FleetPage{}, fmt.Errorf("%w: give after or page, not both", pipeline.ErrInvalid)
	}
	var after *fleetKey
	if q.After != "" {
		k, err := decodeCursor(sortName, q.After)
		if err != nil {
			return FleetPage{}, err
		}
		after = &k
	}
	filter := strings.ToLower(q.Filter)
	compare := func(a, b fleetKey) int {
		if reverse {
			return b.compare(a)
		}
		return a.compare(b)
	}

	// The matching devices' keys, taken under the lock; the page's part
	// of them sorted without it (sortRange: not the whole list).
	f.mu.Lock()
	keys := make([]fleetKey, 0, len(f.devices))
	for site, e := range f.devices {
		if filter != "" && !strings.Contains(e.lower, filter) {
			continue
		}
		pending := 0
		if name == FleetSortPending {
			pending = f.pending[site]
		}
		keys = append(keys, keyOf(name, site, &e.rec, pending))
	}
	page := FleetPage{Known: len(f.devices), Restored: f.restored, SavedAt: f.savedAt}
	f.mu.Unlock()

	page.Total, page.Sort, page.Limit, page.Page = len(keys), sortName, q.Limit, q.Page
	start := 0
	switch {
	case after != nil: // the keys after the cursor's
		keys = slices.DeleteFunc(keys, func(k fleetKey) bool { return compare(k, *after) <= 0 })
	case q.Page > 0:
		// Past the end (however far: the product could overflow) is an
		// empty page.
		start = len(keys)
		if q.Limit > 0 && q.Page-1 < len(keys)/q.Limit+1 {
			start = min((q.Page-1)*q.Limit, len(keys))
		}
	}
	end := min(start+q.Limit, len(keys))
	sortRange(keys, start, end, compare)
	if end < len(keys) && end > start {
		page.Next = encodeCursor(sortName, keys[end-1])
	}

	// The page's devices, as they are now.
	var conn map[string]bool
	if end > start {
		conn = f.connectedSites()
	}
	page.Devices = make([]DeviceSummary, 0, end-start)
	f.mu.Lock()
	for _, k := range keys[start:end] {
		e := f.devices[k.site]
		if e == nil {
			continue
		}
		d := DeviceSummary{DeviceRecord: e.rec, Pending: f.pending[k.site]}
		if conn != nil {
			c := conn[k.site]
			d.Connected = &c
		}
		page.Devices = append(page.Devices, d)
	}
	f.mu.Unlock()
	for i := range page.Devices {
		d := &page.Devices[i]
		if d.Cursor != "" {
			if v, err := pipeline.ParseVersion(d.Cursor); err == nil {
				d.CursorTime = time.UnixMilli(v.Wall).UTC()
			}
		}
	}
	return page, nil
}

// absorb takes the later of each time of o (the earlier first seen), the
// cursor of the later sync request and the later refusal; counters are
// left alone.
func (r *DeviceRecord) absorb(o *DeviceRecord) {
	later := func(a *time.Time, b time.Time) {
		if b.After(*a) {
			*a = b
		}
	}
	if !o.FirstSeen.IsZero() && (r.FirstSeen.IsZero() || o.FirstSeen.Before(r.FirstSeen)) {
		r.FirstSeen = o.FirstSeen
	}
	later(&r.LastSeen, o.LastSeen)
	later(&r.LastUp, o.LastUp)
	later(&r.LastAck, o.LastAck)
	if o.LastSync.After(r.LastSync) {
		r.LastSync, r.Cursor, r.FullSync = o.LastSync, o.Cursor, o.FullSync
	}
	if o.LastRefusedAt.After(r.LastRefusedAt) {
		r.LastRefusedAt, r.LastRefusal = o.LastRefusedAt, o.LastRefusal
	}
}

func fleetMetaKey(site string) pipeline.Key {
	return pipeline.Key{PK: "~meta", SK: fleetMetaPrefix + site}
}

// fleetMetaModel is the model of iotod's meta records (db's metaModel).
const fleetMetaModel = "~meta"

func decodeFleetRecord(rec *pipeline.Record) (DeviceRecord, bool) {
	var d DeviceRecord
	if rec.Model != fleetMetaModel || json.Unmarshal(rec.Item, &d) != nil || d.Site == "" {
		return DeviceRecord{}, false
	}
	return d, true
}

// load reads the saved records into the index: times merge, counters
// become the stored ones plus what is counted here and not saved yet (or
// stay, when already higher).
func (f *Fleet) load(ctx context.Context) error {
	if f.store == nil {
		f.mu.Lock()
		f.restored = true
		f.mu.Unlock()
		return nil
	}
	var got []DeviceRecord
	err := f.store.View(ctx, func(tx pipeline.ReadTx) error {
		got = got[:0]
		q := pipeline.Query{Hash: "~meta", Sort: pipeline.SortCond{Op: pipeline.SortBegins, Values: []string{fleetMetaPrefix}}}
		return tx.Scan(ctx, q, func(rec *pipeline.Record, _ pipeline.Position) (bool, error) {
			if d, ok := decodeFleetRecord(rec); ok {
				got = append(got, d)
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("fleet: read the saved devices: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range got {
		s := &got[i]
		e := f.devices[s.Site]
		if e == nil {
			if len(f.devices) >= f.max || pipeline.ValidSite(s.Site) != nil {
				continue
			}
			e = &fleetEntry{rec: DeviceRecord{Site: s.Site}, lower: strings.ToLower(s.Site)}
			f.devices[s.Site] = e
		}
		e.rec.absorb(s)
		e.rec.Changes = max(e.rec.Changes, s.Changes+e.changes)
		e.rec.Refused = max(e.rec.Refused, s.Refused+e.refused)
	}
	f.restored = true
	return nil
}

// save writes the devices with urgent news, and those with other news
// not saved for lazyEvery (all of them with all), merged with what the
// store holds. What cannot be written stays to save next time.
func (f *Fleet) save(ctx context.Context, all bool) error {
	if f.store == nil {
		return nil
	}
	f.mu.Lock()
	now := time.Now()
	todo := make([]fleetSave, 0, len(f.dirty))
	for site, urgent := range f.dirty {
		e := f.devices[site]
		switch {
		case e == nil:
		case urgent || all || now.Sub(e.saved) >= f.lazyEvery:
			todo = append(todo, fleetSave{rec: e.rec, changes: e.changes, refused: e.refused})
			e.changes, e.refused, e.saved = 0, 0, now
		default:
			continue // later
		}
		delete(f.dirty, site)
	}
	f.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	slices.SortFunc(todo, func(a, b fleetSave) int { return strings.Compare(a.rec.Site, b.rec.Site) })
	chunk := fleetChunk
	if l, ok := f.store.(pipeline.UpdateLimiter); ok && l.MaxWritesPerUpdate() > 0 {
		chunk = min(chunk, l.MaxWritesPerUpdate())
	}
	for len(todo) > 0 {
		n := min(chunk, len(todo))
		merged, err := f.saveChunk(ctx, todo[:n])
		if err != nil {
			f.giveBack(todo)
			f.m.saves.WithLabelValues("failed").Inc()
			return fmt.Errorf("fleet: save %d devices: %w", len(todo), err)
		}
		f.saved(merged)
		todo = todo[n:]
	}
	f.m.saves.WithLabelValues("ok").Inc()
	return nil
}

// saveChunk writes some devices in one transaction and returns what it
// wrote.
func (f *Fleet) saveChunk(ctx context.Context, todo []fleetSave) ([]DeviceRecord, error) {
	var merged []DeviceRecord
	err := f.store.Update(ctx, func(tx pipeline.Tx) error {
		merged = merged[:0] // the engine may run this again after a conflict
		if p, ok := tx.(pipeline.Prefetcher); ok {
			keys := make([]pipeline.Key, len(todo))
			for i := range todo {
				keys[i] = fleetMetaKey(todo[i].rec.Site)
			}
			if err := p.Prefetch(ctx, keys); err != nil {
				return err
			}
		}
		for i := range todo {
			s := &todo[i]
			key := fleetMetaKey(s.rec.Site)
			var stored DeviceRecord
			rec, err := tx.Get(ctx, key)
			switch {
			case errors.Is(err, pipeline.ErrNotFound):
			case err != nil:
				return err
			default:
				stored, _ = decodeFleetRecord(rec)
			}
			m := stored
			m.Site = s.rec.Site
			m.absorb(&s.rec)
			m.Changes, m.Refused = stored.Changes+s.changes, stored.Refused+s.refused
			item, err := json.Marshal(&m)
			if err != nil {
				return err
			}
			if err := tx.Put(ctx, &pipeline.Record{Key: key, Model: fleetMetaModel, Item: item, Version: f.clock.Next()}); err != nil {
				return err
			}
			merged = append(merged, m)
		}
		return nil
	})
	return merged, err
}

// saved takes what the store now holds into the index.
func (f *Fleet) saved(merged []DeviceRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.savedAt = f.now()
	for i := range merged {
		m := &merged[i]
		if e := f.devices[m.Site]; e != nil {
			e.rec.absorb(m)
			e.rec.Changes = max(e.rec.Changes, m.Changes+e.changes)
			e.rec.Refused = max(e.rec.Refused, m.Refused+e.refused)
		}
	}
}

// giveBack returns unsaved counts to the index, to save next time.
func (f *Fleet) giveBack(todo []fleetSave) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range todo {
		if e := f.devices[s.rec.Site]; e != nil {
			e.changes += s.changes
			e.refused += s.refused
			f.dirty[s.rec.Site] = true // next time
		}
	}
}

// start reads the saved devices back and then saves every saveEvery
// (and reads again every reloadEvery: other workers on the same store
// save theirs) until ctx ends. Close saves the rest.
func (f *Fleet) start(ctx context.Context) {
	if f == nil {
		return
	}
	f.startOnce.Do(func() { go f.run(ctx) })
}

func (f *Fleet) run(ctx context.Context) {
	defer close(f.done)
	for try := 1; ; try++ {
		err := f.load(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if try == 1 {
			f.log.Warn("fleet: the saved devices cannot be read yet; trying again", "err", err)
		}
		if !sleepCtx(ctx, min(time.Second<<min(try-1, 5), 30*time.Second)) {
			return
		}
	}
	tick := time.NewTicker(f.saveEvery)
	defer tick.Stop()
	loaded := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.saveLogged(ctx)
		if time.Since(loaded) >= f.reloadEvery {
			if err := f.load(ctx); err == nil {
				loaded = time.Now()
			}
		}
	}
}

// saveLogged saves, logging the first failure in a row and the recovery.
func (f *Fleet) saveLogged(ctx context.Context) {
	err := f.save(ctx, false)
	f.mu.Lock()
	was := f.saveDown
	f.saveDown = err != nil
	f.mu.Unlock()
	switch {
	case err != nil && !was && ctx.Err() == nil:
		f.log.Warn("fleet: saving the devices' summary fails; kept in memory and tried again", "err", err)
	case err == nil && was:
		f.log.Info("fleet: saving the devices' summary works again")
	}
}

// close waits for the loop (after its context ended) and saves what is
// left, within ctx.
func (f *Fleet) close(ctx context.Context) error {
	if f == nil {
		return nil
	}
	started := true
	f.startOnce.Do(func() { started = false })
	if started {
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("fleet: %w", ctx.Err())
		}
	}
	return f.save(ctx, true)
}

// Fleet is the cloud's index of devices (nil on a device: no receiver
// into a cloud store).
func (r *Runner) Fleet() *Fleet { return r.fleet }

// openFleet makes a cloud worker's fleet index, saved in the store of its
// first pipeline from a transport into a cloud store; a device has none.
func (r *Runner) openFleet() error {
	for _, p := range r.plan.Pipelines {
		st, ok := r.stores[p.To.Name]
		if p.From.Kind != pipeline.KindTransport || p.To.Kind != pipeline.KindStorage || !ok || st.plan.Side != schema.SideCloud {
			continue
		}
		f := newFleet(st.store, st.plan.Site, r.log.With("component", "fleet"))
		if r.broker != nil && r.plan.Broker != nil {
			f.connected = brokerSites(r.broker, *r.plan.Broker)
		}
		if err := f.register(r.reg); err != nil {
			return fmt.Errorf("fleet metrics: %w", err)
		}
		r.fleet = f
		return nil
	}
	return nil
}

// brokerSites reads the sites of the device clients connected to the
// embedded broker: a device user's site, or an anonymous client's id
// (cloud users are not devices).
func brokerSites(b *broker.Broker, cfg broker.Config) func() map[string]bool {
	users := make(map[string]broker.User, len(cfg.Users))
	for _, u := range cfg.Users {
		users[u.Username] = u
	}
	return func() map[string]bool {
		out := map[string]bool{}
		for _, cl := range b.Connected() {
			switch u, ok := users[cl.Username]; {
			case cl.Username == "" && cfg.Anonymous:
				out[cl.ID] = true
			case ok && !u.IsCloud() && u.Site != "":
				out[u.Site] = true
			}
		}
		return out
	}
}
