package notices

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// storeBlocks decodes blocks from the store, as the trust view does on a
// cold cache.
type storeBlocks struct{ st *store.Store }

func (b storeBlocks) DecisionBlock(c cid.Cid) (*protocol.DecisionBlock, error) {
	raw, err := b.st.GetBlock(c)
	if err != nil {
		return nil, err
	}
	return protocol.DecodeDecisionBlock(raw)
}

// BenchmarkRegister fills a store's register with 1 000 receipts of 1 000
// decisions each (10^6 decisions, under 1 000 consents, 1 000 decisions
// each, all to BR), then measures listing one consent's decisions (the
// lineage's query) and the cascade of its revocation (notices for its
// 1 000 decisions, blocks decoded from the store), over random consents.
func BenchmarkRegister(b *testing.B) {
	const receipts, perReceipt, consents = 1000, 1000, 1000
	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	key, err := config.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	platforms := make([]string, 10)
	for i := range platforms {
		k, _ := config.GenerateKey()
		p, _ := peer.IDFromPrivateKey(k)
		platforms[i] = p.String()
	}
	cs := make([]cid.Cid, consents)
	for i := range cs {
		cs[i] = protocol.RecordCID(fmt.Appendf(nil, "consent %d", i))
	}
	fill(b, st, key, id, platforms, cs, receipts, perReceipt)
	svc := New(Config{Store: st, Blocks: storeBlocks{st}, Jurisdiction: "BR"})
	var list, cascade []time.Duration
	b.ResetTimer()
	for range b.N {
		c := cs[rand.IntN(len(cs))]
		t0 := time.Now()
		n := 0
		q := store.DecisionQuery{Consent: c, Limit: store.MaxListLimit}
		for {
			entries, next, err := st.Decisions(q)
			if err != nil {
				b.Fatal(err)
			}
			n += len(entries)
			if next == 0 {
				break
			}
			q.After = next
		}
		list = append(list, time.Since(t0))
		if n != receipts*perReceipt/consents {
			b.Fatalf("consent with %d decisions", n)
		}
		rev, err := protocol.Sign(key, time.Now().UnixMilli(), &protocol.Revocation{Target: protocol.LinkTo(c), Reason: "x", EffectiveAt: 1})
		if err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if err := svc.notify(rev, c, EventRevoked); err != nil {
			b.Fatal(err)
		}
		cascade = append(cascade, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(list)
	slices.Sort(cascade)
	p := func(d []time.Duration, q int) float64 {
		return float64(d[min(len(d)-1, len(d)*q/100)].Microseconds()) / 1000
	}
	b.ReportMetric(p(list, 50), "lineage-query-p50-ms")
	b.ReportMetric(p(list, 99), "lineage-query-p99-ms")
	b.ReportMetric(p(cascade, 50), "cascade-1000-p50-ms")
	b.ReportMetric(p(cascade, 99), "cascade-1000-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// fill stores receipts of perReceipt decisions each, decision i of
// receipt r under consent (r*perReceipt+i) mod len(cs).
func fill(b *testing.B, st *store.Store, key crypto.PrivKey, id peer.ID, platforms []string, cs []cid.Cid, receipts, perReceipt int) {
	ctx := context.Background()
	for r := range receipts {
		blocks := make([]store.Block, perReceipt)
		links := make([]cid.Cid, perReceipt)
		for i := range perReceipt {
			req := protocol.TransferRequest{Consent: protocol.LinkTo(cs[(r*perReceipt+i)%len(cs)]), From: "DE", To: "BR", Sender: id.String(),
				Recipient: platforms[i%len(platforms)], Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30, At: int64(r*perReceipt + i + 1)}
			blk := &protocol.DecisionBlock{Request: req, Verdict: protocol.VerdictAllow,
				Checks: []protocol.Check{{ID: protocol.CheckConsentKnown, OK: true, Detail: "held"}}, Evidence: []protocol.Link{}}
			enc, c, err := blk.Encode()
			if err != nil {
				b.Fatal(err)
			}
			blocks[i], links[i] = store.Block{Data: enc, Request: &blk.Request}, c
		}
		rec, err := protocol.SignOwned(key, int64(r+1), protocol.NewReceipt(links, protocol.Checkpoint{Root: make([]byte, 32)}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.PutReceipt(ctx, rec, blocks); err != nil {
			b.Fatal(err)
		}
	}
}
