package node

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// Verdict is the answer to a transfer request: the decision, and the
// receipt the node signed for it.
type Verdict struct {
	Decision *protocol.Decision
	Receipt  *protocol.Record
}

// Verify decides a transfer request (DESIGN.md §5) from the records the
// node holds — fetching the consent from peers first if it is not held —
// signs the verdict as a receipt, stores it and appends it to the log.
// A zero req.At means now.
func (n *Node) Verify(ctx context.Context, req protocol.TransferRequest) (*Verdict, error) {
	vs, err := n.VerifyBatch(ctx, []protocol.TransferRequest{req})
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// Decide decides a transfer request from the records the node holds,
// without fetching, signing or storing anything: a dry run, and the
// decision procedure's cost alone. A zero req.At means now.
func (n *Node) Decide(req protocol.TransferRequest) (*protocol.Decision, error) {
	if req.At == 0 {
		req.At = n.cfg.Now().UnixMilli()
	}
	if err := req.Validate(""); err != nil {
		return nil, err
	}
	return protocol.Decide(&req, newMemoView(n.trust, n.evidence), n.rules)
}

// VerifyBatch decides several requests and stores their receipts in one
// group commit. Results are in the order of reqs.
func (n *Node) VerifyBatch(ctx context.Context, reqs []protocol.TransferRequest) ([]*Verdict, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	now := n.cfg.Now().UnixMilli()
	for i := range reqs {
		if reqs[i].At == 0 {
			reqs[i].At = now
		}
		if err := reqs[i].Validate(""); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	n.fetchMissingConsents(ctx, reqs)
	tree, err := n.store.TreeHead()
	if err != nil {
		return nil, err
	}
	out := make([]*Verdict, len(reqs))
	receipts := make([]*protocol.Record, len(reqs))
	checkpoint := protocol.Checkpoint{Size: int64(tree.Size), Root: tree.Root[:]}
	// Decide and sign on every core; the receipts then share one commit.
	errs := make([]error, len(reqs))
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
			out[i], errs[i] = n.decideAndSign(&reqs[i], now, checkpoint)
			if errs[i] == nil {
				receipts[i] = out[i].Receipt
			}
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < min(len(reqs), runtime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work() // this goroutine too: a single request spawns none
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	if err := n.storeOwn(ctx, receipts); err != nil {
		return nil, err
	}
	n.metrics.verdicts.Add(float64(len(reqs)))
	return out, nil
}

// decideAndSign decides one request and signs the receipt.
func (n *Node) decideAndSign(req *protocol.TransferRequest, now int64, cp protocol.Checkpoint) (*Verdict, error) {
	d, err := protocol.Decide(req, newMemoView(n.trust, n.evidence), n.rules)
	if err != nil {
		return nil, err
	}
	// The receipt body is new and nothing changes it after: the record
	// may keep it (it shares d's checks, which no one changes either).
	rec, err := protocol.SignOwned(n.cfg.Key, now, d.Receipt(*req, cp))
	if err != nil {
		return nil, fmt.Errorf("sign receipt: %w", err)
	}
	return &Verdict{Decision: d, Receipt: rec}, nil
}

// storeOwn stores records this node just signed (receipts): they need no
// signature check or authorisation, and they are not gossiped — a receipt
// is the node's own audit trail, served to whoever asks for it.
func (n *Node) storeOwn(ctx context.Context, recs []*protocol.Record) error {
	res, err := n.store.PutMany(ctx, recs)
	if err != nil {
		return fmt.Errorf("store receipts: %w", err)
	}
	for i, r := range res {
		if r.New {
			n.afterAccept(recs[i], SourceLocal)
		}
	}
	return nil
}

// fetchMissingConsents asks peers for the consents of reqs that the node
// does not hold, so that consent.known reflects the federation, not only
// this node.
func (n *Node) fetchMissingConsents(ctx context.Context, reqs []protocol.TransferRequest) {
	var missing []cid.Cid
	for _, r := range reqs {
		if ok, err := n.store.Has(r.Consent.Cid); err == nil && !ok {
			missing = append(missing, r.Consent.Cid)
		}
	}
	if len(missing) == 0 {
		return
	}
	if _, err := n.Fetch(ctx, missing...); err != nil {
		n.log.Debug("fetching consents for a decision", "missing", len(missing), "err", err)
	}
}
