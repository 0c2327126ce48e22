package reconcile_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/reconcile"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// side is one node's store and sync set, with an ingester that stores
// what it gets, as ingest would, and a downloader that reads another
// side's store, as fetch would.
type side struct {
	st    *store.Store
	index *reconcile.Index
	mu    sync.Mutex
	peers map[peer.ID]*side
}

func newSide(t *testing.T, recs ...*protocol.Record) *side {
	s := &side{st: nodetest.Store(t), peers: map[peer.ID]*side{}}
	nodetest.Put(t, s.st, recs...)
	var err error
	if s.index, err = reconcile.LoadIndex(s.st); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *side) IngestOrParkFrom(ctx context.Context, r *protocol.Record, src service.Source, _ peer.ID) (service.Accepted, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.st.Put(ctx, r)
	if err == nil && res.New {
		s.index.Add(r)
	}
	return service.Accepted{CID: r.CID(), New: res.New}, false, err
}

func (s *side) FetchFrom(ctx context.Context, p peer.ID, cids []cid.Cid) (map[cid.Cid]*protocol.Record, error) {
	out := map[cid.Cid]*protocol.Record{}
	for _, c := range cids {
		if r, err := s.peers[p].st.Get(c); err == nil {
			out[c] = r
		}
	}
	return out, nil
}

func (s *side) start(t *testing.T, h host.Host) *reconcile.Service {
	svc, err := reconcile.New(reconcile.Config{Host: h, Store: s.st, Index: s.index, Ingest: s, Download: s,
		Disabled: true, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

// TestReconcile: a node that lacks some records gets exactly those by
// negentropy; a node that holds nothing gets the whole set by sync-all;
// receipts and TLP:RED notices are not in the set.
func TestReconcile(t *testing.T) {
	fed := nodetest.NewFed(t, "sync-test")
	var recs []*protocol.Record
	for range 50 {
		_, id := nodetest.Key(t)
		recs = append(recs, fed.Accredit(t, id, protocol.RoleController))
	}
	nodeKey, _ := nodetest.Key(t)
	receipt := nodetest.Sign(t, nodeKey, protocol.NewReceipt([]cid.Cid{protocol.RecordCID([]byte("a decision"))}, protocol.Checkpoint{Root: make([]byte, 32)}))
	full := newSide(t, append(recs, receipt)...)
	part := newSide(t, recs[:30]...)
	empty := newSide(t)
	hosts := nodetest.Hosts(t, 3)
	full.start(t, hosts[0])
	part.peers[hosts[0].ID()] = full
	empty.peers[hosts[0].ID()] = full
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	partSvc := part.start(t, hosts[1])
	res, err := partSvc.With(ctx, hosts[0].ID())
	if err != nil || res.Need != 20 || res.Fetched != 20 || res.Rounds < 1 {
		t.Fatalf("partial node: %+v %v", res, err)
	}
	if part.st.Len() != 50 {
		t.Errorf("the partial node holds %d records, want 50 (not the receipt)", part.st.Len())
	}
	if st := partSvc.Status(); len(st) != 1 || st[0].Sessions != 1 || st[0].Fetched != 20 || st[0].LastError != "" {
		t.Errorf("status %+v", st)
	}
	res, err = empty.start(t, hosts[2]).With(ctx, hosts[0].ID())
	if err != nil || res.Fetched != 50 {
		t.Fatalf("empty node: %+v %v", res, err)
	}
	if ok, _ := empty.st.Has(receipt.CID()); ok {
		t.Error("sync-all sent a receipt")
	}
}

func TestClosed(t *testing.T) {
	s := newSide(t)
	h := nodetest.Hosts(t, 1)[0]
	svc := s.start(t, h)
	svc.Close()
	svc.Close()
	if _, err := svc.With(context.Background(), h.ID()); !errors.Is(err, service.ErrClosed) {
		t.Errorf("With after Close: %v", err)
	}
}

// TestLastSuccessMetric: entente_sync_last_success_timestamp_seconds is
// the clock's time when a session last ended without error; a failed
// session leaves it where it was (0 before the first success), which is
// what the sync-lag alert of deploy/alerts.yml watches.
func TestLastSuccessMetric(t *testing.T) {
	const name = "entente_sync_last_success_timestamp_seconds"
	fed := nodetest.NewFed(t, "sync-metric")
	_, id := nodetest.Key(t)
	full := newSide(t, fed.Accredit(t, id, protocol.RoleController))
	lagging := newSide(t)
	hosts := nodetest.Hosts(t, 3) // hosts[2] serves no sync
	full.start(t, hosts[0])
	lagging.peers[hosts[0].ID()] = full
	now := time.Unix(1_800_000_000, 500_000_000)
	reg := prometheus.NewRegistry()
	svc, err := reconcile.New(reconcile.Config{Host: hosts[1], Store: lagging.st, Index: lagging.index,
		Ingest: lagging, Download: lagging, Disabled: true, Registerer: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := svc.With(ctx, hosts[2].ID()); err == nil {
		t.Fatal("a session with a peer that serves no sync succeeded")
	}
	if got := nodetest.Metric(t, reg, name, nil); got != 0 {
		t.Errorf("after a failed session %s = %v, want 0", name, got)
	}
	if _, err := svc.With(ctx, hosts[0].ID()); err != nil {
		t.Fatal(err)
	}
	if got := nodetest.Metric(t, reg, name, nil); got != 1_800_000_000.5 {
		t.Errorf("after a session at %v %s = %v, want 1800000000.5", now, name, got)
	}
	now = now.Add(time.Hour)
	if _, err := svc.With(ctx, hosts[2].ID()); err == nil {
		t.Fatal("a session with a peer that serves no sync succeeded")
	}
	if got := nodetest.Metric(t, reg, name, nil); got != 1_800_000_000.5 {
		t.Errorf("a failed session moved %s to %v", name, got)
	}
}
