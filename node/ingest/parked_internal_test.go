package ingest

import (
	"testing"
	"time"

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
