package negentropy

import (
	"fmt"
	"sync"
	"testing"
)

// The anchor (negentropy README, "Analysis"): two sets of 1M items
// differing by one reconcile in about 3 round trips and ~1 KB each way.

const benchItems = 1_000_000

// benchPair is a pair of vectors sharing benchItems items; the initiator
// holds onlyA more and the responder onlyB more.
type benchPair struct {
	a, b         *Vector
	onlyA, onlyB int
}

var (
	benchPairsOnce sync.Once
	benchPairs     map[string]benchPair
)

// pairs builds the 1M-item vectors once for all benchmarks: timestamps are
// seconds spread over a year, IDs random.
func pairs(b *testing.B) map[string]benchPair {
	benchPairsOnce.Do(func() {
		g := newItemGen(2026, 365*24*3600)
		common := g.items(benchItems)
		mk := func(onlyA, onlyB int) benchPair {
			a := append(append(make([]Item, 0, benchItems+onlyA), common...), g.items(onlyA)...)
			bb := append(append(make([]Item, 0, benchItems+onlyB), common...), g.items(onlyB)...)
			return benchPair{mustVector(b, a), mustVector(b, bb), onlyA, onlyB}
		}
		benchPairs = map[string]benchPair{
			"diff1":    mk(1, 0),
			"diff1000": mk(500, 500),
		}
	})
	return benchPairs
}

func benchmarkReconcile(b *testing.B, name string) {
	p := pairs(b)[name]
	for _, limit := range []int{0, 64 << 10, MinFrameSizeLimit} {
		b.Run(fmt.Sprintf("frame=%d", limit), func(b *testing.B) {
			var st sessionStats
			for b.Loop() {
				var have, need []ID
				have, need, st = reconcileInMemory(b, p.a, p.b, limit, limit)
				if len(have) != p.onlyA || len(need) != p.onlyB {
					b.Fatalf("have %d, need %d; want %d, %d", len(have), len(need), p.onlyA, p.onlyB)
				}
			}
			b.ReportMetric(float64(st.roundTrips), "round-trips")
			b.ReportMetric(float64(st.initiatorBytes), "initiator-bytes")
			b.ReportMetric(float64(st.responderBytes), "responder-bytes")
		})
	}
}

// BenchmarkReconcile1MDiff1: 1M shared items, the initiator holds one more.
func BenchmarkReconcile1MDiff1(b *testing.B) { benchmarkReconcile(b, "diff1") }

// BenchmarkReconcile1MDiff1000: 1M shared items, each side holds 500 the
// other lacks.
func BenchmarkReconcile1MDiff1000(b *testing.B) { benchmarkReconcile(b, "diff1000") }

func BenchmarkNewVector100k(b *testing.B) {
	items := newItemGen(1, 1e7).items(100_000)
	for b.Loop() {
		if _, err := NewVector(items); err != nil {
			b.Fatal(err)
		}
	}
}
