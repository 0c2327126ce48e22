package ingest_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/node/ingest"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// parkJunk gossips n consents by keys no authority accredited, from peer
// from, and requires each to be parked.
func (w *world) parkJunk(t *testing.T, ctx context.Context, from peer.ID, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		key, _ := nodetest.Key(t)
		_, parked, err := w.p.IngestOrParkFrom(ctx, nodetest.Consent(t, key, "research"), service.SourceGossip, from)
		if !parked || protocol.CodeOf(err) != protocol.CodeUnauthorizedIssuer {
			t.Fatalf("junk %d: parked %v, %v", i, parked, err)
		}
	}
}

// settle parks a consent, syncs its issuer's accreditation and waits for
// the consent: once it is held, the retry loop has handled every record
// released before it (it takes them in order). Sync, not gossip: the
// records are issued now, and a test's clock may be ahead.
func (w *world) settle(t *testing.T, ctx context.Context) {
	t.Helper()
	key, id := nodetest.Key(t)
	consent := nodetest.Consent(t, key, "marker")
	if _, parked, err := w.p.IngestOrPark(ctx, consent, service.SourceFetch); !parked {
		t.Fatalf("marker consent not parked: %v", err)
	}
	if _, err := w.p.Ingest(ctx, w.fed.Accredit(t, id, protocol.RoleController), service.SourceFetch); err != nil {
		t.Fatal(err)
	}
	if err := w.p.WaitRecord(ctx, consent.CID()); err != nil {
		t.Fatalf("the marker consent was not accepted: %v", err)
	}
}

// TestParkedRetriedOnlyForWhatTheyWaitFor is the attack: members
// gossip 2 500 consents no one will ever accredit (parked), then 20 good
// records arrive. Each parked record waits for its issuer's accreditation,
// so the good records retry none of them; before, each retried all (39 975
// re-ingests for 20 records).
func TestParkedRetriedOnlyForWhatTheyWaitFor(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, n := range []int{1000, 1000, 500} {
		_, from := nodetest.Key(t)
		w.parkJunk(t, ctx, from, n)
	}
	if n := w.parkedNow(t); n != 2500 {
		t.Fatalf("%v records parked, want 2500", n)
	}
	for i := 0; i < 20; i++ {
		_, id := nodetest.Key(t)
		if _, err := w.p.Ingest(ctx, w.fed.Accredit(t, id, protocol.RoleController), service.SourceGossip); err != nil {
			t.Fatal(err)
		}
	}
	w.settle(t, ctx)
	// The marker's own retry is the one re-ingest expected.
	if n := w.reingests(t); n > 2 {
		t.Errorf("%v re-ingests of parked records after 20 good records, want at most 2 (the marker's)", n)
	}
	// The marker leaves parking just after it is stored.
	nodetest.Eventually(t, 5*time.Second, "the 2500 junk consents alone to stay parked", func() bool { return w.parkedNow(t) == 2500 })
}

