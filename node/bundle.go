package node

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// MediaCAR is the media type of a receipt bundle.
const MediaCAR = "application/vnd.ipld.car"

// ErrNoBundle is wrapped by Bundle's error for a record the node holds
// but has no bundle of: one that is not a receipt, or another node's
// receipt (only its issuer's log can prove it).
var ErrNoBundle = errors.New("node: no receipt bundle")

func noBundle(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNoBundle, fmt.Sprintf(format, args...))
}

// Bundle assembles the bundle of the receipt with CID c, which this node
// issued (see protocol.Bundle for the format): the receipt; the records
// its decision read, found by deciding the receipt's request again, and
// authorising the receipt and its evidence, over the records the node
// held before the receipt; the latest checkpoint, or a new one if the
// latest does not cover the receipt yet; and the proofs.
//
// The errors are store.ErrNotFound for a record the node does not hold,
// ErrNoBundle for one it has no bundle of, ErrClosed, or the store's.
func (n *Node) Bundle(c cid.Cid) (*protocol.Bundle, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	rec, err := n.store.Get(c)
	if err != nil {
		return nil, err
	}
	body, ok := rec.Receipt()
	if !ok {
		return nil, noBundle("%s is a %s, not a receipt", c, rec.Kind())
	}
	if rec.Issuer() != n.id {
		return nil, noBundle("receipt %s was issued by node %s, whose log holds it: ask that node for its bundle", c, rec.Issuer())
	}
	seq, err := n.store.Seq(c)
	if err != nil {
		return nil, err
	}
	records, err := n.receiptReads(rec, body, seq)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: %w", c, err)
	}
	sc, err := n.checkpointCovering(seq)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: %w", c, err)
	}
	m := &protocol.BundleManifest{V: protocol.BundleVersion, Receipt: protocol.LinkTo(c), Checkpoint: sc.Note}
	if from := uint64(body.Checkpoint.Size); from > 0 && from < sc.Size {
		p, err := n.store.ConsistencyProof(from, sc.Size)
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: consistency from %d to %d: %w", c, from, sc.Size, err)
		}
		m.Consistency = protocol.HashBytes(p)
	}
	for _, r := range protocol.BundleRecords(rec, records) {
		s, err := n.store.Seq(r.CID())
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: %s: %w", c, r.CID(), err)
		}
		p, err := n.store.InclusionProof(s, sc.Size)
		if err != nil {
			return nil, fmt.Errorf("node: bundle of %s: proof of %s: %w", c, r.CID(), err)
		}
		m.Proofs = append(m.Proofs, protocol.BundleProof{CID: protocol.LinkTo(r.CID()), Index: int64(s - 1), Hashes: protocol.HashBytes(p)})
	}
	return protocol.NewBundle(rec, m, records)
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
func (n *Node) receiptReads(rec *protocol.Record, body *protocol.Receipt, seq uint64) ([]*protocol.Record, error) {
	limits := []uint64{seq}
	if atTree := uint64(body.Checkpoint.Size) + 1; atTree < seq {
		limits = append(limits, atTree)
	}
	var first []*protocol.Record
	for i, limit := range limits {
		v := newAsOfView(n.trust, limit)
		req := body.Request
		d, err := protocol.Decide(&req, v, n.rules)
		if err != nil {
			return nil, fmt.Errorf("deciding the request again: %w", err)
		}
		authorize := []*protocol.Record{rec}
		for _, l := range body.Evidence {
			if r, err := v.Record(l.Cid); err == nil {
				authorize = append(authorize, r)
			}
		}
		for _, r := range authorize {
			if err := protocol.Authorize(r, v); err != nil && protocol.CodeOf(err) == "" {
				return nil, fmt.Errorf("authorising %s: %w", r.CID(), err)
			}
		}
		if v.err != nil {
			return nil, v.err
		}
		if d.Diff(body) == "" {
			return v.records(), nil
		}
		if i == 0 {
			first = v.records()
		}
	}
	n.log.Warn("a receipt's decision does not come out the same from the records held before it; its bundle will not check",
		"receipt", rec.CID().String())
	return first, nil
}

