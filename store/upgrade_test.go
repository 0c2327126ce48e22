package store

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
)

// downgrade rewrites the store in dir, closed, as format 1 wrote it, from
// record from on: those records' log hashes go back under h keys of their
// own, and the meta says format 1. Records before from keep the format-2
// layout, as an upgrade cut short by a crash leaves them.
func downgrade(t *testing.T, dir string, from uint64) {
	t.Helper()
	db, err := badger.OpenManaged(badgerOptions(Options{Dir: dir, Logger: testLogger(t)}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ts := db.MaxVersion()
	var m meta
	err = func() error {
		txn := db.NewTransactionAt(ts, false)
		defer txn.Discard()
		m, err = readMeta(txn)
		return err
	}()
	if err != nil {
		t.Fatal(err)
	}
	// In transactions of 1 000 records, the last with the format-1 meta.
	for seq := from; ; {
		txn := db.NewTransactionAt(ts, true)
		for end := min(seq+1000, m.seq+1); seq < end; seq++ {
			item, err := txn.Get(seqKey(seq))
			if err != nil {
				t.Fatal(err)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				t.Fatal(err)
			}
			c, hashes, err := splitSeqValue(v)
			if err != nil {
				t.Fatal(err)
			}
			base := tlog.StoredHashIndex(0, int64(seq-1))
			for i := 0; i < len(hashes)/len(tlog.Hash{}); i++ {
				if err := txn.Set(hashKeyV1(base+int64(i)), hashes[i*32:(i+1)*32]); err != nil {
					t.Fatal(err)
				}
			}
			if err := txn.Set(seqKey(seq), c.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		if seq > m.seq {
			b := m.marshal()
			b[0] = 1
			if err := txn.Set(metaKey(), b); err != nil {
				t.Fatal(err)
			}
		}
		ts++
		if err := txn.CommitAt(ts, nil); err != nil {
			t.Fatal(err)
		}
		if seq > m.seq {
			break
		}
	}
}

// upgradeWant is what an upgrade must leave as it found it: the log's
// tree head, its leaves (binary CIDs) in seq order, and the counts per kind.
type upgradeWant struct {
	tree   Tree
	leaves [][]byte
	counts map[protocol.Kind]int64
}

// wantOf reads what s holds, before a downgrade.
func wantOf(t *testing.T, s *Store) upgradeWant {
	t.Helper()
	tree, err := s.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	return upgradeWant{tree: tree, leaves: leavesInSeqOrder(t, s), counts: s.Counts()}
}

// checkUpgraded checks that s, which Open has just upgraded, holds what
// want describes, in the current format: the same tree head, the same
// records in the same order with the same counts, inclusion proofs that
// verify, no format-1 key, the meta at formatVersion; and that putting
// next (a record s does not hold) grows the log as the reference does.
func checkUpgraded(t *testing.T, label string, s *Store, want upgradeWant, next *protocol.Record) {
	t.Helper()
	n := want.tree.Size
	if got, err := s.TreeHead(); err != nil || got != want.tree {
		t.Fatalf("%s: tree head %d %x, %v; want %d %x", label, got.Size, got.Root, err, n, want.tree.Root)
	}
	if s.Len() != n || !maps.Equal(s.Counts(), want.counts) {
		t.Fatalf("%s: %d records, counts %v; want %d, %v", label, s.Len(), s.Counts(), n, want.counts)
	}
	leaves := leavesInSeqOrder(t, s)
	if uint64(len(leaves)) != n || len(want.leaves) != len(leaves) {
		t.Fatalf("%s: %d records listed, %d before; want %d", label, len(leaves), len(want.leaves), n)
	}
	for i := range leaves {
		if !bytes.Equal(leaves[i], want.leaves[i]) {
			t.Fatalf("%s: seq %d is %x, was %x", label, i+1, leaves[i], want.leaves[i])
		}
	}
	for seq := uint64(1); seq <= n; seq += 97 {
		p, err := s.InclusionProof(seq, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, int64(n), want.tree.Root, int64(seq-1), tlog.RecordHash(leaves[seq-1])); err != nil {
			t.Fatalf("%s: inclusion of seq %d: %v", label, seq, err)
		}
	}
	// No format-1 key is left, and the meta says the current format.
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixHashV1}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			t.Errorf("%s: format-1 key %x left", label, it.Item().Key())
			break
		}
		m, err := readMeta(txn)
		if err == nil && m.version != formatVersion {
			t.Errorf("%s: meta version %d, want %d", label, m.version, formatVersion)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TreeHead(); err != nil || got.Size != n+1 || got.Root != referenceRoot(t, append(leaves, next.CID().Bytes())) {
		t.Fatalf("%s: the upgraded log does not grow as the reference: %v", label, err)
	}
}

// TestUpgradeFromFormat1 opens stores in format 1, whole and half
// upgraded, and checks that Open rewrites them in the current format with
// nothing lost (checkUpgraded): the same records, the same log, proofs
// that check, and a log that grows on as the reference does.
func TestUpgradeFromFormat1(t *testing.T) {
	t.Parallel()
	const n = 2*upgradeBatch + 300 // three upgrade transactions
	recs := manyRecords(t, n+1)
	for _, from := range []uint64{1, upgradeBatch + 17} {
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutMany(context.Background(), recs[:n]); err != nil {
			t.Fatal(err)
		}
		want := wantOf(t, s)
		s.Close()
		downgrade(t, dir, from)

		s, err = Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("from %d: Open: %v", from, err)
		}
		checkUpgraded(t, fmt.Sprintf("from %d", from), s, want, recs[n])
		s.Close()
	}
}
