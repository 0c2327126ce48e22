package verify

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// fetchChunk is the most CIDs one call to the fetch service asks for.
const fetchChunk = 64

// ancestor is one decision of a lineage as the node holds it.
type ancestor struct {
	ref     protocol.DecisionRef
	receipt *protocol.Record
	blockID cid.Cid
	block   *protocol.DecisionBlock // shared (the trust view's): do not modify
}

// lineageOf returns the ancestors of req the node holds, parent first,
// up to protocol.MaxLineage: it stops at the first one it does not hold
// whole (receipt and block), or that is not a decision.
func (s *Service) lineageOf(req *protocol.TransferRequest) ([]ancestor, error) {
	var out []ancestor
	for ref := req.Parent; ref != nil && len(out) < protocol.MaxLineage; {
		a, ok, err := s.heldDecision(*ref)
		if err != nil || !ok {
			return out, err
		}
		out = append(out, a)
		ref = a.block.Request.Parent
	}
	return out, nil
}

// heldDecision reads the decision ref names, if the node holds its
// receipt and its block. When it holds the receipt and the receipt names
// the decision, the ancestor's receipt and blockID are set even if the
// block is not held.
func (s *Service) heldDecision(ref protocol.DecisionRef) (ancestor, bool, error) {
	a := ancestor{ref: ref}
	rec, err := s.cfg.Store.Get(ref.Receipt.Cid)
	if errors.Is(err, store.ErrNotFound) {
		return a, false, nil
	}
	if err != nil {
		return a, false, err
	}
	body, ok := rec.Receipt()
	if !ok || ref.Item >= int64(len(body.Decisions)) {
		return a, false, nil
	}
	a.receipt, a.blockID = rec, body.Decisions[ref.Item].Cid
	a.block, err = s.cfg.Trust.DecisionBlock(a.blockID)
	if errors.Is(err, protocol.ErrNotHeld) {
		return a, false, nil
	}
	return a, err == nil, err
}

// fetchLineages asks member nodes for the ancestors of reqs the node
// lacks — each receipt (ingested as any fetched record) and the block of
// its decision (stored with it, store.PutBlocks) — level by level, parent
// first, so that lineage.parent reflects the federation and a bundle can
// carry the whole lineage. What no member gives is left out: the
// decision says so.
func (s *Service) fetchLineages(ctx context.Context, reqs []protocol.TransferRequest) {
	if s.cfg.Fetch == nil {
		return
	}
	var level []protocol.DecisionRef
	for i := range reqs {
		if p := reqs[i].Parent; p != nil {
			level = append(level, *p)
		}
	}
	seen := map[protocol.DecisionRef]bool{}
	for depth := 0; len(level) > 0 && depth < protocol.MaxLineage && ctx.Err() == nil; depth++ {
		var next []protocol.DecisionRef
		for _, ref := range s.fetchDecisions(ctx, level, seen) {
			if p := ref.Request.Parent; p != nil {
				next = append(next, *p)
			}
		}
		level = next
	}
}

// fetchDecisions makes sure the node holds the decisions refs name (those
// not seen before), fetching what it lacks, and returns the blocks of
// those it holds after.
func (s *Service) fetchDecisions(ctx context.Context, refs []protocol.DecisionRef, seen map[protocol.DecisionRef]bool) []*protocol.DecisionBlock {
	refs = slices.DeleteFunc(slices.Clone(refs), func(ref protocol.DecisionRef) bool {
		was := seen[ref]
		seen[ref] = true
		return was
	})
	var receipts []cid.Cid
	for _, ref := range refs {
		if ok, err := s.cfg.Store.Has(ref.Receipt.Cid); err == nil && !ok {
			receipts = append(receipts, ref.Receipt.Cid)
		}
	}
	for chunk := range slices.Chunk(receipts, fetchChunk) {
		if _, err := s.cfg.Fetch.Fetch(ctx, chunk...); err != nil {
			s.log.Debug("fetching parent receipts", "missing", len(chunk), "err", err)
		}
	}
	var out []*protocol.DecisionBlock
	wanted := map[cid.Cid]protocol.DecisionRef{} // blocks the node lacks, of receipts it holds
	for _, ref := range refs {
		a, ok, err := s.heldDecision(ref)
		switch {
		case ok:
			out = append(out, a.block)
		case err == nil && a.receipt != nil:
			wanted[a.blockID] = ref
		}
	}
	for chunk := range slices.Chunk(slices.Collect(maps.Keys(wanted)), fetchChunk) {
		got, err := s.cfg.Fetch.FetchBlocks(ctx, chunk...)
		if err != nil {
			s.log.Debug("fetching parent decisions", "missing", len(chunk), "err", err)
		}
		for c, b := range got {
			if err := s.cfg.Store.PutBlocks(ctx, wanted[c].Receipt.Cid, [][]byte{b}); err != nil {
				s.log.Warn("a fetched parent decision was not stored", "block", c.String(), "err", err)
				continue
			}
			if a, ok, err := s.heldDecision(wanted[c]); err == nil && ok {
				out = append(out, a.block)
			}
		}
	}
	return out
}
