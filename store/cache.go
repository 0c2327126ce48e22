package store

import (
	"container/list"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// recordCache is a least-recently-used cache of decoded records, bounded
// by an estimate of the memory they hold. The node looks up the same few
// accreditations and rulesets on every ingest, so a small cache saves a
// Badger read and a decode on the hot path. It is safe for concurrent use.
type recordCache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	order    *list.List // front = most recently used; values are *protocol.Record
	byCID    map[cid.Cid]*list.Element
}

// recordOverhead approximates the memory a decoded record holds beyond its
// encoding: the Record struct, the decoded body and the cache's own entry.
const recordOverhead = 512

func newRecordCache(maxBytes int64) *recordCache {
	return &recordCache{maxBytes: maxBytes, order: list.New(), byCID: make(map[cid.Cid]*list.Element)}
}

func recordCost(r *protocol.Record) int64 { return int64(2*len(r.Bytes()) + recordOverhead) }

func (c *recordCache) get(id cid.Cid) (*protocol.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byCID[id]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*protocol.Record), true
}

func (c *recordCache) add(r *protocol.Record) {
	cost := recordCost(r)
	if cost > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byCID[r.CID()]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byCID[r.CID()] = c.order.PushFront(r)
	c.bytes += cost
	for c.bytes > c.maxBytes {
		last := c.order.Back()
		old := c.order.Remove(last).(*protocol.Record)
		delete(c.byCID, old.CID())
		c.bytes -= recordCost(old)
	}
}

func (c *recordCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
