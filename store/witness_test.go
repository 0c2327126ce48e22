package store

import (
	"bytes"
	"testing"
)

func TestWitnessStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st := WitnessState{Peer: "12D3KooWpeer", Size: 3, Note: []byte("note a"), At: 1}
	st.Root[0] = 7
	if err := s.SaveWitnessState(st); err != nil {
		t.Fatal(err)
	}
	st.Size, st.Note = 5, []byte("note b")
	if err := s.SaveWitnessState(st); err != nil {
		t.Fatal(err)
	}
	ev := WitnessEvidence{Peer: "12D3KooWpeer", Size: 5, Kind: "same-size", Notes: [][]byte{[]byte("x"), []byte("y")}}
	if err := s.SaveWitnessEvidence(ev); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	defer s.Close()
	states, err := s.WitnessStates()
	if err != nil || len(states) != 1 || states[0].Size != 5 || states[0].Root != st.Root || !bytes.Equal(states[0].Note, []byte("note b")) {
		t.Fatalf("states %+v, %v", states, err)
	}
	evs, err := s.WitnessEvidences()
	if err != nil || len(evs) != 1 || evs[0].Size != 5 || len(evs[0].Notes) != 2 {
		t.Fatalf("evidence %+v, %v", evs, err)
	}
	if s.Len() != 0 {
		t.Fatalf("witness keys counted as records: %d", s.Len())
	}
}
