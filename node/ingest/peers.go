package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Records from peers: gossip's (Forward) and sync's (IngestOrPark), which
// may arrive before what authorises them.

// Forward is for gossip's validator: it checks r, from peer from, as
// IngestOrParkFrom does, and answers as soon as the checks pass, storing
// r alongside (the same group commit, the same effects once durable), so
// that gossip forwards a record without waiting for this node's disk. An
// answer New with no error means r passed every check and is being
// stored (acc.Seq is 0 until it is); a record that then fails to store is
// logged and counted (entente_ingest_total, result "error"), and sync
// brings it back. Nothing reads a record before it is durable: the
// store shows only durable commits, and the effects wait for the commit.
func (p *Pipeline) Forward(ctx context.Context, r *protocol.Record, from peer.ID) (service.Accepted, bool, error) {
	const src = service.SourceGossip
	start := time.Now()
	seen := p.parked.seen()
	acc, absent, err := p.check(ctx, r, src)
	if err != nil || acc.Seq != 0 {
		p.count(src, start, acc, err)
		return acc, p.park(ctx, r, from, seen, err), err
	}
	select {
	case p.alongside <- struct{}{}:
	case <-ctx.Done():
		p.count(src, start, acc, ctx.Err())
		return acc, false, ctx.Err()
	}
	p.g.Go(func(ctx context.Context) {
		defer func() { <-p.alongside }()
		// Closing waits for the write rather than abandon it.
		acc, err := p.store(context.WithoutCancel(ctx), r, src, absent)
		p.count(src, start, acc, err)
		if err != nil && !errors.Is(err, store.ErrClosed) {
			p.log.Warn("a record forwarded on gossip failed to store; sync will bring it back",
				"cid", r.CID().String(), "from", from.String(), "err", err)
		}
	})
	return service.Accepted{CID: r.CID(), New: true, Record: r}, false, nil
}

// IngestOrPark is IngestOrParkFrom for records from no one peer in
// particular (sync), which share one peer's bound of parking.
func (p *Pipeline) IngestOrPark(ctx context.Context, r *protocol.Record, src service.Source) (service.Accepted, bool, error) {
	return p.IngestOrParkFrom(ctx, r, src, "")
}

// IngestOrParkFrom is Ingest for a record that may arrive before what
// authorises it (gossip, sync), sent by peer from: one refused as
// unauthorized_issuer or unknown_reference is parked and tried again when
// what it waits for arrives (parked.go). It reports whether it parked the
// record; a record is not parked when parking, or from's share of it, is
// full.
func (p *Pipeline) IngestOrParkFrom(ctx context.Context, r *protocol.Record, src service.Source, from peer.ID) (service.Accepted, bool, error) {
	seen := p.parked.seen()
	acc, err := p.Ingest(ctx, r, src)
	return acc, p.park(ctx, r, from, seen, err), err
}

// park parks r, sent by from and refused with err, if err says it waits
// for what authorises it (see IngestOrParkFrom); seen is the parking's
// clock when r arrived. It reports whether it parked r.
func (p *Pipeline) park(ctx context.Context, r *protocol.Record, from peer.ID, seen uint64, err error) bool {
	key, ok := waitsFor(r, err)
	if !ok {
		return false
	}
	parked, why := p.parked.add(r, from, key, seen, p.cfg.Now())
	if parked {
		p.tally.park(string(protocol.CodeOf(err)))
	}
	if !parked && p.log.Enabled(ctx, slog.LevelDebug) {
		p.log.Debug("record not parked", "cid", r.CID().String(), "from", from.String(), "reason", why)
	}
	return parked
}
