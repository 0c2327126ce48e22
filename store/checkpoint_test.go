package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
)

// putConsents puts n new records and returns the tree head after them.
func putConsents(t *testing.T, s *Store, sg *signer, n int) Tree {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := s.Put(context.Background(), sg.consent(t, "DE")); err != nil {
			t.Fatal(err)
		}
	}
	th, err := s.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func noteFor(th Tree) []byte {
	return fmt.Appendf(nil, "test\n%d\n%s\n\n— test sig\n", th.Size, th.Root)
}

func wantLastCheckpoint(t *testing.T, s *Store, want Checkpoint) {
	t.Helper()
	got, ok, err := s.LastCheckpoint()
	if err != nil || !ok {
		t.Fatalf("LastCheckpoint = %v, %v", ok, err)
	}
	if got.Size != want.Size || got.Root != want.Root || !bytes.Equal(got.Note, want.Note) {
		t.Fatalf("LastCheckpoint = %d %s %q; want %d %s %q", got.Size, got.Root, got.Note, want.Size, want.Root, want.Note)
	}
}

func TestCheckpointKeptAcrossReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() *Store {
		t.Helper()
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if _, ok, err := s.LastCheckpoint(); ok || err != nil {
		t.Fatalf("LastCheckpoint of a new store = %v, %v; want none", ok, err)
	}
	sg := newSigner(t)
	th := putConsents(t, s, sg, 3)
	first := Checkpoint{Size: th.Size, Root: th.Root, Note: noteFor(th)}
	if err := s.SaveCheckpoint(first); err != nil {
		t.Fatal(err)
	}
	wantLastCheckpoint(t, s, first)
	// The same checkpoint again changes nothing.
	if err := s.SaveCheckpoint(first); err != nil {
		t.Fatalf("saving the kept checkpoint again: %v", err)
	}
	s.Close()

	s = open()
	wantLastCheckpoint(t, s, first)
	th = putConsents(t, s, sg, 4)
	second := Checkpoint{Size: th.Size, Root: th.Root, Note: noteFor(th)}
	if err := s.SaveCheckpoint(second); err != nil {
		t.Fatal(err)
	}
	// Going back is refused, and the kept checkpoint stays.
	if err := s.SaveCheckpoint(first); !errors.Is(err, ErrCheckpointConflict) {
		t.Fatalf("saving an older checkpoint: %v, want ErrCheckpointConflict", err)
	}
	wantLastCheckpoint(t, s, second)
	// The same tree with another note (more cosignatures) replaces it.
	cosigned := second
	cosigned.Note = append(bytes.Clone(second.Note), "— witness sig\n"...)
	if err := s.SaveCheckpoint(cosigned); err != nil {
		t.Fatal(err)
	}
	wantLastCheckpoint(t, s, cosigned)
	s.Close()

	s = open()
	defer s.Close()
	wantLastCheckpoint(t, s, cosigned)
}

func TestSaveCheckpointChecksTheLog(t *testing.T) {
	t.Parallel()
	s := openMemory(t)
	defer s.Close()
	th := putConsents(t, s, newSigner(t), 5)
	older, err := s.TreeHash(3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cp   Checkpoint
	}{
		{"empty tree", Checkpoint{Size: 0, Note: []byte("n")}},
		{"beyond the log", Checkpoint{Size: th.Size + 1, Root: th.Root, Note: []byte("n")}},
		{"wrong root", Checkpoint{Size: th.Size, Root: older, Note: []byte("n")}},
		{"root of another size", Checkpoint{Size: 4, Root: older, Note: []byte("n")}},
	} {
		if err := s.SaveCheckpoint(tc.cp); !errors.Is(err, ErrCheckpointMismatch) {
			t.Errorf("%s: SaveCheckpoint = %v, want ErrCheckpointMismatch", tc.name, err)
		}
	}
	for _, note := range [][]byte{nil, make([]byte, protocol.MaxCheckpointNote+1)} {
		if err := s.SaveCheckpoint(Checkpoint{Size: th.Size, Root: th.Root, Note: note}); err == nil {
			t.Errorf("SaveCheckpoint took a note of %d bytes", len(note))
		}
	}
	if _, ok, err := s.LastCheckpoint(); ok || err != nil {
		t.Fatalf("after refusals: LastCheckpoint = %v, %v; want none", ok, err)
	}
	// A checkpoint of an older tree than the head is fine.
	if err := s.SaveCheckpoint(Checkpoint{Size: 3, Root: older, Note: []byte("n")}); err != nil {
		t.Fatal(err)
	}
}

