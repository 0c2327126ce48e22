package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

func noBundle(format string, args ...any) error {
	return fmt.Errorf("%w: %s", service.ErrNoBundle, fmt.Sprintf(format, args...))
}

// Bundle assembles the bundle of decision item of the receipt with CID c,
// which this node issued (see protocol.Bundle for the format): the
// receipt; the decision block; the records the decision read, found by
// deciding its request again, and authorising the receipt and its
// evidence, over the records the node held before the receipt; the same
// for each ancestor the node holds (its receipt, its block, and what it
// read of the records issued no later than its receipt); the latest
// checkpoint, or a new one if the latest does not cover the receipt yet;
// and the proofs.
//
// The errors are store.ErrNotFound for a record the node does not hold,
// service.ErrNoBundle for one it has no bundle of (not a receipt, another
// node's, no such item), service.ErrClosed, or the store's.
func (s *Service) Bundle(c cid.Cid, item int) (*protocol.Bundle, error) {
	return s.BundleFor(c, item, nil)
}

// BundleFor is Bundle for a caller who may read what mayRead accepts (nil:
// everything): an incident of the evidence it may not read is left out
// and listed in the manifest as withheld (DESIGN.md §6); one it may not
// read that is no evidence is left out.
func (s *Service) BundleFor(c cid.Cid, item int, mayRead func(*protocol.Record) bool) (*protocol.Bundle, error) {
	if s.closed.Load() {
		return nil, service.ErrClosed
	}
	st := s.cfg.Store
	rec, err := st.Get(c)
	if err != nil {
		return nil, err
	}
	body, ok := rec.Receipt()
	if !ok {
		return nil, noBundle("%s is a %s, not a receipt", c, rec.Kind())
	}
	if rec.Issuer() != s.id {
		return nil, noBundle("receipt %s was issued by node %s, whose log holds it: ask that node for its bundle", c, rec.Issuer())
	}
	if item < 0 || item >= len(body.Decisions) {
		return nil, noBundle("receipt %s signs %d %s; there is no item %d", c, len(body.Decisions), plural(len(body.Decisions), "decision", "decisions"), item)
	}
	raw, err := st.GetBlock(body.Decisions[item].Cid)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: decision %d: %w", c, item, err)
	}
	blk, err := protocol.DecodeDecisionBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: decision %d: %w", c, item, err)
	}
	seq, err := st.Seq(c)
	if err != nil {
		return nil, err
	}
	records, err := s.receiptReads(rec, body, blk, seq)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: %w", c, err)
	}
	lineage, err := s.lineageOf(&blk.Request)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: lineage: %w", c, err)
	}
	var lineageBlocks [][]byte
	evidence := map[cid.Cid]bool{}
	for _, l := range blk.Evidence {
		evidence[l.Cid] = true
	}
	for depth, a := range lineage {
		for _, l := range a.block.Evidence {
			evidence[l.Cid] = true
		}
		reads, err := s.ancestorReads(a, seq)
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: ancestor %d: %w", c, depth+1, err)
		}
		raw, err := st.GetBlock(a.blockID)
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: ancestor %d: %w", c, depth+1, err)
		}
		records = append(append(records, a.receipt), reads...)
		lineageBlocks = append(lineageBlocks, raw)
	}
	sc, err := s.checkpointCovering(seq)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: %w", c, err)
	}
	m := &protocol.BundleManifest{V: protocol.BundleVersion, Receipt: protocol.LinkTo(c), Item: int64(item), Checkpoint: sc.Note}
	if mayRead != nil {
		records, m.Withheld = withhold(records, evidence, mayRead)
	}
	if from := uint64(body.Checkpoint.Size); from > 0 && from < sc.Size {
		p, err := st.ConsistencyProof(from, sc.Size)
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: consistency from %d to %d: %w", c, from, sc.Size, err)
		}
		m.Consistency = protocol.HashBytes(p)
	}
	for _, r := range protocol.BundleRecords(rec, records) {
		seq, err := st.Seq(r.CID())
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: %s: %w", c, r.CID(), err)
		}
		p, err := st.InclusionProof(seq, sc.Size)
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: proof of %s: %w", c, r.CID(), err)
		}
		m.Proofs = append(m.Proofs, protocol.BundleProof{CID: protocol.LinkTo(r.CID()), Index: int64(seq - 1), Hashes: protocol.HashBytes(p)})
	}
	return protocol.NewBundle(rec, m, raw, lineageBlocks, records)
}

// withhold leaves out of records the incidents mayRead refuses, and
// lists those of them that are evidence, in ascending order of binary CID.
func withhold(records []*protocol.Record, evidence map[cid.Cid]bool, mayRead func(*protocol.Record) bool) ([]*protocol.Record, []protocol.BundleWithheld) {
	var withheld []protocol.BundleWithheld
	kept := records[:0:0]
	for _, r := range records {
		if r.Kind() != protocol.KindIncident || mayRead(r) {
			kept = append(kept, r)
			continue
		}
		if evidence[r.CID()] && !slices.ContainsFunc(withheld, func(w protocol.BundleWithheld) bool { return w.CID.Equals(r.CID()) }) {
			withheld = append(withheld, protocol.BundleWithheld{CID: protocol.LinkTo(r.CID()), Kind: r.Kind()})
		}
	}
	slices.SortFunc(withheld, func(a, b protocol.BundleWithheld) int { return strings.Compare(a.CID.KeyString(), b.CID.KeyString()) })
	return kept, withheld
}

