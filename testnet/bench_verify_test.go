package testnet

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// BenchmarkDecide: transfer decisions per second in process, warm (rule
// programs compiled, records cached), on every core; reported per core.
func BenchmarkDecide(b *testing.B) {
	w := newTransferWorld(b, Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}})
	m := w.Net.Nodes[0]
	req := w.Request
	req.At = time.Now().UnixMilli()
	if d, err := m.Services().Verify.Decide(req); err != nil || d.Verdict != protocol.VerdictAllow {
		b.Fatalf("warm-up: %v %+v", err, d)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Services().Verify.Decide(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "decisions/s")
	b.ReportMetric(rate/float64(runtime.GOMAXPROCS(0)), "decisions/s/core")
}

// BenchmarkVerifyHTTP: POST /v1/transfers/verify from 32 concurrent
// clients — each answer a decision, a receipt signed and stored durably —
// against a bare handler in the same run that does the same HTTP, JSON
// and store reads, one signature and one durable write, without deciding
// (MeasureVerify). Target: verify/bare >= 0.8. Then verify-batch, 64
// requests a call: one receipt per call. Target: batch/single >= 5.
func BenchmarkVerifyHTTP(b *testing.B) {
	w := newTransferWorld(b, Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}, API: true})
	b.ResetTimer()
	r, err := MeasureVerify(b.Context(), w, w.Net.Nodes[0], max(b.N, 2000), 32, 64)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(r.BareCPU.Seconds()/r.Bare.Elapsed.Seconds(), "bare-cpu-cores-busy")
	b.ReportMetric(r.VerifyCPU.Seconds()/r.Verify.Elapsed.Seconds(), "verify-cpu-cores-busy")
	b.ReportMetric(r.BatchCPU.Seconds()/r.Batch.Elapsed.Seconds(), "batch-cpu-cores-busy")
	b.ReportMetric(r.Verify.Rate(), "verify/s")
	b.ReportMetric(float64(r.Verify.Percentile(50).Microseconds()), "verify-p50-µs")
	b.ReportMetric(float64(r.Verify.Percentile(99).Microseconds()), "verify-p99-µs")
	b.ReportMetric(r.Bare.Rate(), "bare/s")
	b.ReportMetric(float64(r.Bare.Percentile(50).Microseconds()), "bare-p50-µs")
	b.ReportMetric(float64(r.Bare.Percentile(99).Microseconds()), "bare-p99-µs")
	b.ReportMetric(r.VerifyOverBare(), "verify/bare")
	b.ReportMetric(r.BareBlock.Rate(), "bare+block/s")
	b.ReportMetric(r.BareBlockCPU.Seconds()/r.BareBlock.Elapsed.Seconds(), "bare+block-cpu-cores-busy")
	b.ReportMetric(r.VerifyOverBareBlock(), "verify/bare+block")
	b.ReportMetric(r.BatchRate(), "batch-decisions/s")
	b.ReportMetric(r.BatchOverSingle(), "batch/single")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDecideLineage: a tier-3 resale whose two ancestors the node
// holds against the tier-1 transfer, in turns (MeasureLineage). Target:
// tier3/tier1 <= 1.5 for the decision.
func BenchmarkDecideLineage(b *testing.B) {
	w := newTransferWorld(b, Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}})
	b.ResetTimer()
	r, err := MeasureLineage(b.Context(), w, w.Net.Nodes[0], max(b.N, 2000))
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(r.Tier1.Microseconds()), "tier1-decide-µs")
	b.ReportMetric(float64(r.Tier3.Microseconds()), "tier3-decide-µs")
	b.ReportMetric(r.Tier3OverTier1(), "decide-tier3/tier1")
	b.ReportMetric(float64(r.VTier1.Microseconds()), "tier1-verify-µs")
	b.ReportMetric(float64(r.VTier3.Microseconds()), "tier3-verify-µs")
	b.ReportMetric(r.VerifyTier3OverTier1(), "verify-tier3/tier1")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRevocationEffect: time from submitting a revocation on one node
// until every node of a 5-node testnet denies the transfer it allowed
// (p50, p99), against the same revocation through bare gossipsub whose
// validators make one synced Badger write each (BenchmarkSpread's
// baseline), in turns. Each iteration revokes a fresh consent.
func BenchmarkRevocationEffect(b *testing.B) {
	const nodes = 5
	w := newTransferWorld(b, Options{Nodes: nodes, Jurisdictions: []string{"DE", "FR", "BR"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	synced := newBareGossip(b, nodes, true)
	defer synced.close()
	lat := make([]time.Duration, 0, b.N)
	syncedLat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := *w.Consent.Body().(*protocol.Consent)
		c.Subject = bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16)
		consent, err := Sign(w.Platform.Key, &c)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Net.Submit(ctx, w.Net.NodeOf("DE"), consent); err != nil {
			b.Fatal(err)
		}
		if err := w.Net.WaitAll(ctx, consent.CID()); err != nil {
			b.Fatal(err)
		}
		req := w.Request
		req.Consent = protocol.LinkTo(consent.CID())
		rev, err := Sign(w.Platform.Key, &protocol.Revocation{Target: protocol.LinkTo(consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := w.Net.Submit(ctx, w.Net.NodeOf("DE"), rev); err != nil {
			b.Fatal(err)
		}
		// A node denies as soon as it holds the revocation: wait for that,
		// then confirm the verdict.
		var wg sync.WaitGroup
		var worst atomic.Int64
		for _, m := range w.Net.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.Services().Ingest.WaitRecord(ctx, rev.CID()); err != nil {
					b.Error(err)
					return
				}
				d, err := m.Services().Verify.Decide(req)
				if err != nil || d.Verdict != protocol.VerdictDeny {
					b.Errorf("node %d still allows after the revocation: %v", m.Index, err)
					return
				}
				for t := int64(time.Since(start)); ; {
					old := worst.Load()
					if t <= old || worst.CompareAndSwap(old, t) {
						break
					}
				}
			}()
		}
		wg.Wait()
		lat = append(lat, time.Duration(worst.Load()))
		b.StopTimer()
		syncedLat = append(syncedLat, synced.roundTrip(b, ctx, rev))
	}
	b.StopTimer()
	p50, p99 := percentiles(lat)
	sp50, sp99 := percentiles(syncedLat)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(sp50.Microseconds()), "synced-p50-µs")
	b.ReportMetric(float64(sp99.Microseconds()), "synced-p99-µs")
	b.ReportMetric(p50.Seconds()/sp50.Seconds(), "p50/synced")
	b.ReportMetric(p99.Seconds()/sp99.Seconds(), "p99/synced")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCallerChecks: single verifies over HTTP with a granted
// controller's token (resolved against its live accreditation, the
// sender checked) against the operator's, in turns. Target:
// controller/operator >= 0.95.
func BenchmarkCallerChecks(b *testing.B) {
	w := newTransferWorld(b, Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}, API: true, Node: Unbounded})
	b.ResetTimer()
	r, err := MeasureCallers(b.Context(), w, w.Net.Nodes[0], max(b.N, 2000), 32)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(r.Operator.Rate(), "operator-verify/s")
	b.ReportMetric(r.Controller.Rate(), "controller-verify/s")
	b.ReportMetric(r.ControllerOverOperator(), "controller/operator")
	b.ReportMetric(0, "ns/op")
}
