package protocol

import "sync"

// memo is a bounded map for memoising pure functions of small keys, safe
// for concurrent use. When full it starts again empty: the keys worth
// keeping (a federation's issuers) come back at once, and there is no
// order to maintain on the hot path.
type memo[K comparable, V any] struct {
	mu       sync.RWMutex
	capacity int
	m        map[K]V
}

func newMemo[K comparable, V any](capacity int) *memo[K, V] {
	return &memo[K, V]{capacity: capacity, m: make(map[K]V)}
}

func (c *memo[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *memo[K, V]) add(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.capacity {
		clear(c.m)
	}
	c.m[k] = v
}
