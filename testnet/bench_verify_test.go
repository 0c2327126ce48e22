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
	"slices"
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

// requestJSON is the HTTP form of a transfer request.
func requestJSON(req protocol.TransferRequest) []byte {
	b, _ := json.Marshal(map[string]any{
		"consent": req.Consent.String(), "from": req.From, "to": req.To, "sender": req.Sender, "recipient": req.Recipient,
		"purpose": req.Purpose, "categories": req.Categories, "tier": req.Tier, "retention_days": req.RetentionDays,
	})
	return b
}

// loadRun is what load measured: the time taken and each request's
// latency.
type loadRun struct {
	elapsed time.Duration
	lat     []time.Duration
}

func (r *loadRun) add(o loadRun) {
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
}

func (r loadRun) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

func (r loadRun) p99() time.Duration {
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

// load sends n POSTs from clients concurrent clients. Bodies are used in
// turn: requests that differ give receipts that differ.
func load(b *testing.B, url, token string, bodies [][]byte, n, clients int) loadRun {
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
	return loadRun{elapsed: time.Since(start), lat: lat}
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
	d, err := m.Services().Verify.Decide(w.request)
	if err != nil || d.Verdict != protocol.VerdictAllow {
		b.Fatalf("decision: %v %+v", err, d)
	}
	evidence := d.Evidence
	// The backlinks a decision reads: revocations, amendments and incident
	// follow-ups, never the receipts that pile up on a consent.
	backlinkKinds := []protocol.Kind{protocol.KindRevocation, protocol.KindConsent, protocol.KindIncident}
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
			if _, err := m.Store().LinkedFrom(e.Cid, backlinkKinds...); err != nil {
				http.Error(rw, err.Error(), 500)
				return
			}
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, `{"verdict":"allow","checks":[],"receipt":""}`)
	}))
	defer bare.Close()
	n := max(b.N, 200)
	// verify-batch: 90 different requests a call.
	per := len(bodies)
	reqs := make([]json.RawMessage, per)
	for i := range reqs {
		reqs[i] = bodies[i]
	}
	batchBody, _ := json.Marshal(map[string]any{"requests": reqs})
	calls := max(n/per, 20)

	// The three take turns, in rounds, so that all see the same machine:
	// a shared machine's speed drifts by tens of percent over seconds.
	const rounds = 5
	var bareRun, verifyRun, batchRun loadRun
	var verifyCPU, batchCPU time.Duration
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		bareRun.add(load(b, bare.URL, "", bodies, n/rounds, clients))
		cpu0 := cpuTime()
		verifyRun.add(load(b, "http://"+m.APIAddr()+"/v1/transfers/verify", m.Token, bodies, n/rounds, clients))
		verifyCPU += cpuTime() - cpu0
		cpu0 = cpuTime()
		batchRun.add(load(b, "http://"+m.APIAddr()+"/v1/transfers/verify-batch", m.Token, [][]byte{batchBody}, max(calls/rounds, 4), 4))
		batchCPU += cpuTime() - cpu0
	}
	b.StopTimer()
	rate, bareRate, batchRate := verifyRun.rate(), bareRun.rate(), batchRun.rate()*float64(per)
	b.ReportMetric(verifyCPU.Seconds()/verifyRun.elapsed.Seconds(), "verify-cpu-cores-busy")
	b.ReportMetric(batchCPU.Seconds()/batchRun.elapsed.Seconds(), "batch-cpu-cores-busy")
	b.ReportMetric(rate, "verify/s")
	b.ReportMetric(float64(verifyRun.p99().Microseconds()), "verify-p99-µs")
	b.ReportMetric(bareRate, "bare/s")
	b.ReportMetric(float64(bareRun.p99().Microseconds()), "bare-p99-µs")
	b.ReportMetric(rate/bareRate, "verify/bare")
	b.ReportMetric(batchRate, "batch-decisions/s")
	b.ReportMetric(batchRate/rate, "batch/single")
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
	}
	b.StopTimer()
	p50, p99 := percentiles(lat)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
