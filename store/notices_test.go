package store

import (
	"testing"

	"github.com/entente-net/entente/protocol"
)

// TestNotices: notices are numbered in sequence, durably and across a
// reopen, listed by recipient after a seq; a decision's first delivery
// is kept and not moved by a later one.
func TestNotices(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := protocol.RecordCID([]byte("a receipt"))
	ref := DecisionRef{Receipt: r.String(), Item: 3}
	for i, who := range []string{"p1", "p2", "p1"} {
		seq, err := s.PutNotice(Notice{Event: "consent-revoked", Recipient: who, Decisions: []DecisionRef{ref}})
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("notice %d: seq %d, %v", i, seq, err)
		}
	}
	s = reopen(t, s, dir)
	defer s.Close()
	if seq, err := s.PutNotice(Notice{Recipient: "p2"}); err != nil || seq != 4 {
		t.Fatalf("after a reopen: seq %d, %v; want 4", seq, err)
	}
	got, err := s.Notices("p1", 0, 10)
	if err != nil || len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 || got[0].Decisions[0] != ref {
		t.Errorf("p1's notices: %+v, %v", got, err)
	}
	if got, _ := s.Notices("", 2, 10); len(got) != 2 || got[0].Seq != 3 {
		t.Errorf("every notice after 2: %+v", got)
	}
	if _, ok, _ := s.NotifiedAt(r, 3); ok {
		t.Error("notified before any delivery")
	}
	if err := s.MarkNotified([]DecisionRef{ref}, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNotified([]DecisionRef{ref}, 200); err != nil {
		t.Fatal(err)
	}
	if at, ok, err := s.NotifiedAt(r, 3); err != nil || !ok || at != 100 {
		t.Errorf("first delivery: %d %v %v; want 100", at, ok, err)
	}
}
