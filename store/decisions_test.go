package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// decisionsOf lists every decision q selects, page by page of size
// limit, as "receipt#item" strings.
func decisionsOf(t *testing.T, s *Store, q DecisionQuery, limit int) []string {
	t.Helper()
	var out []string
	q.Limit = limit
	for range 1000 {
		entries, next, err := s.Decisions(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > limit {
			t.Fatalf("a page of %d with limit %d", len(entries), limit)
		}
		for _, e := range entries {
			out = append(out, fmt.Sprintf("%s#%d", e.Receipt, e.Item))
		}
		if next == 0 {
			return out
		}
		q.After = next
	}
	t.Fatal("the register's pages do not end")
	return nil
}

// TestRegister: every decision of the receipts held with their blocks is
// listed, filtered by consent, sender, recipient and jurisdictions alone
// or together, page by page in acceptance order; fetched blocks join it;
// a format-3 store is upgraded into it.
func TestRegister(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sg := newSigner(t)
	c1, c2 := sg.consent(t, "DE"), sg.consent(t, "DE")
	if _, err := s.PutMany(ctx, []*protocol.Record{c1, c2}); err != nil {
		t.Fatal(err)
	}
	other := newSigner(t).id.String()
	// Three receipts: two decisions (c1 DE→FR, c2 DE→FR), one (c1 DE→FR,
	// other recipient), and one held without its blocks (fetched later).
	r1, b1 := sg.receiptOf(t, c1, c2)
	r2, b2 := sg.receiptOf(t, c1)
	b2[0].Request.Recipient = other
	b2 = reencode(t, b2)
	r2 = sg.sign(t, protocol.NewReceipt([]cid.Cid{protocol.RecordCID(b2[0].Data)}, protocol.Checkpoint{Root: make([]byte, 32)}))
	r3, b3 := sg.receiptOf(t, c2)
	for _, p := range []struct {
		r *protocol.Record
		b []Block
	}{{r1, b1}, {r2, b2}} {
		if _, err := s.PutReceipt(ctx, p.r, p.b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, r3); err != nil {
		t.Fatal(err)
	}
	at := func(r *protocol.Record, item int) string { return fmt.Sprintf("%s#%d", r.CID(), item) }
	all := []string{at(r1, 0), at(r1, 1), at(r2, 0)}
	me := sg.id.String()
	for _, c := range []struct {
		name string
		q    DecisionQuery
		want []string
	}{
		{"all", DecisionQuery{}, all},
		{"consent c1", DecisionQuery{Consent: c1.CID()}, []string{at(r1, 0), at(r2, 0)}},
		{"consent c2", DecisionQuery{Consent: c2.CID()}, []string{at(r1, 1)}},
		{"recipient other", DecisionQuery{Recipient: other}, []string{at(r2, 0)}},
		{"sender, to FR", DecisionQuery{Sender: me, To: "FR"}, all},
		{"consent c1, recipient me", DecisionQuery{Consent: c1.CID(), Recipient: me}, []string{at(r1, 0)}},
		{"from FR", DecisionQuery{From: "FR"}, nil},
		{"to DE", DecisionQuery{To: "DE"}, nil},
	} {
		for _, limit := range []int{1, 2, 100} {
			if got := decisionsOf(t, s, c.q, limit); !slices.Equal(got, c.want) {
				t.Errorf("%s, pages of %d: %v, want %v", c.name, limit, got, c.want)
			}
		}
	}
	// Each entry names its decision's block.
	entries, _, err := s.Decisions(DecisionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		r, err := s.Get(e.Receipt)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := r.Receipt()
		if !body.Decisions[e.Item].Equals(e.Block) {
			t.Errorf("%s#%d names block %s, not %s", e.Receipt, e.Item, e.Block, body.Decisions[e.Item])
		}
	}
	// The third receipt's block, fetched: it joins the register.
	if err := s.PutBlocks(ctx, r3.CID(), blockData(b3)); err != nil {
		t.Fatal(err)
	}
	if got := decisionsOf(t, s, DecisionQuery{Consent: c2.CID()}, 10); !slices.Equal(got, []string{at(r1, 1), at(r3, 0)}) {
		t.Errorf("after PutBlocks: %v", got)
	}
	// A format-3 store (no register) is upgraded into the same register.
	s.Close()
	dropRegister(t, dir)
	setMeta(t, dir, 3, 3)
	s, err = Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := decisionsOf(t, s, DecisionQuery{}, 2); !slices.Equal(got, append(slices.Clone(all), at(r3, 0))) {
		t.Errorf("after the upgrade: %v", got)
	}
}

// reencode encodes the blocks' requests again, as their data.
func reencode(t *testing.T, bs []Block) []Block {
	t.Helper()
	for i := range bs {
		blk, err := protocol.DecodeDecisionBlock(bs[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		blk.Request = *bs[i].Request
		if bs[i].Data, _, err = blk.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	return bs
}

// dropRegister deletes the register's keys of the closed store in dir.
func dropRegister(t *testing.T, dir string) {
	t.Helper()
	db, err := badger.OpenManaged(badgerOptions(Options{Dir: dir, Logger: testLogger(t)}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.DropPrefix([]byte{prefixDecision}); err != nil {
		t.Fatal(err)
	}
}
