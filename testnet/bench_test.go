package testnet

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// openBaseline opens a store.Baseline in a directory of its own, closed
// when tb ends.
func openBaseline(tb testing.TB) *store.Baseline {
	tb.Helper()
	disk, err := store.OpenBaseline(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { disk.Close() })
	return disk
}

// accreditations signs n distinct accreditations by j's authority.
func accreditations(tb testing.TB, net *Net, j string, n int) []*protocol.Record {
	tb.Helper()
	recs, err := net.SignAccreditations(j, n)
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// BenchmarkIngest measures records validated, stored durably (fsync) and
// indexed per second through a node's ingest path (Submit), from many
// concurrent clients, against bare Ed25519 verification on the same cores,
// and bare synced Badger writes of the same records, interleaved with it
// (MeasureIngest). ingest/limit is ingest ÷ the lower of the two (DESIGN.md
// §10); ingest/keys-verify compares with the faster verifier the node
// itself uses.
func BenchmarkIngest(b *testing.B) {
	net, err := Start(Options{Nodes: 1, Jurisdictions: []string{"DE"}, InMemory: os.Getenv("INGEST_INMEM") != ""})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	m := net.Nodes[0]
	recs := accreditations(b, net, "DE", b.N)
	if f := os.Getenv("INGEST_CPUPROFILE"); f != "" {
		out, _ := os.Create(f)
		defer out.Close()
		pprof.StartCPUProfile(out)
	}
	disk := openBaseline(b)
	if os.Getenv("INGEST_NODISK") != "" {
		disk = nil
	}
	// 128 × GOMAXPROCS concurrent submitters, as gossip validation runs,
	// unless INGEST_SUBMITTERS says how many.
	submitters := 128 * runtime.GOMAXPROCS(0)
	if n, err := strconv.Atoi(os.Getenv("INGEST_SUBMITTERS")); err == nil && n > 0 {
		submitters = n
	}
	b.ResetTimer()
	r, err := MeasureIngest(context.Background(), m, recs, submitters, disk)
	b.StopTimer()
	pprof.StopCPUProfile()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.CoresBusy(), "cpu-cores-busy")
	b.ReportMetric(r.IngestRate(), "records/s")
	b.ReportMetric(r.StdVerifyRate(), "ed25519-verify/s")
	b.ReportMetric(r.IngestRate()/r.StdVerifyRate(), "ingest/verify")
	b.ReportMetric(r.KeysVerifyRate(), "keys-verify/s")
	b.ReportMetric(r.IngestRate()/r.KeysVerifyRate(), "ingest/keys-verify")
	b.ReportMetric(r.DiskRate(), "disk-writes/s")
	b.ReportMetric(r.IngestRate()/r.DiskRate(), "ingest/disk")
	b.ReportMetric(r.OverLimit(), "ingest/limit")
	if l := r.SharedLimit(); l > 0 {
		b.ReportMetric(r.IngestRate()/l, "ingest/shared-limit")
	}
	b.ReportMetric(float64(r.CPUPerRecord().Microseconds()), "cpu-µs/record")
	b.ReportMetric(float64(r.DiskCPUPerRecord().Microseconds()), "disk-cpu-µs/record")
	if ws := m.Store().WriteStats(); ws.Txns > 0 {
		b.ReportMetric(float64(b.N)/float64(ws.Txns), "records/commit")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSpread measures the time from submitting a record on one node
// until all five nodes of a testnet hold it (p50, p99), next to two
// baselines in the same topology measured in the same run, taking turns
// with it: bare gossipsub (five hosts, full mesh, flood publish), and the
// same bare gossipsub whose validator makes one synced Badger write of the
// record on each host, the origin's included (DESIGN.md §10: a node that
// keeps what it receives cannot do less). spread/synced is the ratio of
// the p50s and of the p99s to the second.
func BenchmarkSpread(b *testing.B) { benchmarkSpread(b, 5, authorityRecords) }

// BenchmarkSpread20 is BenchmarkSpread with twenty nodes.
func BenchmarkSpread20(b *testing.B) { benchmarkSpread(b, 20, authorityRecords) }

// BenchmarkSpreadIncident is BenchmarkSpread of a regulator's TLP:CLEAR
// incident notices (authorised against the regulator's accreditation in
// each node's store, where an authority's record is checked against the
// federation file), with no API and no subscribers: next to
// BenchmarkIncidentStream, it says what of the stream's figure is the
// record's and what the stream's.
func BenchmarkSpreadIncident(b *testing.B) { benchmarkSpread(b, 5, regulatorNotices) }

// authorityRecords is n accreditations signed by DE's authority.
func authorityRecords(b *testing.B, _ context.Context, net *Net, n int) []*protocol.Record {
	return accreditations(b, net, "DE", n)
}

// regulatorNotices is n TLP:CLEAR notices of a DE regulator accredited
// for them, once every node holds its accreditation.
func regulatorNotices(b *testing.B, ctx context.Context, net *Net, n int) []*protocol.Record {
	reg, err := net.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		b.Fatal(err)
	}
	if err := net.WaitAll(ctx, reg.Accreditation.CID()); err != nil {
		b.Fatal(err)
	}
	recs := make([]*protocol.Record, n)
	for i := range recs {
		recs[i] = clearNotice(b, reg, i)
	}
	return recs
}

func benchmarkSpread(b *testing.B, nodes int, records func(*testing.B, context.Context, *Net, int) []*protocol.Record) {
	net, err := Start(Options{Nodes: nodes, InMemory: false})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	recs := records(b, ctx, net, 2*b.N) // the second half for the baselines
	recs, other := recs[:b.N], recs[b.N:]
	bare := newBareGossip(b, nodes, false)
	defer bare.close()
	synced := newBareGossip(b, nodes, true)
	defer synced.close()

	lat := make([]time.Duration, 0, b.N)
	bareLat := make([]time.Duration, 0, b.N)
	syncedLat := make([]time.Duration, 0, b.N)
	origin := net.NodeOf("DE")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := origin.Services().Ingest.SubmitRecord(ctx, recs[i]); err != nil {
			b.Fatal(err)
		}
		if err := net.WaitAll(ctx, recs[i].CID()); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		bareLat = append(bareLat, bare.roundTrip(b, ctx, other[i]))
		syncedLat = append(syncedLat, synced.roundTrip(b, ctx, other[i]))
	}
	b.StopTimer()
	p50, p99 := percentiles(lat)
	bp50, bp99 := percentiles(bareLat)
	sp50, sp99 := percentiles(syncedLat)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(bp50.Microseconds()), "bare-p50-µs")
	b.ReportMetric(float64(bp99.Microseconds()), "bare-p99-µs")
	b.ReportMetric(float64(sp50.Microseconds()), "synced-p50-µs")
	b.ReportMetric(float64(sp99.Microseconds()), "synced-p99-µs")
	b.ReportMetric(p50.Seconds()/sp50.Seconds(), "p50/synced")
	b.ReportMetric(p99.Seconds()/sp99.Seconds(), "p99/synced")
	b.ReportMetric(0, "ns/op")
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0, 0
	}
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

