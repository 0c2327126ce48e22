package store

import (
	"context"
	"maps"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// The baseline writes, for the same records, the keys the store writes:
// as many under each prefix, and record values of the same bytes.
func TestBaselineWritesWhatTheStoreWrites(t *testing.T) {
	t.Parallel()
	recs := manyRecords(t, 600)
	ctx := context.Background()
	s, err := Open(Options{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PutMany(ctx, recs); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBaseline(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	count := func(db *badger.DB, readTs uint64) (map[byte]int, int) {
		keys, recordBytes := map[byte]int{}, 0
		txn := db.NewTransactionAt(readTs, false)
		defer txn.Discard()
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			keys[k[0]]++
			if k[0] == prefixRecord {
				recordBytes += int(it.Item().ValueSize())
			}
		}
		return keys, recordBytes
	}
	storeKeys, storeBytes := count(s.db, s.readTs.Load())
	delete(storeKeys, prefixMeta) // the store's own bookkeeping
	bareKeys, bareBytes := count(b.db, b.seq.Load())
	if !maps.Equal(storeKeys, bareKeys) || storeBytes != bareBytes {
		t.Fatalf("the baseline wrote keys %v and %d bytes of records; the store %v and %d", bareKeys, bareBytes, storeKeys, storeBytes)
	}
	if storeKeys[prefixRecord] != len(recs) {
		t.Fatalf("%d record keys for %d records", storeKeys[prefixRecord], len(recs))
	}
}
