package node

import (
	"context"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/entente-net/entente/protocol"
)

// The outbox gossips the records this node accepts from its own clients
// (the API, its own incident notices); gossip forwards the rest itself.
// Ingest marks such a record before storing it; when the commit that holds
// it is durable, the store hands the commit's new records to the outbox
// (store.Options.OnCommit), which passes the marked ones, as one batch, to
// a goroutine that publishes them with pubsub.PublishBatch. The gossip
// router then wakes once a commit instead of once a record, and clients do
// not contend for it, while a record still goes out as soon as it is
// durable, before its Submit returns.
//
// A record whose Submit failed (its context ended while the store was
// writing it, say) is forgotten, and if the store writes it after all,
// peers get it by sync, as after a crash between storing and publishing.
// So are records still queued when the node closes.
type outbox struct {
	ctx     context.Context
	mu      sync.Mutex
	waiting map[*protocol.Record]struct{} // marked, not yet committed
	batches chan []*protocol.Record
}

// outboxBatches is how many committed batches may wait for the publisher
// before the store's acknowledgements wait for it.
const outboxBatches = 64

func newOutbox(ctx context.Context) *outbox {
	return &outbox{ctx: ctx, waiting: map[*protocol.Record]struct{}{}, batches: make(chan []*protocol.Record, outboxBatches)}
}

// expect marks r, about to be stored, for gossip once durable. Records are
// marked by identity: of two clients racing with the same record, the one
// whose copy the store writes has it gossiped.
func (o *outbox) expect(r *protocol.Record) {
	o.mu.Lock()
	o.waiting[r] = struct{}{}
	o.mu.Unlock()
}

// forget unmarks r, which the store did not write (or not for this call).
func (o *outbox) forget(r *protocol.Record) {
	o.mu.Lock()
	delete(o.waiting, r)
	o.mu.Unlock()
}

// committed is the store's OnCommit: it queues the marked records among
// fresh for the publisher.
func (o *outbox) committed(fresh []*protocol.Record) {
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
	case <-o.ctx.Done():
	}
}

// publishLoop is the outbox's publisher; Close stops it before pubsub.
func (n *Node) publishLoop() {
	defer n.wg.Done()
	for {
		var batch []*protocol.Record
		select {
		case batch = <-n.out.batches:
		case <-n.ctx.Done():
			return
		}
		mb := &pubsub.MessageBatch{}
		for _, r := range batch {
			if err := n.topic.AddToBatch(n.ctx, mb, r.Bytes()); err != nil && n.ctx.Err() == nil {
				n.log.Warn("gossip publish failed; the record is stored", "cid", r.CID().String(), "err", err)
			}
		}
		if err := n.ps.PublishBatch(mb); err != nil {
			n.log.Warn("gossip publish failed; the records are stored", "records", len(batch), "err", err)
		}
	}
}
