package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// receiptOf signs a receipt of one decision per consent and returns it
// with its decision blocks.
func (s *signer) receiptOf(tb testing.TB, consents ...*protocol.Record) (*protocol.Record, []Block) {
	tb.Helper()
	var blocks []Block
	var links []cid.Cid
	for i, c := range consents {
		b := &protocol.DecisionBlock{
			Request: protocol.TransferRequest{Consent: protocol.LinkTo(c.CID()), From: "DE", To: "FR", Sender: s.id.String(), Recipient: s.id.String(),
				Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: int64(i), At: 1},
			Verdict:  protocol.VerdictAllow,
			Checks:   []protocol.Check{{ID: protocol.CheckConsentKnown, OK: true, Detail: fmt.Sprint(i)}},
			Evidence: []protocol.Link{},
		}
		enc, l, err := b.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		blocks, links = append(blocks, Block{Data: enc, Request: &b.Request}), append(links, l)
	}
	return s.sign(tb, protocol.NewReceipt(links, protocol.Checkpoint{Root: make([]byte, 32)})), blocks
}

// TestPutReceipt: a receipt's decision blocks are durable with it and
// read back by CID; the receipt is found by its decisions' consents; a
// second put writes nothing.
func TestPutReceipt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sg := newSigner(t)
	a, b := sg.consent(t, "DE"), sg.consent(t, "DE")
	rc, blocks := sg.receiptOf(t, a, b, a)
	if _, err := s.PutMany(ctx, []*protocol.Record{a, b}); err != nil {
		t.Fatal(err)
	}
	res, err := s.PutReceipt(ctx, rc, blocks)
	if err != nil || !res.New || res.Seq != 3 {
		t.Fatalf("PutReceipt: %+v %v", res, err)
	}
	if again, err := s.PutReceipt(ctx, rc, blocks); err != nil || again.New || again.Seq != 3 {
		t.Fatalf("PutReceipt again: %+v %v", again, err)
	}
	s = reopen(t, s, dir)
	defer s.Close()
	body, _ := rc.Receipt()
	for i, l := range body.Decisions {
		got, err := s.GetBlock(l.Cid)
		if err != nil || string(got) != string(blocks[i].Data) {
			t.Errorf("decision %d: %v", i, err)
		}
	}
	if _, err := s.GetBlock(protocol.RecordCID([]byte("no block"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("an absent block: %v", err)
	}
	for _, c := range []*protocol.Record{a, b} {
		linked, err := s.LinkedFrom(c.CID(), protocol.KindReceipt)
		if err != nil || len(linked) != 1 || !linked[0].CID().Equals(rc.CID()) {
			t.Errorf("receipts of consent %s: %v %v", c.CID(), linked, err)
		}
	}
	if _, err := s.PutReceipt(ctx, a, nil); err == nil {
		t.Error("PutReceipt took a consent")
	}
	if _, err := s.PutReceipt(ctx, rc, []Block{{Data: []byte{0xa0}, Request: blocks[0].Request}}); err == nil {
		t.Error("PutReceipt took a block that is not one of the receipt's decisions")
	}
}

// TestPutBlocks: blocks of a held receipt, fetched for a lineage, are
// stored durably and read back; blocks that are not the receipt's, and
// blocks of a record that is no receipt or not held, are refused.
func TestPutBlocks(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sg := newSigner(t)
	a := sg.consent(t, "DE")
	rc, signed := sg.receiptOf(t, a, a)
	other, otherSigned := sg.receiptOf(t, sg.consent(t, "DE"))
	blocks, otherBlocks := blockData(signed), blockData(otherSigned)
	if _, err := s.PutMany(ctx, []*protocol.Record{a, rc}); err != nil { // a receipt as another node's arrives: alone
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		receipt cid.Cid
		blocks  [][]byte
	}{
		{"a block of another receipt", rc.CID(), otherBlocks},
		{"not a decision block", rc.CID(), [][]byte{{0xa0}}},
		{"a receipt not held", other.CID(), otherBlocks},
		{"not a receipt", a.CID(), blocks[:1]},
	} {
		if err := s.PutBlocks(ctx, c.receipt, c.blocks); err == nil {
			t.Errorf("%s: stored", c.name)
		}
	}
	body, _ := rc.Receipt()
	if _, err := s.GetBlock(body.Decisions[1].Cid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before PutBlocks: %v", err)
	}
	if err := s.PutBlocks(ctx, rc.CID(), blocks[1:]); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlocks(ctx, rc.CID(), blocks); err != nil { // one held already
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	defer s.Close()
	for i, l := range body.Decisions {
		if got, err := s.GetBlock(l.Cid); err != nil || string(got) != string(blocks[i]) {
			t.Errorf("decision %d: %v", i, err)
		}
	}
	if _, err := s.GetBlock(protocol.RecordCID(otherBlocks[0])); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused block is held: %v", err)
	}
}

// TestOpenRefusesReceiptsOfRevision1: a format-2 store with receipts is
// refused with ErrOldReceipts; one without is upgraded to format 3.
func TestOpenRefusesReceiptsOfRevision1(t *testing.T) {
	for _, receipts := range []int64{0, 2} {
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		sg := newSigner(t)
		if _, err := s.Put(context.Background(), sg.consent(t, "DE")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		setMeta(t, dir, 2, receipts)
		s, err = Open(Options{Dir: dir, Logger: testLogger(t)})
		switch {
		case receipts > 0 && !errors.Is(err, ErrOldReceipts):
			t.Errorf("a format-2 store with receipts: %v", err)
		case receipts == 0 && err != nil:
			t.Errorf("a format-2 store without receipts: %v", err)
		}
		if err == nil {
			s.view(func(txn *badger.Txn) error {
				if m, err := readMeta(txn); err != nil || m.version != formatVersion {
					t.Errorf("after the upgrade: version %d, %v", m.version, err)
				}
				return nil
			})
			s.Close()
		}
	}
}

// setMeta rewrites the meta of the closed store in dir as format version
// wrote it, with a receipt count.
func setMeta(t *testing.T, dir string, version byte, receipts int64) {
	t.Helper()
	db, err := badger.OpenManaged(badgerOptions(Options{Dir: dir, Logger: testLogger(t)}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ts := db.MaxVersion()
	txn := db.NewTransactionAt(ts, true)
	m, err := readMeta(txn)
	if err != nil {
		t.Fatal(err)
	}
	m.counts[receiptCode] = receipts
	b := m.marshal()
	b[0] = version
	if err := txn.Set(metaKey(), b); err != nil {
		t.Fatal(err)
	}
	if err := txn.CommitAt(ts+1, nil); err != nil {
		t.Fatal(err)
	}
}

func blockData(bs []Block) [][]byte {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		out[i] = b.Data
	}
	return out
}
