package node

import (
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

// memoView is a protocol.DecisionView that remembers what it read, for one
// decision: the procedure asks the same questions several times (an
// accreditation's revocations at the consent's issued_at and at the
// decision time, a ruleset's for each side), and each is a store scan.
// It also shares its answers with the decisions after it through an
// evidenceCache. Not safe for concurrent use; make one per decision.
type memoView struct {
	*trustView
	shared  *evidenceCache
	epoch   uint64 // the store's EvidenceEpoch before the first read
	records map[cid.Cid]*protocol.Record
	answers map[question][]*protocol.Record
}

// question is one of the DecisionView's record-list questions.
type question struct {
	op  byte   // 'a' AccreditationsOf, 'r' RulesetsOf, 'i' IncidentsAffecting, 'l' LinkedFrom
	key string // the peer ID, jurisdiction or binary CID asked about
	// kinds, for LinkedFrom: the kinds asked for, comma-terminated.
	kinds string
}

func newMemoView(v *trustView, shared *evidenceCache) *memoView {
	return &memoView{trustView: v, shared: shared, epoch: v.store.EvidenceEpoch(),
		records: map[cid.Cid]*protocol.Record{}, answers: map[question][]*protocol.Record{}}
}

func (v *memoView) Record(c cid.Cid) (*protocol.Record, error) {
	if r, ok := v.records[c]; ok {
		return r, nil
	}
	r, err := v.trustView.Record(c)
	if err == nil {
		v.records[c] = r
	}
	return r, err
}

// ask answers q from this decision's memory, then the shared cache, then
// read. Errors are not remembered.
func (v *memoView) ask(q question, read func() ([]*protocol.Record, error)) ([]*protocol.Record, error) {
	if rs, ok := v.answers[q]; ok {
		return rs, nil
	}
	rs, ok := v.shared.get(v.epoch, q)
	if !ok {
		var err error
		if rs, err = read(); err != nil {
			return nil, err
		}
		v.shared.put(v.epoch, q, rs)
	}
	v.answers[q] = rs
	return rs, nil
}

func (v *memoView) LinkedFrom(c cid.Cid, kinds ...protocol.Kind) ([]*protocol.Record, error) {
	q := question{op: 'l', key: c.KeyString()}
	for _, k := range kinds {
		q.kinds += string(k) + ","
	}
	return v.ask(q, func() ([]*protocol.Record, error) { return v.trustView.LinkedFrom(c, kinds...) })
}

func (v *memoView) AccreditationsOf(id peer.ID) ([]*protocol.Record, error) {
	return v.ask(question{op: 'a', key: string(id)}, func() ([]*protocol.Record, error) { return v.trustView.AccreditationsOf(id) })
}

func (v *memoView) RulesetsOf(j string) ([]*protocol.Record, error) {
	return v.ask(question{op: 'r', key: j}, func() ([]*protocol.Record, error) { return v.trustView.RulesetsOf(j) })
}

func (v *memoView) IncidentsAffecting(id peer.ID) ([]*protocol.Record, error) {
	return v.ask(question{op: 'i', key: string(id)}, func() ([]*protocol.Record, error) { return v.trustView.IncidentsAffecting(id) })
}

// evidenceCache keeps the answers decisions read from the store for the
// decisions after them. The answers change only when the store accepts a
// record other than a receipt, which moves its EvidenceEpoch; an answer is
// kept under the epoch read before it was read, and served only while the
// epoch still reads the same. Between two such records — and receipts,
// one per decision, do not count — decisions of the same transfers ask no
// store scans at all. The lists are shared: no one may modify them
// (protocol.Decide sorts copies). A nil *evidenceCache keeps nothing.
type evidenceCache struct {
	mu       sync.RWMutex
	capacity int
	epoch    uint64
	answers  map[question][]*protocol.Record
}

// defaultEvidenceAnswers bounds the answers kept; when full the cache
// starts again empty.
const defaultEvidenceAnswers = 16384

func newEvidenceCache(capacity int) *evidenceCache {
	return &evidenceCache{capacity: capacity, answers: map[question][]*protocol.Record{}}
}

func (c *evidenceCache) get(epoch uint64, q question) ([]*protocol.Record, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.epoch != epoch {
		return nil, false
	}
	rs, ok := c.answers[q]
	return rs, ok
}

func (c *evidenceCache) put(epoch uint64, q question, rs []*protocol.Record) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case epoch < c.epoch:
		return // read before a record the cache has already seen the epoch of
	case epoch > c.epoch || len(c.answers) >= c.capacity:
		clear(c.answers)
		c.epoch = epoch
	}
	c.answers[q] = rs
}
