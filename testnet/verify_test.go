package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// TestEveryNodeGivesTheSameVerdict: the same request, on every node of the
// federation, gives the same verdict, checks and evidence; each node signs
// its own receipt.
func TestEveryNodeGivesTheSameVerdict(t *testing.T) {
	w := newTransferWorld(t, Options{Nodes: 3, InMemory: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	marketing := w.Request
	marketing.Purpose = "marketing"
	for _, tc := range []struct {
		name    string
		req     protocol.TransferRequest
		verdict string
	}{{"allowed", w.Request, protocol.VerdictAllow}, {"marketing", marketing, protocol.VerdictDeny}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.At = time.Now().UnixMilli() // one decision time for all nodes
			var first *protocol.DecisionBlock
			receipts := map[string]bool{}
			for _, m := range w.Net.Nodes {
				v, err := m.Services().Verify.Verify(ctx, tc.req)
				if err != nil {
					t.Fatal(err)
				}
				if v.Decision.Verdict != tc.verdict {
					t.Fatalf("node %d: verdict %s, want %s: %+v", m.Index, v.Decision.Verdict, tc.verdict, v.Decision.Checks)
				}
				_, blockID, err := v.Block.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if rb, ok := v.Receipt.Receipt(); !ok || v.Receipt.Issuer() != m.ID() || len(rb.Decisions) != 1 || !rb.Decisions[0].Equals(blockID) {
					t.Fatalf("node %d: the receipt is not signed by the node, or not of its decision", m.Index)
				}
				if held, _ := m.Store().Has(v.Receipt.CID()); !held {
					t.Fatalf("node %d did not store its receipt", m.Index)
				}
				receipts[v.Receipt.CID().String()] = true
				if first == nil {
					first = v.Block
					continue
				}
				if !sameDecision(first, v.Block) {
					t.Fatalf("node %d decided differently:\n%+v\nvs\n%+v", m.Index, v.Block.Checks, first.Checks)
				}
			}
			if len(receipts) != len(w.Net.Nodes) {
				t.Fatalf("%d distinct receipts from %d nodes", len(receipts), len(w.Net.Nodes))
			}
		})
	}
}

func sameDecision(a, b *protocol.DecisionBlock) bool {
	return (&protocol.Decision{Verdict: a.Verdict, Checks: a.Checks, Evidence: a.Evidence}).Diff(b) == ""
}

// TestRevocationReachesEveryVerdict: once a revocation spreads, every node
// denies the transfer it allowed, on consent.live, with the revocation as
// evidence.
func TestRevocationReachesEveryVerdict(t *testing.T) {
	w := newTransferWorld(t, Options{Nodes: 3, InMemory: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range w.Net.Nodes {
		d, err := m.Services().Verify.Decide(w.Request)
		if err != nil || d.Verdict != protocol.VerdictAllow {
			t.Fatalf("node %d before the revocation: %v %+v", m.Index, err, d)
		}
	}
	rev, err := Sign(w.Platform.Key, &protocol.Revocation{Target: protocol.LinkTo(w.Consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Net.Submit(ctx, w.Net.NodeOf("DE"), rev); err != nil {
		t.Fatal(err)
	}
	if err := w.Net.WaitAll(ctx, rev.CID()); err != nil {
		t.Fatal(err)
	}
	for _, m := range w.Net.Nodes {
		d, err := m.Services().Verify.Decide(w.Request)
		if err != nil {
			t.Fatal(err)
		}
		live := d.Checks[2]
		if d.Verdict != protocol.VerdictDeny || live.ID != "consent.live" || live.OK || live.Evidence == nil || !live.Evidence.Equals(rev.CID()) {
			t.Fatalf("node %d after the revocation: %s, %+v", m.Index, d.Verdict, live)
		}
	}
}
