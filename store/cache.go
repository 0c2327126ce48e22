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

// scanCache keeps the answers of the index scans that authorising a
// record makes every time: the accreditations of an issuer (by subject)
// and the revocations of a record (its backlinks from revocations). Each
// costs a Badger iterator, ~15 µs, where the answer changes only when an
// accreditation or a revocation is committed. A commit removes the
// answers its records change (forget, after the commit is visible); a
// scan that a commit overtook is not kept (the generation moved). It is
// safe for concurrent use.
type scanCache struct {
	mu  sync.Mutex
	gen uint64 // under mu; moved by every forget
	m   map[string][]*protocol.Record
}

// maxScans bounds scanCache: when full it starts again empty. An answer
// is a few records (the accreditations of one party, the revocations of
// one record), themselves shared with the record cache.
const maxScans = 1 << 14

func newScanCache() *scanCache { return &scanCache{m: map[string][]*protocol.Record{}} }

// get returns the answer kept for prefix, or the generation to pass to
// put with the answer read from the store.
func (c *scanCache) get(prefix []byte) (recs []*protocol.Record, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	recs, ok = c.m[string(prefix)]
	return recs, c.gen, ok
}

// put keeps recs as the answer for prefix, read after get returned gen,
// unless a commit has changed answers since.
func (c *scanCache) put(prefix []byte, gen uint64, recs []*protocol.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= maxScans {
		clear(c.m)
	}
	c.m[string(prefix)] = recs
}

// forget removes the answers that the committed records change.
func (c *scanCache) forget(fresh []*protocol.Record) {
	var stale [][]byte
	for _, r := range fresh {
		stale = appendScansChanged(stale, r)
	}
	if len(stale) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, p := range stale {
		delete(c.m, string(p))
	}
}

// appendScansChanged appends the cached scans to which r adds an entry:
// an accreditation to its subject's, a revocation to its targets'
// (indexKeys writes both entries).
func appendScansChanged(dst [][]byte, r *protocol.Record) [][]byte {
	switch r.Kind() {
	case protocol.KindAccreditation:
		a, _ := r.Accreditation()
		if subject, err := protocol.ParsePeerID(a.Subject); err == nil {
			dst = append(dst, indexPrefix(prefixSubject, []byte(subject)))
		}
	case protocol.KindRevocation:
		code, _ := kindCode(protocol.KindRevocation)
		for _, l := range r.Links() {
			dst = append(dst, backlinkPrefix(l, code))
		}
	}
	return dst
}
