package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/entente-net/entente/protocol"
)

// Baseline is bare Badger, opened with the store's options, that writes
// what the store writes for a record — its bytes under its CID, a seq key
// with a log hash's worth of bytes, and the same index keys — and nothing
// else: no checks, no log, no counters, no pipeline of ours. Its rate of
// synced writes is the disk's limit for ingest (DESIGN.md §10), which
// benchmarks measure in the same run as the node.
type Baseline struct {
	db  *badger.DB
	seq atomic.Uint64
}

// Baseline commits: transactions of baselineBatch records (the store's
// largest group commit), baselineInFlight of them at a time, which
// Badger's write loop syncs together. Of the batches (64, 256, 1024) and
// depths (1, 4, 16, 64) tried, these wrote fastest (docs/performance.md).
const (
	baselineBatch    = DefaultMaxBatch
	baselineInFlight = 16
)

// OpenBaseline opens (creating) a bare Badger in dir, which must not hold a
// store.
func OpenBaseline(dir string) (*Baseline, error) {
	db, err := badger.OpenManaged(badgerOptions(Options{Dir: dir}).WithLogger(nil))
	if err != nil {
		return nil, fmt.Errorf("store: baseline: open %s: %w", dir, err)
	}
	return &Baseline{db: db}, nil
}

// Write writes recs, durably, and returns once all of it is synced.
func (b *Baseline) Write(ctx context.Context, recs []*protocol.Record) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range baselineInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(int64(baselineBatch))) - baselineBatch
				if start >= len(recs) || ctx.Err() != nil {
					return
				}
				if err := b.commit(recs[start:min(start+baselineBatch, len(recs))]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// commit writes one transaction of recs, as the store's writer does
// (appendRecordEntries).
func (b *Baseline) commit(recs []*protocol.Record) error {
	last := b.seq.Add(uint64(len(recs)))
	txn := b.db.NewTransactionAt(last, true)
	defer txn.Discard()
	hash := make([]byte, 64) // a leaf adds two hashes to the log on average
	for i, r := range recs {
		seq := last - uint64(len(recs)) + uint64(i) + 1
		idx, err := indexKeys(r, seq, nil)
		if err != nil {
			return err
		}
		if err := txn.Set(recordKey(r.CID()), recordValue(seq, r)); err != nil {
			return err
		}
		if err := txn.Set(seqKey(seq), append(r.CID().Bytes(), hash...)); err != nil {
			return err
		}
		for _, k := range idx {
			if err := txn.Set(k, nil); err != nil {
				return err
			}
		}
	}
	return txn.CommitAt(last, nil)
}

// Close closes the database.
func (b *Baseline) Close() error { return b.db.Close() }
