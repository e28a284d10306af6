package db

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// TestCacheStaysWithinItsBytes fills far past the budget: every shard
// stays within its share, and read entries survive a sweep.
func TestCacheStaysWithinItsBytes(t *testing.T) {
	c := newReadCache(1<<20, true)
	hot := pipeline.Key{PK: "hot", SK: "1"}
	c.items.fill(hot, c.keyHash(hot), c.items.gen(c.keyHash(hot)), cachedItem{item: "{}"}, 200)
	for i := range 20_000 {
		k := pipeline.Key{PK: "p", SK: strconv.Itoa(i)}
		h := c.keyHash(k)
		c.items.fill(k, h, c.items.gen(h), cachedItem{item: "{}"}, 200)
		_, ok := c.items.get(hot, c.keyHash(hot))
		require.True(t, ok, "a hot entry stays")
	}
	for i := range c.items.shards {
		s := &c.items.shards[i]
		require.LessOrEqual(t, s.bytes, c.items.shardMax)
		require.Len(t, s.ring, len(s.m))
		for j, e := range s.ring {
			require.Equal(t, j, e.slot)
		}
	}
	require.LessOrEqual(t, c.items.len(), (1<<19)/200+1)
	c.invalidate([]pipeline.Key{hot})
	_, ok := c.items.get(hot, c.keyHash(hot))
	require.False(t, ok)
}
