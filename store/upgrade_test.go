package store

import (
	"context"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
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

// TestUpgradeFromFormat1 opens stores in format 1, whole and half
// upgraded, and checks that Open rewrites them in format 2 with nothing
// lost: the same records, the same log, proofs that check, and a log that
// grows on as the reference does.
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
		want, err := s.TreeHead()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		downgrade(t, dir, from)

		s, err = Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("from %d: Open: %v", from, err)
		}
		if got, err := s.TreeHead(); err != nil || got != want {
			t.Fatalf("from %d: tree head %d %x, %v; want %d %x", from, got.Size, got.Root, err, want.Size, want.Root)
		}
		if s.Len() != n || s.Counts()[recs[0].Kind()] != n {
			t.Fatalf("from %d: %d records, counts %v", from, s.Len(), s.Counts())
		}
		leaves := leavesInSeqOrder(t, s)
		for seq := uint64(1); seq <= n; seq += 97 {
			p, err := s.InclusionProof(seq, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, n, want.Root, int64(seq-1), tlog.RecordHash(leaves[seq-1])); err != nil {
				t.Fatalf("from %d: inclusion of seq %d: %v", from, seq, err)
			}
		}
		if _, err := s.Put(context.Background(), recs[n]); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TreeHead(); err != nil || got.Root != referenceRoot(t, append(leaves, recs[n].CID().Bytes())) {
			t.Fatalf("from %d: the upgraded log does not grow as the reference: %v", from, err)
		}
		// No format-1 key is left, and the meta says format 2.
		err = s.view(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixHashV1}})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				t.Errorf("from %d: format-1 key %x left", from, it.Item().Key())
				break
			}
			m, err := readMeta(txn)
			if err == nil && m.version != formatVersion {
				t.Errorf("from %d: meta version %d", from, m.version)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}
