package store

import (
	"sort"
	"sync"

	"github.com/entente-net/entente/protocol"
)

// tailLen is how many of the latest records of each kind Recent keeps, at
// most; at least half as many.
const tailLen = 256

// tail keeps the latest records of one kind in seq order: every record of
// the kind with a seq above from is in ents. A commit appends its records
// once it is visible (published), before the counts move, so a reader who
// sees a kind's count grow finds the records that grew it here.
type tail struct {
	mu   sync.RWMutex
	from uint64
	ents []Entry // at most tailLen
}

// appendFresh appends the records of a commit whose first fresh record
// has seq first.
func (s *Store) appendFresh(first uint64, fresh []*protocol.Record) {
	for i, r := range fresh {
		code, ok := kindCode(r.Kind())
		if !ok {
			continue
		}
		t := &s.tails[code]
		t.mu.Lock()
		if len(t.ents) == tailLen { // forget the older half: one copy per tailLen/2 appends
			t.from = t.ents[tailLen/2-1].Seq
			t.ents = append(t.ents[:0], t.ents[tailLen/2:]...)
		}
		t.ents = append(t.ents, Entry{Seq: first + uint64(i), Record: r})
		t.mu.Unlock()
	}
}

// Recent returns, from memory, up to limit records of kind k with a seq
// above after, in seq order, and whether it could: false when records of
// k above after may have left its memory of the latest ones (List then
// reads them). It sees what List sees once the commit is published.
func (s *Store) Recent(k protocol.Kind, after uint64, limit int) ([]Entry, bool) {
	code, ok := kindCode(k)
	if !ok {
		return nil, false
	}
	t := &s.tails[code]
	t.mu.RLock()
	defer t.mu.RUnlock()
	if after < t.from {
		return nil, false
	}
	i := sort.Search(len(t.ents), func(i int) bool { return t.ents[i].Seq > after })
	n := min(limit, len(t.ents)-i)
	if n <= 0 {
		return nil, true
	}
	return append([]Entry(nil), t.ents[i:i+n]...), true
}
