package hris

import (
	"container/heap"
	"sync"
	"time"
)

// ReplayCache remembers accepted webhook deliveries for as long as they could
// still pass the freshness check.
type ReplayCache interface {
	// Seen records key until expires and reports whether key was already
	// recorded and had not expired at now.
	Seen(key string, expires, now time.Time) bool
}

// MemoryReplayCache is an in-memory ReplayCache bounded in size and time. It
// is safe for concurrent use.
//
// It forgets a key once the key expires. When full, it forgets the key that
// expires soonest: entries only get in with a valid signature, so filling the
// cache needs the webhook secret, and the oldest entry is the one closest to
// being refused as stale anyway. A multi-replica receiver needs a shared
// implementation (or the workflow-ID deduplication Joinery relies on anyway).
type MemoryReplayCache struct {
	mu      sync.Mutex
	max     int
	expires map[string]time.Time
	order   expiryHeap
}

// NewMemoryReplayCache returns a cache holding at most max keys (at least 1).
func NewMemoryReplayCache(max int) *MemoryReplayCache {
	if max < 1 {
		max = 1
	}
	return &MemoryReplayCache{max: max, expires: map[string]time.Time{}}
}

// Seen implements ReplayCache.
func (c *MemoryReplayCache) Seen(key string, expires, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.order.Len() > 0 && !c.order[0].at.After(now) {
		e := heap.Pop(&c.order).(expiryEntry)
		delete(c.expires, e.key)
	}
	if at, ok := c.expires[key]; ok && at.After(now) {
		return true
	}
	for len(c.expires) >= c.max {
		e := heap.Pop(&c.order).(expiryEntry)
		delete(c.expires, e.key)
	}
	c.expires[key] = expires
	heap.Push(&c.order, expiryEntry{key: key, at: expires})
	return false
}

// Len returns how many keys the cache holds.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.expires)
}

type expiryEntry struct {
	key string
	at  time.Time
}

// expiryHeap is a min-heap on expiry time.
type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	*h = old[:n-1]
	return e
}
