package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// sseWatch follows GET /v1/incidents/stream of one node and records when
// each notice first appears in an event (the last of the entry's
// notices is the new one).
type sseWatch struct {
	mu   sync.Mutex
	seen map[string]time.Time
	cond *sync.Cond
	err  error
}

func watchIncidents(ctx context.Context, tb testing.TB, m *Member, hc *http.Client) *sseWatch {
	return watchStream(ctx, tb, m, "/v1/incidents/stream", m.Token, func(data []byte) string {
		var e struct{ Notices []string }
		if json.Unmarshal(data, &e) != nil || len(e.Notices) == 0 {
			return ""
		}
		return e.Notices[len(e.Notices)-1]
	}, hc)
}

// watchStream follows the event stream at path of m with token, and
// records when each event's key (key of its data; "" to skip) is first
// seen.
func watchStream(ctx context.Context, tb testing.TB, m *Member, path, token string, key func([]byte) string, hc *http.Client) *sseWatch {
	tb.Helper()
	w := &sseWatch{seen: map[string]time.Time{}}
	w.cond = sync.NewCond(&w.mu)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.APIAddr()+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s of node %d: %s", path, m.Index, resp.Status)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 4<<10), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			at := time.Now() // the event has arrived; reading it is the subscriber's time
			k := key([]byte(data))
			if k == "" {
				continue
			}
			w.mu.Lock()
			if _, dup := w.seen[k]; !dup {
				w.seen[k] = at
			}
			w.cond.Broadcast()
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.err = fmt.Errorf("the stream ended: %v", sc.Err())
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	return w
}

// wait returns when c was seen (or the stream ended).
func (w *sseWatch) wait(c string) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if at, ok := w.seen[c]; ok {
			return at, nil
		}
		if w.err != nil {
			return time.Time{}, w.err
		}
		w.cond.Wait()
	}
}

// lastArrival waits until every watch has seen c and returns the last
// time one did.
func lastArrival(b *testing.B, watches []*sseWatch, c string) time.Time {
	var last time.Time
	for _, w := range watches {
		at, err := w.wait(c)
		if err != nil {
			b.Fatal(err)
		}
		if at.After(last) {
			last = at
		}
	}
	return last
}

// clearNotice is a TLP:CLEAR incident notice of reg's, distinct by i.
func clearNotice(tb testing.TB, reg *Party, i int) *protocol.Record {
	tb.Helper()
	r, err := Sign(reg.Key, &protocol.Incident{Ref: fmt.Sprintf("DE-BENCH-%d", i), Jurisdiction: "DE", Severity: protocol.SeverityLow,
		Status: protocol.StatusOpen, TLP: protocol.TLPClear, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "a benchmark notice"})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkIncidentStream: an incident notice published on one node of a
// five-node testnet, until its event reaches a subscriber of
// /v1/incidents/stream on every other node; next to the record's gossip
// spread (every node holds it) in the same run, and to the same record
// through bare gossipsub whose validators make one synced write each
// (BenchmarkSpread's baseline, DESIGN.md §10). Target: stream/spread <=
// 1.5 at p50 and p99.
func BenchmarkIncidentStream(b *testing.B) {
	const nodes = 5
	net, err := Start(Options{Nodes: nodes, API: true})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	reg, err := net.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		b.Fatal(err)
	}
	if err := net.WaitAll(ctx, reg.Accreditation.CID()); err != nil {
		b.Fatal(err)
	}
	origin := net.NodeOf("DE")
	hc := &http.Client{}
	var watches []*sseWatch
	for _, m := range net.Nodes {
		if m != origin {
			watches = append(watches, watchIncidents(ctx, b, m, hc))
		}
	}
	synced := newBareGossip(b, nodes, true)
	defer synced.close()
	var spread, stream, syncedLat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		r := clearNotice(b, reg, i)
		t0 := time.Now()
		if err := net.Submit(ctx, origin, r); err != nil {
			b.Fatal(err)
		}
		if err := net.WaitAll(ctx, r.CID()); err != nil {
			b.Fatal(err)
		}
		spread = append(spread, time.Since(t0))
		last := lastArrival(b, watches, r.CID().String())
		stream = append(stream, last.Sub(t0))
		syncedLat = append(syncedLat, synced.roundTrip(b, ctx, r))
	}
	b.StopTimer()
	p50, p99 := percentiles(stream)
	s50, s99 := percentiles(spread)
	b.ReportMetric(float64(p50.Microseconds()), "stream-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "stream-p99-µs")
	b.ReportMetric(float64(s50.Microseconds()), "spread-p50-µs")
	b.ReportMetric(float64(s99.Microseconds()), "spread-p99-µs")
	b.ReportMetric(p50.Seconds()/s50.Seconds(), "stream/spread-p50")
	b.ReportMetric(p99.Seconds()/s99.Seconds(), "stream/spread-p99")
	y50, y99 := percentiles(syncedLat)
	b.ReportMetric(float64(y50.Microseconds()), "synced-p50-µs")
	b.ReportMetric(float64(y99.Microseconds()), "synced-p99-µs")
	b.ReportMetric(p50.Seconds()/y50.Seconds(), "stream/synced-p50")
	b.ReportMetric(p99.Seconds()/y99.Seconds(), "stream/synced-p99")
	b.ReportMetric(s50.Seconds()/y50.Seconds(), "spread/synced-p50") // the spread under the subscribers' load
	b.ReportMetric(s99.Seconds()/y99.Seconds(), "spread/synced-p99")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIncidentFanout: 1 000 subscribers of one node's incident
// stream; each notice published on the node is timed until its event has
// reached every subscriber. Reports the p50 and p99 of that fan-out and
// the heap each subscriber adds (server and client side, both in this
// process).
func BenchmarkIncidentFanout(b *testing.B) {
	const subscribers = 1000
	net, err := Start(Options{Nodes: 1, API: true, InMemory: true, Node: Unbounded})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	m := net.Nodes[0]
	reg, err := net.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: subscribers}}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	watches := make([]*sseWatch, subscribers)
	for i := range watches {
		watches[i] = watchIncidents(ctx, b, m, hc)
	}
	after := heap()
	perSubscriber := float64(after-min(before, after)) / subscribers
	var fan []time.Duration
	b.ResetTimer()
	for i := range b.N {
		r := clearNotice(b, reg, i)
		t0 := time.Now()
		if err := net.Submit(ctx, m, r); err != nil {
			b.Fatal(err)
		}
		last := lastArrival(b, watches, r.CID().String())
		fan = append(fan, last.Sub(t0))
	}
	b.StopTimer()
	p50, p99 := percentiles(fan)
	b.ReportMetric(float64(p50.Microseconds()), "fanout-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "fanout-p99-µs")
	b.ReportMetric(perSubscriber/1024, "KiB/subscriber")
	b.ReportMetric(0, "ns/op")
}
