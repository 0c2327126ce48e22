package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/protocol"
)

// TestParkReleasesWhatArrivedMeanwhile: a record whose dependency was
// accepted while it was being judged (after seen, before add) is released
// at once rather than left waiting for something that has come; one
// judged after the arrival waits; one judged longer ago than parking
// remembers is released, to be safe.
func TestParkReleasesWhatArrivedMeanwhile(t *testing.T) {
	fed := nodetest.NewFed(t, "parking-test")
	now := time.Now()
	p := newParking()

	key, id := nodetest.Key(t)
	seen := p.seen()
	p.arrived(fed.Accredit(t, id, protocol.RoleController), now)
	if ok, _ := p.add(nodetest.Consent(t, key, "meanwhile"), "", waitKey{issuer: id}, seen, now); !ok {
		t.Fatal("not parked")
	}
	if got := p.take(now); len(got) != 1 {
		t.Fatalf("%d released, want the consent whose issuer's accreditation came meanwhile", len(got))
	}

	key2, id2 := nodetest.Key(t)
	p.add(nodetest.Consent(t, key2, "after"), "", waitKey{issuer: id2}, p.seen(), now)
	if got := p.take(now); len(got) != 0 {
		t.Fatalf("%d released, want none: nothing it waits for came", len(got))
	}

	key3, id3 := nodetest.Key(t)
	seen = p.seen()
	filler := nodetest.Consent(t, key, "filler")
	for i := 0; i <= recentArrivals; i++ {
		p.arrived(filler, now)
	}
	p.add(nodetest.Consent(t, key3, "long-ago"), "", waitKey{issuer: id3}, seen, now)
	if got := p.take(now); len(got) != 1 {
		t.Fatalf("%d released, want the consent judged before parking's memory", len(got))
	}
	if n := p.count(now); n != 3 {
		t.Errorf("%d parked, want 3 (released ones stay until their retry settles)", n)
	}
	if n := p.count(now.Add(parkedTTL)); n != 0 {
		t.Errorf("%d parked a TTL later, want 0", n)
	}
}

// TestParkingBounds: at most maxParkedPerPeer records from one peer and
// maxParked in all; what does not fit is refused and counted.
func TestParkingBounds(t *testing.T) {
	p := newParking()
	now := time.Now()
	key, id := nodetest.Key(t)
	wait := waitKey{issuer: id}
	n := 0
	add := func(from string) (bool, string) {
		n++
		r, err := protocol.Sign(key, now.UnixMilli()+int64(n), &protocol.Revocation{Target: protocol.LinkTo(protocol.RecordCID([]byte{byte(n), byte(n >> 8)})), Reason: "x", EffectiveAt: 1})
		if err != nil {
			t.Fatal(err)
		}
		return p.add(r, peer.ID(from), wait, p.seen(), now)
	}
	for i := 0; i < maxParkedPerPeer; i++ {
		if ok, why := add("greedy"); !ok {
			t.Fatalf("record %d of one peer refused: %s", i, why)
		}
	}
	if ok, why := add("greedy"); ok || why != "peer_full" {
		t.Fatalf("one peer's record past its share: %v %q, want refused as peer_full", ok, why)
	}
	for peerN := 0; p.count(now) < maxParked; peerN++ {
		for i := 0; i < maxParkedPerPeer && p.count(now) < maxParked; i++ {
			if ok, why := add(fmt.Sprint("peer ", peerN)); !ok {
				t.Fatalf("refused at %d parked: %s", p.count(now), why)
			}
		}
	}
	if ok, why := add("newcomer"); ok || why != "full" {
		t.Fatalf("a record past the total: %v %q, want refused as full", ok, why)
	}
}