// checkpointCovering returns a checkpoint whose tree holds leaf seq-1:
// the latest, or a new one of the durable log.
func (n *Node) checkpointCovering(seq uint64) (protocol.SignedCheckpoint, error) {
	if sc, err := n.LatestCheckpoint(); err == nil && sc.Size >= seq {
		return sc, nil
	}
	sc, err := n.SignCheckpoint()
	if err != nil {
		return protocol.SignedCheckpoint{}, err
	}
	if sc.Size < seq {
		return protocol.SignedCheckpoint{}, fmt.Errorf("the durable log has %d records; the receipt is record %d", sc.Size, seq)
	}
	return sc, nil
}

// asOfView is the node's DecisionView restricted to the records accepted
// before limit (seq < limit), remembering every record it returns.
type asOfView struct {
	*trustView
	limit uint64
	seqs  map[cid.Cid]uint64
	read  map[cid.Cid]*protocol.Record
	order []*protocol.Record // read, in first-read order
	err   error              // the first error of the store
}

func newAsOfView(v *trustView, limit uint64) *asOfView {
	return &asOfView{trustView: v, limit: limit, seqs: map[cid.Cid]uint64{}, read: map[cid.Cid]*protocol.Record{}}
}

// visible reports whether r was accepted before the limit.
func (v *asOfView) visible(r *protocol.Record) (bool, error) {
	s, ok := v.seqs[r.CID()]
	if !ok {
		var err error
		if s, err = v.store.Seq(r.CID()); err != nil {
			return false, err
		}
		v.seqs[r.CID()] = s
	}
	return s < v.limit, nil
}

func (v *asOfView) remember(r *protocol.Record) {
	if _, ok := v.read[r.CID()]; !ok {
		v.read[r.CID()] = r
		v.order = append(v.order, r)
	}
}

func (v *asOfView) fail(err error) error {
	if v.err == nil {
		v.err = err
	}
	return err
}

// keep filters a list to the visible records and remembers them.
func (v *asOfView) keep(rs []*protocol.Record, err error) ([]*protocol.Record, error) {
	if err != nil {
		return nil, v.fail(err)
	}
	out := rs[:0:0]
	for _, r := range rs {
		ok, err := v.visible(r)
		if err != nil {
			return nil, v.fail(err)
		}
		if ok {
			v.remember(r)
			out = append(out, r)
		}
	}
	return out, nil
}

func (v *asOfView) records() []*protocol.Record { return v.order }

func (v *asOfView) Record(c cid.Cid) (*protocol.Record, error) {
	r, err := v.trustView.Record(c)
	if errors.Is(err, protocol.ErrNotHeld) {
		return nil, err
	}
	if err != nil {
		return nil, v.fail(err)
	}
	ok, err := v.visible(r)
	if err != nil {
		return nil, v.fail(err)
	}
	if !ok {
		return nil, protocol.ErrNotHeld
	}
	v.remember(r)
	return r, nil
}

func (v *asOfView) AccreditationsOf(id peer.ID) ([]*protocol.Record, error) {
	return v.keep(v.trustView.AccreditationsOf(id))
}

func (v *asOfView) LinkedFrom(c cid.Cid, kinds ...protocol.Kind) ([]*protocol.Record, error) {
	return v.keep(v.trustView.LinkedFrom(c, kinds...))
}

func (v *asOfView) RulesetsOf(j string) ([]*protocol.Record, error) {
	return v.keep(v.trustView.RulesetsOf(j))
}

func (v *asOfView) IncidentsAffecting(id peer.ID) ([]*protocol.Record, error) {
	return v.keep(v.trustView.IncidentsAffecting(id))
}

// handleReceiptBundle serves GET /v1/receipts/{cid}/bundle: the bundle
// of a receipt this node issued, as a CAR. A CID that does not parse is
// 400 bad_request; one the node does not hold, or that is not a receipt
// of this node, is 404 not_found.
func (n *Node) handleReceiptBundle(w http.ResponseWriter, r *http.Request) {
	c, err := protocol.ParseCID(r.PathValue("cid"))
	if err != nil {
		n.writeError(w, r, badRequest("cid: %v", err))
		return
	}
	b, err := n.Bundle(c)
	if errors.Is(err, store.ErrNotFound) {
		err = &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("receipt %s is not held by this node", c)}
	} else if errors.Is(err, ErrNoBundle) {
		err = &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: strings.TrimPrefix(err.Error(), ErrNoBundle.Error()+": ")}
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	car, err := b.MarshalCAR()
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", MediaCAR)
	h.Set("Content-Length", strconv.Itoa(len(car)))
	h.Set("Content-Disposition", `attachment; filename="`+c.String()+`.car"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache") // a later checkpoint makes another bundle
	w.Write(car)
}
