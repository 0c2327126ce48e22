package store

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/entente-net/entente/protocol"
)

// benchPool holds signed records shared by the benchmarks (each run puts
// them into a fresh store), so that signing is paid once per process.
var benchPool struct {
	sync.Mutex
	recs []*protocol.Record
}

func benchRecords(b *testing.B, n int) []*protocol.Record {
	benchPool.Lock()
	defer benchPool.Unlock()
	if more := n - len(benchPool.recs); more > 0 {
		benchPool.recs = append(benchPool.recs, manyRecords(b, more)...)
	}
	return benchPool.recs[:n]
}

func benchStore(b *testing.B) *Store {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPutSequential is one caller putting records one at a time: each
// Put waits for its own fsync, so this is the floor.
func BenchmarkPutSequential(b *testing.B) {
	recs := benchRecords(b, b.N)
	s := benchStore(b)
	defer s.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Put(ctx, recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b)
}

// BenchmarkPutParallel is 64 callers putting at once, as many ingest
// streams do: group commit lets them share fsyncs.
func BenchmarkPutParallel(b *testing.B) {
	recs := benchRecords(b, b.N)
	s := benchStore(b)
	defer s.Close()
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Put(ctx, recs[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b)
	st := s.WriteStats()
	b.ReportMetric(float64(st.Written)/float64(st.Txns), "records/commit")
}

// BenchmarkBadgerBareSyncedWrite is the baseline: Badger, configured as the
// store configures it, writing one record per synced transaction, without
// indexes. PutParallel's records/s over this one's is the group commit's
// gain.
func BenchmarkBadgerBareSyncedWrite(b *testing.B) {
	recs := benchRecords(b, b.N)
	db, err := badger.Open(badgerOptions(Options{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)}))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ResetTimer()
	for i := range b.N {
		r := recs[i]
		if err := db.Update(func(txn *badger.Txn) error {
			return txn.Set(recordKey(r.CID()), r.Bytes())
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b)
}

// BenchmarkGet reads accreditations back, as the node does on every
// ingest: from the cache, and from Badger (decoding each time).
func BenchmarkGet(b *testing.B) {
	recs := benchRecords(b, 1000)
	for _, tc := range []struct {
		name  string
		cache int64
	}{{"cached", DefaultCacheBytes}, {"uncached", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			s := benchStore(b)
			defer s.Close()
			if _, err := s.PutMany(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
			s.cache = newRecordCache(tc.cache)
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Get(recs[i%len(recs)].CID()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
