package notices

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// TestNotices: an amendment of a consent makes a consent-superseded
// notice, and its revocation a consent-revoked one, for the recipient of
// each allowed decision to this node's jurisdiction under it — not for a
// denied one, nor one to another jurisdiction; a record of another kind,
// or about a consent not held, makes none; streams are woken.
func TestNotices(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	key, _ := config.GenerateKey()
	issuer, _ := peer.IDFromPrivateKey(key)
	sign := func(b protocol.Body) *protocol.Record {
		r, err := protocol.Sign(key, time.Now().UnixMilli(), b)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	consent := sign(&protocol.Consent{Subject: make([]byte, 32), Jurisdiction: "DE", Categories: []string{"face"}, Purposes: []string{"research"},
		MaxTier: 1, Destinations: []string{"BR"}, RetentionDays: 30, ExpiresAt: time.Now().Add(time.Hour).UnixMilli(), Method: "app"})
	if _, err := st.Put(ctx, consent); err != nil {
		t.Fatal(err)
	}
	recipients := []string{}
	var blocks []store.Block
	var links []cid.Cid
	for i, d := range []struct{ to, verdict string }{{"BR", protocol.VerdictAllow}, {"BR", protocol.VerdictDeny}, {"FR", protocol.VerdictAllow}} {
		k, _ := config.GenerateKey()
		who, _ := peer.IDFromPrivateKey(k)
		recipients = append(recipients, who.String())
		check := protocol.Check{ID: protocol.CheckConsentKnown, OK: true, Detail: "x"}
		if d.verdict == protocol.VerdictDeny {
			check.OK, check.Reason = false, protocol.ReasonNotConsent
		}
		blk := &protocol.DecisionBlock{Request: protocol.TransferRequest{Consent: protocol.LinkTo(consent.CID()), From: "DE", To: d.to, Sender: issuer.String(),
			Recipient: who.String(), Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 1, At: int64(i + 1)},
			Verdict: d.verdict, Checks: []protocol.Check{check}, Evidence: []protocol.Link{}}
		enc, c, err := blk.Encode()
		if err != nil {
			t.Fatal(err)
		}
		blocks, links = append(blocks, store.Block{Data: enc, Request: &blk.Request}), append(links, c)
	}
	receipt := sign(protocol.NewReceipt(links, protocol.Checkpoint{Root: make([]byte, 32)}))
	if _, err := st.PutReceipt(ctx, receipt, blocks); err != nil {
		t.Fatal(err)
	}
	svc := New(Config{Store: st, Blocks: storeBlocks{st}, Jurisdiction: "BR"})
	woken := svc.Wait()
	svc.Accepted(consent)                                                                                         // no supersedes: nothing
	svc.Accepted(sign(&protocol.Revocation{Target: protocol.LinkTo(receipt.CID()), Reason: "x", EffectiveAt: 1})) // not a consent
	amended := *func() *protocol.Consent { c, _ := consent.Consent(); return c }()
	amended.Supersedes, amended.RetentionDays = protocol.LinkPtr(consent.CID()), 20
	svc.Accepted(sign(&amended))
	select {
	case <-woken:
	default:
		t.Error("the streams were not woken")
	}
	svc.Accepted(sign(&protocol.Revocation{Target: protocol.LinkTo(consent.CID()), Reason: "withdrawn", EffectiveAt: 1}))
	all, err := st.Notices("", 0, 10)
	if err != nil || len(all) != 2 {
		t.Fatalf("notices: %+v, %v; want two", all, err)
	}
	for i, event := range []string{EventSuperseded, EventRevoked} {
		n := all[i]
		if n.Event != event || n.Consent != consent.CID().String() || n.Recipient != recipients[0] ||
			len(n.Decisions) != 1 || n.Decisions[0] != (store.DecisionRef{Receipt: receipt.CID().String(), Item: 0}) {
			t.Errorf("notice %d: %+v", i, n)
		}
	}
}
