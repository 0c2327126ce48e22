package reconcile

import (
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/protocol/negentropy"
	"github.com/entente-net/entente/store"
)

// Index is the node's sync set in memory (store.Syncable records, by
// issued_at and SyncID), and the sorted vector built from it, rebuilt
// when the set grew. Ingest adds each new record (Add); the service
// reconciles from it.
type Index struct {
	mu    sync.Mutex
	items []negentropy.Item
	vec   *negentropy.Vector
}

// LoadIndex reads the sync set of s.
func LoadIndex(s *store.Store) (*Index, error) {
	x := &Index{}
	err := s.SyncItems(func(at int64, c cid.Cid) error {
		x.add(at, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return x, nil
}

// Add adds r if it is in the sync set (a new record, once durable).
func (x *Index) Add(r *protocol.Record) {
	if store.Syncable(r) {
		x.add(r.IssuedAt(), r.CID())
	}
}

func (x *Index) add(issuedAt int64, c cid.Cid) {
	id, ok := protocol.SyncID(c)
	if !ok {
		return
	}
	x.mu.Lock()
	x.items = append(x.items, negentropy.Item{Timestamp: uint64(issuedAt), ID: id})
	x.vec = nil
	x.mu.Unlock()
}

func (x *Index) vector() (*negentropy.Vector, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.vec == nil {
		v, err := negentropy.NewVector(append([]negentropy.Item(nil), x.items...))
		if err != nil {
			return nil, err
		}
		x.vec = v
	}
	return x.vec, nil
}

// Len is the size of the sync set.
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.items)
}
