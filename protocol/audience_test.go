package protocol

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// TestAudience tries every kind and every TLP level against nodes of the
// recipient jurisdiction, of another, a founding node, and a node whose
// accreditation lapsed: what gossip, sync and fetch would do with it.
func TestAudience(t *testing.T) {
	v := federation(t)
	lapsedDE := seedKey(0x30)
	v.hold(accredit(t, authDE, lapsedDE, "DE", RoleNode, windowFrom, t0-day))
	nodeFR := seedKey(0x31)
	v.hold(accredit(t, authFR, nodeFR, "FR", RoleNode, windowFrom, windowUntil))
	incident := func(tlp string, recipients ...string) *Record {
		return incidentBy(t, regDE, t0, func(b *Incident) { b.TLP, b.Recipients = tlp, recipients })
	}
	type want struct{ gossiped, nodeDE, foundingDE, lapsedDE, nodeFR bool }
	all := want{true, true, true, true, true}
	for _, c := range []struct {
		name string
		rec  *Record
		want want
	}{
		{"accreditation", accredit(t, authDE, ctrlDE, "DE", RoleController, windowFrom, windowUntil), all},
		{"ruleset", rulesetBy(t, authDE, "DE", 1, nil), all},
		{"consent", consentBy(t, ctrlDE, t0, nil), all},
		{"revocation", revoke(t, ctrlDE, consentBy(t, ctrlDE, t0, nil), t0), all},
		{"incident clear", incident(TLPClear), all},
		{"incident green", incident(TLPGreen), all},
		{"incident amber", incident(TLPAmber), all},
		{"incident amber+strict", incident(TLPAmberStrict), all},
		{"incident red to DE", incident(TLPRed, "DE"), want{false, true, true, false, false}},
		// A DE notice for FR: the issuer's jurisdiction keeps it too.
		{"incident red to FR", incident(TLPRed, "FR"), want{false, true, true, false, true}},
		{"receipt", receiptBy(t, nodeDE, t0), want{false, true, true, true, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := AudienceOf(c.rec)
			if a.Gossiped() != c.want.gossiped || a.Synced() != c.want.gossiped {
				t.Errorf("gossiped %v, synced %v; want %v", a.Gossiped(), a.Synced(), c.want.gossiped)
			}
			if red := c.rec.Kind() == KindIncident && !c.want.gossiped; a.Delivered() != red {
				t.Errorf("delivered %v, want %v", a.Delivered(), red)
			}
			for _, n := range []struct {
				name string
				ok   bool
				id   crypto.PrivKey
			}{
				{"DE node", c.want.nodeDE, nodeDE},
				{"DE founding node", c.want.foundingDE, foundingDE},
				{"DE node whose accreditation lapsed", c.want.lapsedDE, lapsedDE},
				{"FR node", c.want.nodeFR, nodeFR},
			} {
				got, err := MayReceive(v, c.rec, keyID(n.id), t0)
				if err != nil || got != n.ok {
					t.Errorf("%s may receive it: %v (%v), want %v", n.name, got, err, n.ok)
				}
				if c.rec.Kind() != KindReceipt {
					continue
				}
				// A receipt's decision blocks go where it goes.
				if got, err := MayReceiveBlock(v, keyID(n.id), t0); err != nil || got != n.ok {
					t.Errorf("%s may receive its decision blocks: %v (%v), want %v", n.name, got, err, n.ok)
				}
			}
		})
	}
}

// TestAudienceRedJurisdictions: a TLP:RED notice's audience is its own
// jurisdiction and its recipients, a sorted set however the recipients
// name them; a FR node does not receive a DE notice for BR.
func TestAudienceRedJurisdictions(t *testing.T) {
	v := federation(t)
	nodeFR := seedKey(0x31)
	v.hold(accredit(t, authFR, nodeFR, "FR", RoleNode, windowFrom, windowUntil))
	for _, c := range []struct {
		recipients []string
		want       []string
	}{
		{[]string{"FR"}, []string{"DE", "FR"}},
		{[]string{"DE"}, []string{"DE"}},
		{[]string{"BR", "FR"}, []string{"BR", "DE", "FR"}},
		{[]string{"BR"}, []string{"BR", "DE"}},
	} {
		rec := incidentBy(t, regDE, t0, func(b *Incident) { b.TLP, b.Recipients = TLPRed, c.recipients })
		a := AudienceOf(rec)
		if !slices.Equal(a.Jurisdictions, c.want) || a.Members || a.OnRequest {
			t.Errorf("recipients %v: audience %+v, want jurisdictions %v", c.recipients, a, c.want)
		}
		got, err := MayReceive(v, rec, keyID(nodeFR), t0)
		if want := slices.Contains(c.want, "FR"); err != nil || got != want {
			t.Errorf("recipients %v: FR node may receive: %v (%v), want %v", c.recipients, got, err, want)
		}
	}
}
