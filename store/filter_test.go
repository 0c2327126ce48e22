package store

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/entente-net/entente/protocol"
)

// TestHeldFilter: the filter never loses a CID it was given, across the
// layers it grows, and says "maybe" for few of the others.
func TestHeldFilter(t *testing.T) {
	f := newHeldFilter(0)
	cidOf := func(i int) []byte { return binary.BigEndian.AppendUint64([]byte("filter test "), uint64(i)) }
	const n = 3 * minFilterCapacity // three layers
	for i := 0; i < n; i++ {
		f.add(protocol.RecordCID(cidOf(i)))
	}
	if got := len(*f.layers.Load()); got < 2 {
		t.Fatalf("%d records in %d layer(s): the filter did not grow", n, got)
	}
	for i := 0; i < n; i++ {
		if !f.mayHold(protocol.RecordCID(cidOf(i))) {
			t.Fatalf("record %d was added but the filter says it is not held", i)
		}
	}
	maybe := 0
	for i := n; i < 2*n; i++ {
		if f.mayHold(protocol.RecordCID(cidOf(i))) {
			maybe++
		}
	}
	if rate := float64(maybe) / n; rate > 0.03 {
		t.Fatalf("the filter says maybe for %.1f%% of records never added", 100*rate)
	}
}

// TestLookupAfterReopen: a reopened store finds every record it held (its
// filter is rebuilt from the record keys), and not the ones it never had.
func TestLookupAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sg := newSigner(t)
	var recs []*protocol.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, sg.consent(t, "DE"))
	}
	if _, err := s.PutMany(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir)
	defer s.Close()
	for i, r := range recs {
		if seq, _, err := s.Lookup(r.CID()); err != nil || seq != uint64(i+1) {
			t.Fatalf("record %d after reopening: seq %d, %v", i, seq, err)
		}
	}
	if _, _, err := s.Lookup(sg.consent(t, "DE").CID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a record never put: %v, want ErrNotFound", err)
	}
}
