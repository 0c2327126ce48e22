package store

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// putAll puts recs from 64 goroutines and returns the time it took.
func putAll(b *testing.B, s *Store, recs []*protocol.Record) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(recs)); i = next.Add(1) - 1 {
				if _, err := s.Put(context.Background(), recs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkLogCost: the store's write path with the Merkle log against the
// same path without it, in the same run (64 concurrent callers, synced):
// what appending to the log costs. Target (issue 5): with ≥ 0.9 × without.
func BenchmarkLogCost(b *testing.B) {
	recs := benchRecords(b, max(b.N, 20000))
	var with, without time.Duration
	for round := 0; round < 2; round++ { // alternate, so drift hits both
		for _, noLog := range []bool{false, true} {
			s, err := Open(Options{Dir: b.TempDir(), withoutLog: noLog})
			if err != nil {
				b.Fatal(err)
			}
			d := putAll(b, s, recs)
			s.Close()
			if noLog {
				without += d
			} else {
				with += d
			}
		}
	}
	n := float64(2 * len(recs))
	b.ReportMetric(n/with.Seconds(), "with-log-records/s")
	b.ReportMetric(n/without.Seconds(), "without-log-records/s")
	b.ReportMetric(without.Seconds()/with.Seconds(), "with/without")
	b.ReportMetric(float64(with-without)/n/1e3, "log-µs/record")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkInclusionProof: inclusion proofs per second in a log of 100 000
// records, for random leaves, on every core.
func BenchmarkInclusionProof(b *testing.B) {
	const n = 100_000
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	putAll(b, s, benchRecords(b, n))
	head, err := s.TreeHead()
	if err != nil || head.Size != n {
		b.Fatalf("tree %+v, %v", head, err)
	}
	b.SetParallelism(1)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.InclusionProof(uint64(rand.IntN(n))+1, head.Size); err != nil {
				b.Error(err)
				return
			}
		}
	})
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "proofs/s")
	b.ReportMetric(rate/float64(runtime.GOMAXPROCS(0)), "proofs/s/core")
}