// receiptReads returns the records that deciding the receipt's request,
// and authorising the receipt and its evidence, read from what the node
// held before the receipt (seq): what an auditor needs to recompute it.
//
// "Before" is the records accepted before the receipt; a record accepted
// while the decision was under way may be among them without the
// decision having seen it, so when the decision does not come out the
// same, the records of the tree the receipt names (those durable when
// the decision began) are tried instead. If neither gives the receipt's
// decision — a node that cannot recompute its own receipt — the bundle
// is made of the first, and its check will say where they differ.
func (s *Service) receiptReads(rec *protocol.Record, body *protocol.Receipt, blk *protocol.DecisionBlock, seq uint64) ([]*protocol.Record, error) {
	limits := []uint64{seq}
	if atTree := uint64(body.Checkpoint.Size) + 1; atTree < seq {
		limits = append(limits, atTree)
	}
	seqs := map[cid.Cid]uint64{}
	var first []*protocol.Record
	for i, limit := range limits {
		reads, diff, err := s.readsOf(rec, blk, func(r *protocol.Record) (bool, error) {
			sq, err := s.seqOf(seqs, r)
			return sq < limit, err
		})
		if err != nil {
			return nil, err
		}
		if diff == "" {
			return reads, nil
		}
		if i == 0 {
			first = reads
		}
	}
	s.log.Warn("a receipt's decision does not come out the same from the records held before it; its bundle will not check",
		"receipt", rec.CID().String())
	return first, nil
}

// ancestorReads returns what deciding an ancestor's request again, and
// authorising its receipt and evidence, read from the records held
// before the bundle's receipt (seq limit) and issued no later than the
// ancestor's receipt: the records the offline check recomputes it from.
func (s *Service) ancestorReads(a ancestor, limit uint64) ([]*protocol.Record, error) {
	seqs := map[cid.Cid]uint64{}
	issued := a.receipt.IssuedAt()
	reads, diff, err := s.readsOf(a.receipt, a.block, func(r *protocol.Record) (bool, error) {
		if r.IssuedAt() > issued {
			return false, nil
		}
		sq, err := s.seqOf(seqs, r)
		return sq < limit, err
	})
	if err == nil && diff != "" {
		s.log.Warn("an ancestor's decision does not come out the same from the records held; the bundles that carry it will not check",
			"receipt", a.receipt.CID().String(), "item", a.ref.Item, "diff", diff)
	}
	return reads, err
}

// readsOf decides blk's request again, and authorises its receipt rec
// and its evidence, over the held records keep accepts: it returns the
// records read and how the decision differs from blk ("" when it does
// not).
func (s *Service) readsOf(rec *protocol.Record, blk *protocol.DecisionBlock, keep func(*protocol.Record) (bool, error)) ([]*protocol.Record, string, error) {
	v := protocol.ReadThrough(s.cfg.Trust, nil).Keep(keep)
	req := blk.Request
	d, err := protocol.Decide(&req, v, s.rules)
	if err != nil {
		return nil, "", fmt.Errorf("deciding the request again: %w", err)
	}
	authorize := []*protocol.Record{rec}
	for _, l := range blk.Evidence {
		if r, err := v.Record(l.Cid); err == nil {
			authorize = append(authorize, r)
		}
	}
	for _, r := range authorize {
		if err := protocol.Authorize(r, v); err != nil && protocol.CodeOf(err) == "" {
			return nil, "", fmt.Errorf("authorising %s: %w", r.CID(), err)
		}
	}
	if v.Err() != nil {
		return nil, "", v.Err()
	}
	return v.Read(), d.Diff(blk), nil
}

// seqOf is r's seq in the store, through the memo seqs.
func (s *Service) seqOf(seqs map[cid.Cid]uint64, r *protocol.Record) (uint64, error) {
	if sq, ok := seqs[r.CID()]; ok {
		return sq, nil
	}
	sq, err := s.cfg.Store.Seq(r.CID())
	if err == nil {
		seqs[r.CID()] = sq
	}
	return sq, err
}

// checkpointCovering returns a checkpoint whose tree holds leaf seq-1:
// the latest, or a new one of the durable log.
func (s *Service) checkpointCovering(seq uint64) (protocol.SignedCheckpoint, error) {
	if sc, err := s.cfg.Checkpoints.Latest(); err == nil && sc.Size >= seq {
		return sc, nil
	}
	sc, err := s.cfg.Checkpoints.Sign()
	if err != nil {
		return protocol.SignedCheckpoint{}, err
	}
	if sc.Size < seq {
		return protocol.SignedCheckpoint{}, fmt.Errorf("the durable log has %d records; the receipt is record %d", sc.Size, seq)
	}
	return sc, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
