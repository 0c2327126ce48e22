package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
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
	m := w.net.Nodes[0]
	req := w.request
	req.At = time.Now().UnixMilli()
	if d, err := m.Decide(req); err != nil || d.Verdict != protocol.VerdictAllow {
		b.Fatalf("warm-up: %v %+v", err, d)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Decide(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "decisions/s")
	b.ReportMetric(rate/float64(runtime.GOMAXPROCS(0)), "decisions/s/core")
}

// requestJSON is the HTTP form of a transfer request.
func requestJSON(req protocol.TransferRequest) []byte {
	b, _ := json.Marshal(map[string]any{
		"consent": req.Consent.String(), "from": req.From, "to": req.To, "recipient": req.Recipient,
		"purpose": req.Purpose, "categories": req.Categories, "tier": req.Tier, "retention_days": req.RetentionDays,
	})
	return b
}

// load sends n POSTs from clients concurrent clients and returns the rate
// and the p99 latency.
// Bodies are used in turn: requests that differ give receipts that differ.
func load(b *testing.B, url, token string, bodies [][]byte, n, clients int) (float64, time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i%int64(len(bodies))]))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(n) / elapsed.Seconds(), lat[min(n-1, n*99/100)]
}

// BenchmarkVerifyHTTP: POST /v1/transfers/verify from 32 concurrent
// clients — each answer a decision plus a receipt signed and stored
// durably — against a bare HTTP handler in the same process that parses
// the same body and does the same number of store reads (the decision's
// evidence records and their backlinks). Target: ratio >= 0.8. Then
// verify-batch (90 requests a call) against single requests. Target: >= 5x.
func BenchmarkVerifyHTTP(b *testing.B) {
	const clients = 32
	w := newTransferWorld(b, Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}, API: true})
	m := w.net.Nodes[0]
	var bodies [][]byte
	for days := int64(1); days <= 90; days++ {
		r := w.request
		r.RetentionDays = days
		bodies = append(bodies, requestJSON(r))
	}
	d, err := m.Decide(w.request)
	if err != nil || d.Verdict != protocol.VerdictAllow {
		b.Fatalf("decision: %v %+v", err, d)
	}
	evidence := d.Evidence
	bare := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		for _, e := range evidence {
			if _, err := m.Store().Get(e.Cid); err != nil {
				http.Error(rw, err.Error(), 500)
				return
			}
			if _, err := m.Store().LinkedFrom(e.Cid); err != nil {
				http.Error(rw, err.Error(), 500)
				return
			}
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, `{"verdict":"allow","checks":[],"receipt":""}`)
	}))
	defer bare.Close()
	n := max(b.N, 200)
	b.ResetTimer()
	bareRate, bareP99 := load(b, bare.URL, "", bodies, n, clients)
	cpu0, t0 := cpuTime(), time.Now()
	rate, p99 := load(b, "http://"+m.APIAddr()+"/v1/transfers/verify", m.Token, bodies, n, clients)
	b.ReportMetric((cpuTime()-cpu0).Seconds()/time.Since(t0).Seconds(), "verify-cpu-cores-busy")

	// verify-batch: 90 different requests a call.
	per := len(bodies)
	reqs := make([]json.RawMessage, per)
	for i := range reqs {
		reqs[i] = bodies[i]
	}
	batchBody, _ := json.Marshal(map[string]any{"requests": reqs})
	calls := max(n/per, 20)
	cpu1, t1 := cpuTime(), time.Now()
	callRate, _ := load(b, "http://"+m.APIAddr()+"/v1/transfers/verify-batch", m.Token, [][]byte{batchBody}, calls, 4)
	b.ReportMetric((cpuTime()-cpu1).Seconds()/time.Since(t1).Seconds(), "batch-cpu-cores-busy")
	b.StopTimer()
	b.ReportMetric(rate, "verify/s")
	b.ReportMetric(float64(p99.Microseconds()), "verify-p99-µs")
	b.ReportMetric(bareRate, "bare/s")
	b.ReportMetric(float64(bareP99.Microseconds()), "bare-p99-µs")
	b.ReportMetric(rate/bareRate, "verify/bare")
	b.ReportMetric(callRate*float64(per), "batch-decisions/s")
	b.ReportMetric(callRate*float64(per)/rate, "batch/single")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRevocationEffect: time from submitting a revocation on one node
// until every node of a 5-node testnet denies the transfer it allowed
// (p50, p99). Each iteration revokes a fresh consent.
func BenchmarkRevocationEffect(b *testing.B) {
	w := newTransferWorld(b, Options{Nodes: 5, Jurisdictions: []string{"DE", "FR", "BR"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := *w.consent.Body().(*protocol.Consent)
		c.Subject = bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16)
		consent, err := Sign(w.platform.Key, &c)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.net.Submit(ctx, w.net.NodeOf("DE"), consent); err != nil {
			b.Fatal(err)
		}
		if err := w.net.WaitAll(ctx, consent.CID()); err != nil {
			b.Fatal(err)
		}
		req := w.request
		req.Consent = protocol.LinkTo(consent.CID())
		rev, err := Sign(w.platform.Key, &protocol.Revocation{Target: protocol.LinkTo(consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := w.net.Submit(ctx, w.net.NodeOf("DE"), rev); err != nil {
			b.Fatal(err)
		}
		// A node denies as soon as it holds the revocation: wait for that,
		// then confirm the verdict.
		var wg sync.WaitGroup
		var worst atomic.Int64
		for _, m := range w.net.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.WaitRecord(ctx, rev.CID()); err != nil {
					b.Error(err)
					return
				}
				d, err := m.Decide(req)
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
	}
	b.StopTimer()
	p50, p99 := percentiles(lat)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
