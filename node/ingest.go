package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Source says where a record came from, for metrics and logs.
type Source string

// Record sources.
const (
	SourceAPI    Source = "api"
	SourceGossip Source = "gossip"
	SourceLocal  Source = "local"
	// SourceParked is a gossiped record retried once its dependencies
	// arrived.
	SourceParked Source = "parked"
	SourceFetch  Source = "fetch" // asked of a peer (Fetch)
)

// Accepted is the outcome of a successful ingest.
type Accepted struct {
	CID    cid.Cid
	Seq    uint64
	New    bool // false when the record was already held
	Record *protocol.Record
}

// Submit ingests one encoded record from a client (the HTTP API, the CLI,
// a test): it is checked, stored durably and, when new and not TLP:RED,
// queued for gossip (outbox.go). Refusals are *protocol.Error; ErrPushback
// when the node is saturated.
func (n *Node) Submit(ctx context.Context, raw []byte) (Accepted, error) {
	select {
	case n.ingestQ <- struct{}{}:
		defer func() { <-n.ingestQ }()
	default:
		n.metrics.ingest.WithLabelValues(string(SourceAPI), "overloaded").Inc()
		return Accepted{}, ErrPushback
	}
	return n.ingest(ctx, raw, SourceAPI)
}

// SubmitRecord is Submit for a record already in hand.
func (n *Node) SubmitRecord(ctx context.Context, r *protocol.Record) (Accepted, error) {
	return n.Submit(ctx, r.Bytes())
}

// ingest runs the checks of the package doc, cheapest first, and stores
// the record; the outbox gossips it once durable when it comes from the
// node's own clients (SourceAPI, SourceLocal).
func (n *Node) ingest(ctx context.Context, raw []byte, src Source) (acc Accepted, err error) {
	defer n.countIngest(src, time.Now(), &acc, &err)
	r, err := protocol.Decode(raw)
	if err != nil {
		return Accepted{}, err
	}
	return n.ingestDecoded(ctx, r, src)
}

// ingestCounted is ingestDecoded with the metrics of ingest.
func (n *Node) ingestCounted(ctx context.Context, r *protocol.Record, src Source) (acc Accepted, err error) {
	defer n.countIngest(src, time.Now(), &acc, &err)
	return n.ingestDecoded(ctx, r, src)
}

func (n *Node) ingestDecoded(ctx context.Context, r *protocol.Record, src Source) (Accepted, error) {
	if n.ctx.Err() != nil {
		return Accepted{}, ErrClosed
	}
	if err := protocol.CheckClock(r, n.cfg.Now()); err != nil {
		return Accepted{}, err
	}
	seq, absent, err := n.store.Lookup(r.CID())
	if err == nil {
		return Accepted{CID: r.CID(), Seq: seq, Record: r}, nil
	}
	if err := n.verify(ctx, r); err != nil {
		return Accepted{}, err
	}
	if err := n.authorize(ctx, r, src); err != nil {
		return Accepted{}, err
	}
	gossip := (src == SourceAPI || src == SourceLocal) && protocol.AudienceOf(r).Gossiped()
	if gossip {
		n.out.expect(r)
	}
	res, err := n.store.PutNew(ctx, r, absent)
	if gossip && (err != nil || !res.New) {
		n.out.forget(r)
	}
	if err != nil {
		return Accepted{}, fmt.Errorf("store: %w", err)
	}
	acc := Accepted{CID: r.CID(), Seq: res.Seq, New: res.New, Record: r}
	if res.New {
		n.afterAccept(r, src)
	}
	return acc, nil
}

// afterAccept applies a new record's effects on the running node.
func (n *Node) afterAccept(r *protocol.Record, src Source) {
	if n.log.Enabled(n.ctx, slog.LevelDebug) { // the attributes cost more than the rest of this
		n.log.Debug("record accepted", "cid", r.CID().String(), "kind", string(r.Kind()), "issuer", r.Issuer().String(), "source", string(src))
	}
	if store.Syncable(r) {
		n.sync.index.add(r.IssuedAt(), r.CID())
	}
	switch b := r.Body().(type) {
	case *protocol.Revocation:
		n.dropRevokedNode(b.Target.Cid)
	case *protocol.Accreditation:
		n.noteNodeAddrs(r)
	}
	n.notify.fire()
	if n.parked.len() > 0 {
		n.parked.due()
	}
}

// dropRevokedNode closes connections to a peer whose node accreditation
// was just revoked, unless it is still a member on other grounds.
func (n *Node) dropRevokedNode(target cid.Cid) {
	t, err := n.store.Get(target)
	if err != nil {
		return
	}
	a, ok := t.Accreditation()
	if !ok || !containsRole(a.Roles, protocol.RoleNode) {
		return
	}
	id, err := peer.Decode(a.Subject)
	if err != nil || n.trust.isMember(id, n.cfg.Now().UnixMilli()) {
		return
	}
	n.log.Info("closing connections to a peer whose node accreditation was revoked", "peer", id.String())
	if err := n.host.Network().ClosePeer(id); err != nil {
		n.log.Debug("close peer", "peer", id.String(), "err", err)
	}
}

func (n *Node) countIngest(src Source, start time.Time, acc *Accepted, err *error) {
	result := "accepted"
	switch {
	case *err != nil:
		result = string(protocol.CodeOf(*err))
		if result == "" {
			result = "error"
		}
	case !acc.New:
		result = "duplicate"
	}
	n.metrics.ingest.WithLabelValues(string(src), result).Inc()
	if *err == nil && acc.New {
		n.metrics.ingestSeconds.Observe(time.Since(start).Seconds())
	}
}

// verify checks r's signature, on all cores but one at a time (one on a
// single core). With many ingests in flight (gossip validators, API
// clients), unbounded CPU-bound goroutines would starve the
// single-goroutine stages that follow (the store's writer and Badger's,
// the acknowledgements, the gossip router): every commit then takes
// longer, holds more of the ingests waiting on it, and leaves the cores
// idle while it syncs. Leaving a core to those stages made ingest 5–10 %
// faster on two cores than verifying on both (docs/performance.md).
func (n *Node) verify(ctx context.Context, r *protocol.Record) error {
	select {
	case n.verifySem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-n.verifySem }()
	return r.VerifySignatureWith(n.keys)
}
