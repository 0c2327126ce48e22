package store

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/entente-net/entente/protocol"
)

// TestPipelineReadYourWrites: under many concurrent puts, with commits in
// flight all the time, every Put that returns has a record every reader
// can see, and duplicates of records in flight get the same seq.
func TestPipelineReadYourWrites(t *testing.T) {
	t.Parallel()
	s := openDisk(t)
	defer s.Close()
	sg := newSigner(t)
	const n = 600
	recs := make([]*protocol.Record, n)
	for i := range recs {
		recs[i] = sg.consent(t, "DE")
	}
	ctx := context.Background()
	seqs := make([][]uint64, n) // each record put twice, concurrently
	for i := range seqs {
		seqs[i] = make([]uint64, 2)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for copyIdx := 0; copyIdx < 2; copyIdx++ {
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 32 {
					res, err := s.Put(ctx, recs[i])
					if err != nil {
						errs <- err
						return
					}
					seqs[i][copyIdx] = res.Seq
					// Acknowledged means visible.
					got, err := s.Get(recs[i].CID())
					if err != nil || got.CID() != recs[i].CID() {
						errs <- err
						return
					}
					if seq, err := s.Seq(recs[i].CID()); err != nil || seq != res.Seq {
						t.Errorf("record %d: Put said seq %d, Seq says %d (%v)", i, res.Seq, seq, err)
					}
					if s.Len() < res.Seq {
						t.Errorf("record %d: Len %d below its acknowledged seq %d", i, s.Len(), res.Seq)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for i, pair := range seqs {
		if pair[0] != pair[1] {
			t.Errorf("record %d stored under two seqs: %v", i, pair)
		}
		if seen[pair[0]] {
			t.Errorf("seq %d given to two records", pair[0])
		}
		seen[pair[0]] = true
	}
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d (no duplicates, none lost)", s.Len(), n)
	}
	for seq := uint64(1); seq <= n; seq++ {
		if !seen[seq] {
			t.Fatalf("seq %d missing: seqs are not dense", seq)
		}
	}
}

// TestPutNewStillDeduplicates: PutNew skips the lookup, not the writer's
// duplicate check.
func TestPutNewStillDeduplicates(t *testing.T) {
	t.Parallel()
	s := openMemory(t)
	defer s.Close()
	r := newSigner(t).consent(t, "DE")
	_, absent, err := s.Lookup(r.CID())
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup of a record not held: %v", err)
	}
	first, err := s.PutNew(context.Background(), r, absent)
	if err != nil || !first.New {
		t.Fatalf("first PutNew: %+v, %v", first, err)
	}
	again, err := s.PutNew(context.Background(), r, absent) // the absence is stale now
	if err != nil || again.New || again.Seq != first.Seq || s.Len() != 1 {
		t.Fatalf("second PutNew: %+v, %v, Len %d; want the same seq, not new", again, err, s.Len())
	}
}

// TestPutNewAbsence: with an Absence from Lookup the writer skips its own
// read of the record when it remembers every commit since, and reads it
// when it does not; either way a record put in between is a duplicate,
// with its seq, and nothing is stored twice.
func TestPutNewAbsence(t *testing.T) {
	t.Parallel()
	const remembered = 8
	s, err := Open(Options{InMemory: true, Logger: testLogger(t), recentRecords: remembered})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sg := newSigner(t)
	lookup := func(r *protocol.Record) Absence {
		t.Helper()
		_, absent, err := s.Lookup(r.CID())
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup of a record not held: %v", err)
		}
		return absent
	}
	putOthers := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := s.Put(ctx, sg.consent(t, "DE")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		others int // records committed after the duplicate, before PutNew
	}{
		{"remembered", 0},
		{"remembered, with others since", remembered / 2},
		{"forgotten", 3 * remembered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sg.consent(t, "DE")
			absent := lookup(r)
			first, err := s.Put(ctx, r) // another ingest of r wins the race
			if err != nil || !first.New {
				t.Fatalf("Put: %+v, %v", first, err)
			}
			putOthers(tc.others)
			before := s.Len()
			again, err := s.PutNew(ctx, r, absent)
			if err != nil || again.New || again.Seq != first.Seq || s.Len() != before {
				t.Fatalf("PutNew after the record was stored: %+v, %v (Len %d, was %d); want seq %d, not new", again, err, s.Len(), before, first.Seq)
			}
		})
	}

	// A fresh record with its absence is stored once, also when many
	// callers race with the same one, and with an absence of another
	// record (which counts for nothing).
	r := sg.consent(t, "DE")
	absent, otherAbsent := lookup(r), lookup(sg.consent(t, "FR"))
	var wg sync.WaitGroup
	results := make([]PutResult, 16)
	for i := range results {
		wg.Go(func() {
			a := absent
			if i%2 == 1 {
				a = otherAbsent
			}
			res, err := s.PutNew(ctx, r, a)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	news := 0
	for _, res := range results {
		if res.New {
			news++
		}
		if res.Seq != results[0].Seq {
			t.Fatalf("racing PutNews got seqs %d and %d", results[0].Seq, res.Seq)
		}
	}
	if news != 1 {
		t.Fatalf("%d of the racing PutNews stored the record, want 1", news)
	}
}
