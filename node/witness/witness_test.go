package witness_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/checkpoint"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/witness"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const fed = "witness-test"

// incidents keeps the records the witness ingests.
type incidents struct {
	mu   sync.Mutex
	recs []*protocol.Record
}

func (i *incidents) Ingest(_ context.Context, r *protocol.Record, _ service.Source) (service.Accepted, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.recs = append(i.recs, r)
	return service.Accepted{CID: r.CID(), New: true, Record: r}, nil
}

type node struct {
	key  crypto.PrivKey
	st   *store.Store
	cps  *checkpoint.Service
	w    *witness.Service
	inc  *incidents
	host host.Host
}

func newNode(t *testing.T, h host.Host, key crypto.PrivKey) *node {
	n := &node{key: key, st: nodetest.Store(t), inc: &incidents{}, host: h}
	var err error
	if n.cps, err = checkpoint.New(checkpoint.Config{Store: n.st, Key: key, Federation: fed, Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.cps.Close)
	if n.w, err = witness.New(witness.Config{Host: h, Store: n.st, Checkpoints: n.cps, Ingest: n.inc, Key: key,
		Federation: fed, Jurisdiction: "DE", IsMember: func(peer.ID) bool { return true }, Interval: time.Hour,
		Registerer: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.w.Close)
	return n
}

// grow adds k records to n's log and signs a checkpoint of it.
func (n *node) grow(t *testing.T, k int) protocol.SignedCheckpoint {
	fedKeys := nodetest.NewFed(t, fed)
	for range k {
		_, id := nodetest.Key(t)
		nodetest.Put(t, n.st, fedKeys.Accredit(t, id, protocol.RoleController))
	}
	sc, err := n.cps.Sign()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestWitnessCosigns: a witness verifies a growing log, cosigns each
// checkpoint and returns the cosignature, which the log keeps.
func TestWitnessCosigns(t *testing.T) {
	ka, _ := nodetest.Key(t)
	kb, _ := nodetest.Key(t)
	hosts := nodetest.Hosts(t, 2, ka, kb)
	a, b := newNode(t, hosts[0], ka), newNode(t, hosts[1], kb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.w.Peer(ctx, hosts[0].ID()); !errors.Is(err, service.ErrEmptyLog) {
		t.Fatalf("witnessing an empty log: %v", err)
	}
	for _, k := range []int{3, 5} {
		sc := a.grow(t, k)
		if err := b.w.Peer(ctx, hosts[0].ID()); err != nil {
			t.Fatalf("witnessing size %d: %v", sc.Size, err)
		}
		st := b.w.Witnessed()
		if len(st) != 1 || st[0].Size != sc.Size || st[0].Root != sc.Root.String() {
			t.Fatalf("witnessed %+v, want size %d", st, sc.Size)
		}
		latest, err := a.cps.Latest()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := protocol.VerifyCosignature(latest.Note, fed, hosts[1].ID()); err != nil {
			t.Fatalf("the log's latest note lacks the witness's cosignature: %v", err)
		}
	}
	if len(b.w.Alerts()) != 0 || len(b.inc.recs) != 0 {
		t.Errorf("alerts %v for an honest log", b.w.Alerts())
	}
}

// TestEquivocation: a second checkpoint of one size with another root is
// evidence, an alert and one incident, however often it is seen.
func TestEquivocation(t *testing.T) {
	ka, ida := nodetest.Key(t)
	kb, _ := nodetest.Key(t)
	hosts := nodetest.Hosts(t, 2, ka, kb)
	a, b := newNode(t, hosts[0], ka), newNode(t, hosts[1], kb)
	ctx := context.Background()
	sc := a.grow(t, 2)
	if err := b.w.Peer(ctx, ida); err != nil {
		t.Fatal(err)
	}
	s, err := protocol.NewCheckpointSigner(fed, ka)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := s.Sign(protocol.LogCheckpoint{Origin: s.Name(), Size: sc.Size, Root: tlog.RecordHash([]byte("other"))})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.w.Observe(ctx, ida, forged.Note, nil); !errors.Is(err, witness.ErrEquivocation) {
			t.Fatalf("a forked checkpoint: %v", err)
		}
	}
	alerts := b.w.Alerts()
	if len(alerts) != 1 || alerts[0].Kind != witness.EquivocationSameSize || alerts[0].Incident == "" {
		t.Fatalf("alerts %+v", alerts)
	}
	if len(b.inc.recs) != 1 {
		t.Fatalf("%d incidents, want 1", len(b.inc.recs))
	}
	inc, _ := b.inc.recs[0].Incident()
	if inc.Severity != protocol.SeverityCritical || len(inc.Affected) != 1 || inc.Affected[0] != ida.String() {
		t.Errorf("incident %+v", inc)
	}
	notes, ok := b.w.Evidence(ida, sc.Size)
	if !ok || len(notes) != 2 || string(notes[1]) != string(forged.Note) {
		t.Errorf("evidence %v", ok)
	}
}
