package store

import (
	"context"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is an independent in-memory tlog: the reference the store's
// log is checked against.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

func referenceRoot(t *testing.T, leaves [][]byte) tlog.Hash {
	t.Helper()
	var m memHashes
	for n, leaf := range leaves {
		hs, err := tlog.StoredHashes(int64(n), leaf, m)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, hs...)
	}
	root, err := tlog.TreeHash(int64(len(leaves)), m)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// leavesInSeqOrder lists the binary CIDs of the store's records by seq.
func leavesInSeqOrder(t *testing.T, s *Store) [][]byte {
	t.Helper()
	var leaves [][]byte
	q := Query{Limit: MaxListLimit}
	for {
		entries, next, err := s.List(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if int(e.Seq) != len(leaves)+1 {
				t.Fatalf("seq %d after %d leaves", e.Seq, len(leaves))
			}
			leaves = append(leaves, e.Record.CID().Bytes())
		}
		if next == 0 {
			return leaves
		}
		q.After = next
	}
}

func TestLogMatchesReferenceAndProves(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if th, err := s.TreeHead(); err != nil || th.Size != 0 {
		t.Fatalf("empty store: tree %+v, %v", th, err)
	}
	sg := newSigner(t)
	put := func(n int) {
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n/16; i++ {
					if _, err := s.Put(context.Background(), sg.consent(t, "DE")); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	put(320)
	old, err := s.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	if old.Size != 320 || old.Root != referenceRoot(t, leavesInSeqOrder(t, s)) {
		t.Fatalf("tree %d %x does not match the reference over the records in seq order", old.Size, old.Root)
	}
	// Reopen (as after a crash or restart) and keep appending.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(Options{Dir: dir, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(160)
	head, err := s.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	leaves := leavesInSeqOrder(t, s)
	if head.Size != 480 || head.Root != referenceRoot(t, leaves) {
		t.Fatalf("after reopen: tree %d does not match the reference", head.Size)
	}
	// Consistency from the old head to the new one, checked with tlog.
	tp, err := s.ConsistencyProof(old.Size, head.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(tp, int64(head.Size), head.Root, int64(old.Size), old.Root); err != nil {
		t.Fatalf("consistency proof %d -> %d: %v", old.Size, head.Size, err)
	}
	// Inclusion of every 37th record in the new tree and in the old one.
	for seq := uint64(1); seq <= head.Size; seq += 37 {
		for _, tree := range []Tree{old, head} {
			if seq > tree.Size {
				continue
			}
			p, err := s.InclusionProof(seq, tree.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, int64(tree.Size), tree.Root, int64(seq-1), tlog.RecordHash(leaves[seq-1])); err != nil {
				t.Fatalf("inclusion of seq %d in tree %d: %v", seq, tree.Size, err)
			}
			// A proof does not hold for another leaf.
			if seq > 1 {
				if tlog.CheckRecord(p, int64(tree.Size), tree.Root, int64(seq-1), tlog.RecordHash(leaves[seq-2])) == nil {
					t.Fatalf("proof for seq %d also proves seq %d", seq, seq-1)
				}
			}
		}
	}
	if _, err := s.InclusionProof(head.Size+1, head.Size); err == nil {
		t.Error("inclusion proof beyond the tree")
	}
	if _, err := s.ConsistencyProof(1, head.Size+1); err == nil {
		t.Error("consistency proof to a tree larger than the log")
	}
	if h, err := s.TreeHash(old.Size); err != nil || h != old.Root {
		t.Errorf("TreeHash(%d) = %x, %v; want the old root", old.Size, h, err)
	}
	// A duplicate put adds no leaf.
	r := sg.consent(t, "FR")
	for i := 0; i < 2; i++ {
		if _, err := s.Put(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if th, _ := s.TreeHead(); th.Size != head.Size+1 {
		t.Fatalf("after one new record put twice: size %d, want %d", th.Size, head.Size+1)
	}
}

// TestTreeHeadAtEverySize appends one record at a time, reopening the
// store at sizes whose right edge has one or many levels, and checks the
// writer's tree head after every append, and the tree hash of every
// smaller size read back from disk, against the reference.
func TestTreeHeadAtEverySize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	sg := newSigner(t)
	var leaves [][]byte
	for n := 1; n <= 70; n++ {
		r := sg.consent(t, "DE")
		if _, err := s.Put(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, r.CID().Bytes())
		switch n {
		case 1, 2, 3, 7, 8, 33, 64:
			s = reopen(t, s, dir)
		}
		head, err := s.TreeHead()
		if err != nil || head.Size != uint64(n) || head.Root != referenceRoot(t, leaves) {
			t.Fatalf("after %d records: tree %d %x, %v; want the reference", n, head.Size, head.Root, err)
		}
	}
	for size := 1; size <= len(leaves); size++ {
		if h, err := s.TreeHash(uint64(size)); err != nil || h != referenceRoot(t, leaves[:size]) {
			t.Fatalf("TreeHash(%d) = %x, %v; want the reference", size, h, err)
		}
	}
}