// bareGossip is a baseline: plain libp2p hosts running gossipsub with the
// same options as nodes, and no validation, storage or membership — or,
// synced, a validator on each host that writes the record to a bare
// Badger of its own (store.Baseline: the store's keys, one synced commit).
type bareGossip struct {
	hosts  []host.Host
	topics []*pubsub.Topic
	subs   []*pubsub.Subscription
	cancel context.CancelFunc
	// byID holds the records being published, by message ID, for the
	// synced validators.
	byID sync.Map
}

func newBareGossip(b *testing.B, n int, synced bool) *bareGossip {
	ctx, cancel := context.WithCancel(context.Background())
	g := &bareGossip{cancel: cancel}
	msgID := func(m *pb.Message) string { return protocol.RecordCID(m.GetData()).KeyString() }
	for i := 0; i < n; i++ {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			b.Fatal(err)
		}
		ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
			pubsub.WithFloodPublish(true), pubsub.WithMessageIdFn(msgID))
		if err != nil {
			b.Fatal(err)
		}
		if synced {
			disk := openBaseline(b)
			err := ps.RegisterTopicValidator("bare", func(ctx context.Context, _ peer.ID, m *pubsub.Message) bool {
				r, ok := g.byID.Load(msgID(m.Message))
				return ok && disk.Write(ctx, []*protocol.Record{r.(*protocol.Record)}) == nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		t, err := ps.Join("bare")
		if err != nil {
			b.Fatal(err)
		}
		s, err := t.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		g.hosts, g.topics, g.subs = append(g.hosts, h), append(g.topics, t), append(g.subs, s)
	}
	for i, a := range g.hosts {
		for _, c := range g.hosts[i+1:] {
			if err := a.Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: c.Addrs()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, t := range g.topics {
		for len(t.ListPeers()) < n-1 {
			if time.Now().After(deadline) {
				b.Fatal("bare gossip: topic peers did not appear")
			}
			time.Sleep(10 * time.Millisecond) // polling the router's state; it has no event for this
		}
	}
	return g
}

// roundTrip publishes r's bytes from host 0 and returns when every other
// host has received them.
func (g *bareGossip) roundTrip(b *testing.B, ctx context.Context, r *protocol.Record) time.Duration {
	msg := r.Bytes()
	g.byID.Store(r.CID().KeyString(), r)
	defer g.byID.Delete(r.CID().KeyString())
	start := time.Now()
	if err := g.topics[0].Publish(ctx, msg); err != nil {
		b.Fatal(err)
	}
	for _, s := range g.subs[1:] {
		for {
			m, err := s.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if string(m.Data) == string(msg) {
				break
			}
		}
	}
	// drain the publisher's own copy
	if _, err := g.subs[0].Next(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func (g *bareGossip) close() {
	for _, s := range g.subs {
		s.Cancel()
	}
	g.cancel()
	for _, h := range g.hosts {
		h.Close()
	}
}

// BenchmarkFootprint stores 100k records on a node and reports bytes on
// disk per record against the records' own size.
func BenchmarkFootprint(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		net, err := Start(Options{Nodes: 1, Jurisdictions: []string{"DE"}, Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		recs := accreditations(b, net, "DE", n)
		var own int64
		for _, r := range recs {
			own += int64(len(r.Bytes()))
		}
		m := net.Nodes[0]
		submitAll(b, m, recs)
		if err := net.Close(); err != nil {
			b.Fatal(err)
		}
		disk := dirSize(b, m.DataDir)
		b.ReportMetric(float64(disk)/n, "disk-bytes/record")
		b.ReportMetric(float64(own)/n, "record-bytes/record")
		b.ReportMetric(float64(disk)/float64(own), "disk/record-bytes")
	}
}

func dirSize(b *testing.B, dir string) int64 {
	var total int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}