// writeCheckpointValue writes the checkpoint key as SaveCheckpoint would
// but without its checks: a store tampered with.
func writeCheckpointValue(t *testing.T, s *Store, cp Checkpoint) {
	t.Helper()
	_, version, _, err := s.readCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	txn := s.db.NewTransactionAt(math.MaxUint64, true)
	defer txn.Discard()
	if err := txn.Set(checkpointKey(), cp.marshal()); err != nil {
		t.Fatal(err)
	}
	if err := txn.CommitAt(version+1, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLastCheckpointRefusesADisagreeingLog: a kept checkpoint whose tree
// the log does not have (a root that differs, a size the log lost) is an
// error, before and after reopening; the node refuses to start on it.
func TestLastCheckpointRefusesADisagreeingLog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		bend func(*Checkpoint)
	}{
		{"other root", func(cp *Checkpoint) { cp.Root[0] ^= 1 }},
		{"lost records", func(cp *Checkpoint) { cp.Size += 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			th := putConsents(t, s, newSigner(t), 4)
			cp := Checkpoint{Size: th.Size, Root: th.Root, Note: noteFor(th)}
			if err := s.SaveCheckpoint(cp); err != nil {
				t.Fatal(err)
			}
			tc.bend(&cp)
			writeCheckpointValue(t, s, cp)
			if _, _, err := s.LastCheckpoint(); !errors.Is(err, ErrCheckpointMismatch) {
				t.Fatalf("LastCheckpoint = %v, want ErrCheckpointMismatch", err)
			}
			s.Close()
			s, err = Open(Options{Dir: dir, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, _, err := s.LastCheckpoint(); !errors.Is(err, ErrCheckpointMismatch) {
				t.Fatalf("after reopen: LastCheckpoint = %v, want ErrCheckpointMismatch", err)
			}
		})
	}
}

// TestSaveCheckpointWhileWriting saves checkpoints of the growing log from
// several goroutines while records are put: the kept checkpoint is always
// one that was saved, never older than one saved before, and it survives
// a reopen.
func TestSaveCheckpointWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sg := newSigner(t)
	putConsents(t, s, sg, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	writers.Add(1)
	go func() {
		defer writers.Done()
		for ctx.Err() == nil {
			if _, err := s.Put(ctx, sg.consent(t, "DE")); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	}()
	var savers sync.WaitGroup
	var mu sync.Mutex
	var highest uint64
	for w := 0; w < 4; w++ {
		savers.Add(1)
		go func() {
			defer savers.Done()
			for i := 0; i < 25; i++ {
				th, err := s.TreeHead()
				if err != nil {
					t.Error(err)
					return
				}
				err = s.SaveCheckpoint(Checkpoint{Size: th.Size, Root: th.Root, Note: noteFor(th)})
				if err != nil && !errors.Is(err, ErrCheckpointConflict) {
					t.Error(err)
					return
				}
				saved := err == nil
				if saved {
					mu.Lock()
					highest = max(highest, th.Size)
					mu.Unlock()
				}
				kept, ok, err := s.LastCheckpoint()
				if err != nil || !ok {
					t.Errorf("LastCheckpoint = %v, %v", ok, err)
					return
				}
				// Another saver may have kept a newer one since, never an
				// older one.
				if saved && kept.Size < th.Size {
					t.Errorf("kept size %d after saving %d", kept.Size, th.Size)
				}
			}
		}()
	}
	savers.Wait()
	cancel()
	writers.Wait()
	kept, _, err := s.LastCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if kept.Size != highest {
		t.Fatalf("kept size %d, highest saved %d", kept.Size, highest)
	}
	s.Close()
	s, err = Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantLastCheckpoint(t, s, kept)
	// Compaction keeps the newest version of the key (its versions are
	// below the records' commit timestamps, and below the discard mark).
	s.db.SetDiscardTs(s.readTs.Load())
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	wantLastCheckpoint(t, s, kept)
	root, err := s.TreeHash(kept.Size)
	if err != nil {
		t.Fatal(err)
	}
	if root != kept.Root {
		t.Fatalf("kept root %s, tree %s", kept.Root, root)
	}
	if !bytes.Equal(kept.Note, noteFor(Tree{Size: kept.Size, Root: root})) {
		t.Fatalf("kept note %q does not belong to its tree", kept.Note)
	}
}

func TestCheckpointValueEncoding(t *testing.T) {
	t.Parallel()
	cp := Checkpoint{Size: 7, Root: tlog.RecordHash([]byte("x")), Note: []byte("note\n")}
	var got Checkpoint
	if err := got.unmarshal(cp.marshal()); err != nil {
		t.Fatal(err)
	}
	if got.Size != cp.Size || got.Root != cp.Root || !bytes.Equal(got.Note, cp.Note) {
		t.Fatalf("round trip: %+v, want %+v", got, cp)
	}
	good := cp.marshal()
	for _, bad := range [][]byte{nil, {checkpointFormat}, good[:41], append([]byte{2}, good[1:]...)} {
		if err := got.unmarshal(bad); err == nil {
			t.Errorf("unmarshal(%x) accepted a malformed value", bad)
		}
	}
}
