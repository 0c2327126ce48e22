package gossip

import (
	"sync"

	"github.com/entente-net/entente/protocol"
)

// Outbox gossips the records the node accepts from its own clients (the
// API, its own incident notices); gossip forwards the rest itself.
// Ingest marks such a record before storing it (Expect); when the commit
// that holds it is durable, the store hands the commit's new records to
// the outbox (Committed, the store's OnCommit), which passes the marked
// ones, as one batch, to the service's publisher, which publishes them
// with pubsub.PublishBatch. The gossip router then wakes once a commit
// instead of once a record, and clients do not contend for it, while a
// record still goes out as soon as it is durable, before its Submit
// returns.
//
// A record whose Submit failed (its context ended while the store was
// writing it, say) is forgotten, and if the store writes it after all,
// peers get it by sync, as after a crash between storing and publishing.
// So are records still queued when the service closes.
type Outbox struct {
	mu      sync.Mutex
	waiting map[*protocol.Record]struct{} // marked, not yet committed
	batches chan []*protocol.Record
	done    chan struct{}
	once    sync.Once
}

// outboxBatches is how many committed batches may wait for the publisher
// before the store's acknowledgements wait for it.
const outboxBatches = 64

// NewOutbox makes an outbox; the gossip service publishes from it and
// closes it.
func NewOutbox() *Outbox {
	return &Outbox{waiting: map[*protocol.Record]struct{}{}, batches: make(chan []*protocol.Record, outboxBatches), done: make(chan struct{})}
}

// Expect marks r, about to be stored, for gossip once durable. Records
// are marked by identity: of two clients racing with the same record, the
// one whose copy the store writes has it gossiped.
func (o *Outbox) Expect(r *protocol.Record) {
	o.mu.Lock()
	o.waiting[r] = struct{}{}
	o.mu.Unlock()
}

// Forget unmarks r, which the store did not write (or not for this call).
func (o *Outbox) Forget(r *protocol.Record) {
	o.mu.Lock()
	delete(o.waiting, r)
	o.mu.Unlock()
}

// Committed is the store's OnCommit: it queues the marked records among
// fresh for the publisher. After Close it drops them.
func (o *Outbox) Committed(fresh []*protocol.Record) {
	var batch []*protocol.Record
	o.mu.Lock()
	if len(o.waiting) > 0 {
		for _, r := range fresh {
			if _, ok := o.waiting[r]; ok {
				delete(o.waiting, r)
				batch = append(batch, r)
			}
		}
	}
	o.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	select {
	case o.batches <- batch:
	case <-o.done:
	}
}

// Close makes Committed drop batches instead of waiting for a publisher
// that has stopped. It is idempotent.
func (o *Outbox) Close() { o.once.Do(func() { close(o.done) }) }
