package verify

import (
	"sync"

	"github.com/entente-net/entente/protocol"
)

// evidenceCache keeps the answers decisions read from the store for the
// decisions after them. The answers change only when the store accepts a
// record other than a receipt, which moves its EvidenceEpoch; an answer is
// kept under the epoch read before it was read, and served only while the
// epoch still reads the same. Between two such records — and receipts,
// one per decision, do not count — decisions of the same transfers ask no
// store scans at all. The lists are shared: no one may modify them
// (protocol.Decide sorts copies).
type evidenceCache struct {
	mu       sync.RWMutex
	capacity int
	epoch    uint64
	answers  map[protocol.Question][]*protocol.Record
}

// defaultEvidenceAnswers bounds the answers kept; when full the cache
// starts again empty.
const defaultEvidenceAnswers = 16384

func newEvidenceCache(capacity int) *evidenceCache {
	return &evidenceCache{capacity: capacity, answers: map[protocol.Question][]*protocol.Record{}}
}

// at is the cache as one decision sees it: under the epoch the store read
// before the decision's first read.
func (c *evidenceCache) at(epoch uint64) epochCache { return epochCache{c, epoch} }

// epochCache is a protocol.AnswerCache for one decision.
type epochCache struct {
	c     *evidenceCache
	epoch uint64
}

func (e epochCache) Get(q protocol.Question) ([]*protocol.Record, bool) {
	c := e.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.epoch != e.epoch {
		return nil, false
	}
	rs, ok := c.answers[q]
	return rs, ok
}

func (e epochCache) Put(q protocol.Question, rs []*protocol.Record) {
	c := e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case e.epoch < c.epoch:
		return // read before a record the cache has already seen the epoch of
	case e.epoch > c.epoch || len(c.answers) >= c.capacity:
		clear(c.answers)
		c.epoch = e.epoch
	}
	c.answers[q] = rs
}