// TestParkedUntilReferenceArrives: a revocation gossiped before its target
// (and no fetcher to get it) waits for exactly that record.
func TestParkedUntilReferenceArrives(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, id := nodetest.Key(t)
	if _, err := w.p.Ingest(ctx, w.fed.Accredit(t, id, protocol.RoleController), service.SourceGossip); err != nil {
		t.Fatal(err)
	}
	consent := nodetest.Consent(t, key, "research")
	rev := nodetest.Sign(t, key, &protocol.Revocation{Target: protocol.LinkTo(consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()})
	if _, parked, err := w.p.IngestOrParkFrom(ctx, rev, service.SourceGossip, ""); !parked || protocol.CodeOf(err) != protocol.CodeUnknownReference {
		t.Fatalf("revocation: parked %v, %v", parked, err)
	}
	// Another consent of the same issuer is not what it waits for.
	if _, err := w.p.Ingest(ctx, nodetest.Consent(t, key, "other"), service.SourceGossip); err != nil {
		t.Fatal(err)
	}
	if n := w.reingests(t); n != 0 {
		t.Errorf("%v re-ingests after an unrelated record, want 0", n)
	}
	if _, err := w.p.Ingest(ctx, consent, service.SourceGossip); err != nil {
		t.Fatal(err)
	}
	if err := w.p.WaitRecord(ctx, rev.CID()); err != nil {
		t.Fatalf("the parked revocation was not accepted once its target arrived: %v", err)
	}
}

// parkAmendment gossips the amendment of a consent (prev), both by a key
// not yet accredited (id), and requires the amendment to be parked: it
// waits for id's accreditation, then for prev.
func (w *world) parkAmendment(t *testing.T, ctx context.Context) (prev, amendment *protocol.Record, id peer.ID) {
	t.Helper()
	key, id := nodetest.Key(t)
	prev = nodetest.Consent(t, key, "research")
	body, _ := prev.Consent()
	amended := *body
	amended.Purposes = []string{"research", "training"}
	link := protocol.LinkTo(prev.CID())
	amended.Supersedes = &link
	amendment = nodetest.Sign(t, key, &amended)
	if _, parked, err := w.p.IngestOrParkFrom(ctx, amendment, service.SourceGossip, ""); !parked || protocol.CodeOf(err) != protocol.CodeUnauthorizedIssuer {
		t.Fatalf("amendment: parked %v, %v", parked, err)
	}
	return prev, amendment, id
}

// TestParkedExpiresOnFirstTTL: an amendment by a key not yet accredited is
// parked at t; at t+6m the accreditation arrives, the retry finds the
// amended consent missing and parks it again; at t+11m that consent
// arrives, but the amendment expired at t+10m: retries do not extend its
// stay.
func TestParkedExpiresOnFirstTTL(t *testing.T) {
	c := newClock()
	logs := &logLines{}
	w := newWorldWith(t, func(cfg *ingest.Config) {
		cfg.Now = c.now
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		cfg.SummaryEvery = time.Hour
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prev, amendment, id := w.parkAmendment(t, ctx)

	c.advance(6 * time.Minute)
	if _, err := w.p.Ingest(ctx, w.fed.Accredit(t, id, protocol.RoleController), service.SourceFetch); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 5*time.Second, "the amendment's retry", func() bool {
		return w.metric(t, "entente_ingest_total", map[string]string{"source": "parked", "result": "unknown_reference"}) == 1
	})
	if n := w.parkedNow(t); n != 1 {
		t.Fatalf("%v parked after the retry, want the amendment", n)
	}

	c.advance(5 * time.Minute)
	if _, err := w.p.Ingest(ctx, prev, service.SourceFetch); err != nil {
		t.Fatal(err)
	}
	w.settle(t, ctx)
	if held, _ := w.store.Has(amendment.CID()); held {
		t.Error("the amendment was accepted 11 minutes after it was parked: its TTL was refreshed by its retry")
	}
	// The marker's retry is counted as it returns, maybe just after the
	// marker is stored.
	nodetest.Eventually(t, 5*time.Second, "the marker's retry to be counted", func() bool { return w.reingests(t) >= 2 })
	if n := w.reingests(t); n != 2 {
		t.Errorf("%v re-ingests, want 2 (the amendment once, the marker once)", n)
	}
	if n := w.metric(t, "entente_ingest_parking_total", map[string]string{"event": "expired"}); n != 1 {
		t.Errorf("%v expired, want 1", n)
	}
	nodetest.Eventually(t, 5*time.Second, "parking to empty", func() bool { return w.parkedNow(t) == 0 })
	// The summary: the amendment expired, and was never refused (its
	// retry parked it again).
	w.p.Close()
	got := logs.matching("records received")
	if len(got) != 1 || !strings.Contains(got[0], " refused=0 ") || !strings.Contains(got[0], " expired=1") {
		t.Errorf("summary %v, want refused=0 and expired=1", got)
	}
}

// TestParkedBoundPerPeer: one peer parks at most 1 000 records; past them
// its records are dropped (counted), while another peer's still park.
func TestParkedBoundPerPeer(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, greedy := nodetest.Key(t)
	_, other := nodetest.Key(t)
	w.parkJunk(t, ctx, greedy, 1000)
	key, _ := nodetest.Key(t)
	over := nodetest.Consent(t, key, "research")
	if _, parked, err := w.p.IngestOrParkFrom(ctx, over, service.SourceGossip, greedy); parked || protocol.CodeOf(err) != protocol.CodeUnauthorizedIssuer {
		t.Errorf("the peer's 1 001st: parked %v, %v; want refused as unauthorized_issuer, not parked", parked, err)
	}
	if n := w.metric(t, "entente_ingest_parking_total", map[string]string{"event": "peer_full"}); n != 1 {
		t.Errorf("peer_full counted %v, want 1", n)
	}
	w.parkJunk(t, ctx, other, 1)
	// The same record from another peer, already parked, stays parked once.
	if _, parked, _ := w.p.IngestOrParkFrom(ctx, over, service.SourceGossip, other); !parked {
		t.Error("the record from a peer with room was not parked")
	}
	if n := w.parkedNow(t); n != 1002 {
		t.Errorf("%v parked, want 1002", n)
	}
}
