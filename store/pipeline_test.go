package store

import (
	"context"
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
	first, err := s.PutNew(context.Background(), r)
	if err != nil || !first.New {
		t.Fatalf("first PutNew: %+v, %v", first, err)
	}
	again, err := s.PutNew(context.Background(), r)
	if err != nil || again.New || again.Seq != first.Seq || s.Len() != 1 {
		t.Fatalf("second PutNew: %+v, %v, Len %d; want the same seq, not new", again, err, s.Len())
	}
}
