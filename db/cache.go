package db

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/iotod/iotod/pipeline"
)

// DefaultReadCacheBytes is the read cache of a device DB when Options do
// not size it: small beside badger's own tables and caches.
const DefaultReadCacheBytes = 4 << 20

// The read cache keeps what reads found in the store, so a read of a hot
// item or partition does not go to the store (a badger transaction, a
// table seek, a value copy and a JSON decode) again: stored items by key
// for Get, whole primary-index partitions (every record of a hash key,
// decoded) for Find when sized explicitly (half of the bytes go to each;
// the default cache holds items only).
//
// It is coherent with the store without locking reads against writes:
// every write this DB commits invalidates the keys and partitions it
// touched after its commit and before it returns, bumping the generation
// of their stripe; a read that missed takes its stripe's generation before
// it opens its store snapshot and fills the cache only if the generation
// has not moved (under the shard lock the invalidation takes), so a
// snapshot older than a commit never lands in the cache after that
// commit's invalidation. A read that starts after a write returned sees
// the write, from the store or from the cache.
//
// It assumes every write to the items goes through this DB, as on a
// device, which owns its badger store; records that expire are checked at
// each read. The cache is empty at Open, so a restart starts cold.
type readCache struct {
	seed  maphash.Seed
	items clockCache[pipeline.Key, cachedItem]
	parts clockCache[string, *cachedPart]
	// partsOn says finds use the partition cache. A miss reads and decodes
	// the whole partition, which pays only when the partitions read fit:
	// under reads spread evenly over more partitions than fit, it made
	// finds slower (P9 at 100k items: p50 358us without, 616us with 8 MiB),
	// so the default cache is for items only.
	partsOn bool
}

// cachedItem is a stored item as Get found it.
type cachedItem struct {
	item    string
	expires int64
}

// cachedPart is every live record of one hash key of the primary index,
// in sort-key order, as a find walked them.
type cachedPart struct {
	recs []cachedRec
	// big marks a partition of more than maxPartRecords records, which
	// finds read from the store.
	big bool
}

// cachedRec is one record of a cached partition: the attributes a caller
// sees by default, decoded once, and the rest (the version, hidden and
// dropped attributes), for Params.Hidden and where filters.
type cachedRec struct {
	key     pipeline.Key
	model   *model
	expires int64
	visible Item
	extra   Item
}

// maxPartRecords bounds the partitions the cache takes.
const maxPartRecords = 1000

// newReadCache makes a cache of bytes: all for items, or with parts half
// for partitions.
func newReadCache(bytes int64, parts bool) *readCache {
	c := &readCache{seed: maphash.MakeSeed(), partsOn: parts}
	if !parts {
		c.items.init(bytes, cacheShards)
		c.parts.init(0, 1)
		return c
	}
	c.items.init(bytes/2, cacheShards)
	c.parts.init(bytes/2, 8) // partitions are large: fewer, larger shards
	return c
}

func (c *readCache) keyHash(k pipeline.Key) uint64 {
	return maphash.String(c.seed, k.PK)*31 ^ maphash.String(c.seed, k.SK)
}

func (c *readCache) partHash(pk string) uint64 { return maphash.String(c.seed, pk) }

// invalidate drops what the cache holds for the keys a committed write
// touched.
func (c *readCache) invalidate(keys []pipeline.Key) {
	for _, k := range keys {
		c.items.invalidate(k, c.keyHash(k))
		c.parts.invalidate(k.PK, c.partHash(k.PK))
	}
}

const (
	cacheShards  = 64
	cacheStripes = 64 * cacheShards // a stripe's shard is stripe % the shard count, which divides it
)

// clockCache is a sharded map bounded by bytes, evicting with the CLOCK
// algorithm (an entry read since the hand last passed gets another round),
// with a generation per stripe of keys for coherent fills.
type clockCache[K comparable, V any] struct {
	shards   []cacheShard[K, V]
	gens     [cacheStripes]atomic.Uint64
	shardMax int64
}

type cacheShard[K comparable, V any] struct {
	mu    sync.RWMutex
	m     map[K]*cacheEntry[K, V]
	ring  []*cacheEntry[K, V]
	hand  int
	bytes int64
	_     [64]byte // keep shards off each other's cache lines
}

type cacheEntry[K comparable, V any] struct {
	key  K
	val  V
	size int64
	slot int
	ref  atomic.Bool
}

func (c *clockCache[K, V]) init(bytes int64, shards int) {
	c.shards = make([]cacheShard[K, V], shards)
	c.shardMax = bytes / int64(shards)
	for i := range c.shards {
		c.shards[i].m = map[K]*cacheEntry[K, V]{}
	}
}

func (c *clockCache[K, V]) shard(h uint64) *cacheShard[K, V] {
	return &c.shards[h%uint64(len(c.shards))]
}

// gen is the generation of h's stripe, to pass to fill.
func (c *clockCache[K, V]) gen(h uint64) uint64 { return c.gens[h%cacheStripes].Load() }

func (c *clockCache[K, V]) get(k K, h uint64) (V, bool) {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	if e == nil {
		var zero V
		return zero, false
	}
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	return e.val, true
}

// fill adds what a read found, unless a write to h's stripe committed
// since the read took gen.
func (c *clockCache[K, V]) fill(k K, h, gen uint64, v V, size int64) {
	if size > c.shardMax/4 {
		return
	}
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gens[h%cacheStripes].Load() != gen {
		return
	}
	if old := s.m[k]; old != nil {
		s.remove(old)
	}
	e := &cacheEntry[K, V]{key: k, val: v, size: size, slot: len(s.ring)}
	s.ring = append(s.ring, e)
	s.m[k] = e
	s.bytes += size
	for s.bytes > c.shardMax && len(s.ring) > 0 {
		if s.hand >= len(s.ring) {
			s.hand = 0
		}
		if v := s.ring[s.hand]; v.ref.Load() {
			v.ref.Store(false)
			s.hand++
			continue
		}
		s.remove(s.ring[s.hand])
	}
}

// invalidate drops k and moves its stripe's generation on.
func (c *clockCache[K, V]) invalidate(k K, h uint64) {
	s := c.shard(h)
	s.mu.Lock()
	c.gens[h%cacheStripes].Add(1)
	if e := s.m[k]; e != nil {
		s.remove(e)
	}
	s.mu.Unlock()
}

func (s *cacheShard[K, V]) remove(e *cacheEntry[K, V]) {
	last := len(s.ring) - 1
	s.ring[e.slot] = s.ring[last]
	s.ring[e.slot].slot = e.slot
	s.ring[last] = nil
	s.ring = s.ring[:last]
	delete(s.m, e.key)
	s.bytes -= e.size
}

// len counts the entries, for tests.
func (c *clockCache[K, V]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
