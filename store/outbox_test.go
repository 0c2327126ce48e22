package store

import (
	"bytes"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

// TestOutboxSurvivesReopen: entries are kept, replaced, acknowledged and
// deleted durably, across a reopen; an entry put again after its deletion
// is seen (a write is never hidden below a tombstone); outbox keys are not
// records.
func TestOutboxSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	a, b := protocol.RecordCID([]byte("a")), protocol.RecordCID([]byte("b"))
	p1, p2 := testPeer(t), testPeer(t)
	for _, e := range []OutboxEntry{
		{Record: a, Peer: p1, Jurisdiction: "FR", Added: 1},
		{Record: a, Peer: p2, Jurisdiction: "DE", Added: 1},
		{Record: b, Peer: p1, Jurisdiction: "FR", Added: 2},
	} {
		if err := s.PutOutbox(e); err != nil {
			t.Fatal(err)
		}
	}
	// Two failed attempts, then the acknowledgement.
	if err := s.PutOutbox(OutboxEntry{Record: a, Peer: p1, Jurisdiction: "FR", Added: 1, Attempts: 2}); err != nil {
		t.Fatal(err)
	}
	ack := bytes.Repeat([]byte{7}, 64)
	if err := s.PutOutbox(OutboxEntry{Record: a, Peer: p1, Jurisdiction: "FR", Added: 1, Attempts: 3, AckedAt: 9, Ack: ack}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOutbox(b, p1); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	list, err := s.ListOutbox()
	if err != nil || len(list) != 2 {
		t.Fatalf("outbox after reopen: %+v, %v", list, err)
	}
	byPeer := map[peer.ID]OutboxEntry{}
	for _, e := range list {
		if !e.Record.Equals(a) {
			t.Errorf("entry of %s kept after its deletion", e.Record)
		}
		byPeer[e.Peer] = e
	}
	if e := byPeer[p1]; !e.Acked() || e.Attempts != 3 || e.AckedAt != 9 || !bytes.Equal(e.Ack, ack) || e.Jurisdiction != "FR" {
		t.Errorf("acknowledged entry read back as %+v", e)
	}
	if e := byPeer[p2]; e.Acked() || e.Jurisdiction != "DE" || e.Added != 1 {
		t.Errorf("pending entry read back as %+v", e)
	}
	// Put again after a deletion: visible, now and after a reopen.
	if err := s.PutOutbox(OutboxEntry{Record: b, Peer: p1, Jurisdiction: "FR", Added: 5}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	defer s.Close()
	if list, err := s.ListOutbox(); err != nil || len(list) != 3 {
		t.Fatalf("outbox after putting a deleted entry again: %+v, %v", list, err)
	}
	if s.Len() != 0 {
		t.Fatalf("outbox keys counted as records: %d", s.Len())
	}
	if err := s.PutOutbox(OutboxEntry{Record: a}); err == nil {
		t.Error("an entry without a peer was kept")
	}
}

func testPeer(t *testing.T) peer.ID {
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPutOutboxes: entries put together are durable together, over a
// deletion of one of them before, and refused together when one is bad.
func TestPutOutboxes(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	a, b := protocol.RecordCID([]byte("a")), protocol.RecordCID([]byte("b"))
	p1, p2 := testPeer(t), testPeer(t)
	if err := s.PutOutbox(OutboxEntry{Record: a, Peer: p1, Jurisdiction: "FR", Added: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOutbox(a, p1); err != nil {
		t.Fatal(err)
	}
	es := []OutboxEntry{{Record: a, Peer: p1, Jurisdiction: "FR", Added: 2}, {Record: a, Peer: p2, Jurisdiction: "BR", Added: 2}, {Record: b, Peer: p1, Jurisdiction: "FR", Added: 2}}
	if err := s.PutOutboxes(es); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOutboxes([]OutboxEntry{{Record: b, Peer: p2, Jurisdiction: "BR"}, {Record: b}}); err == nil {
		t.Error("a batch with an entry without a peer was kept")
	}
	s = reopen(t, s, dir)
	defer s.Close()
	got, err := s.ListOutbox()
	if err != nil || len(got) != 3 {
		t.Fatalf("after a reopen: %d entries, %v; want the 3 put together", len(got), err)
	}
	for _, e := range got {
		if e.Added != 2 {
			t.Errorf("entry %+v: not the one put together", e)
		}
	}
}
