package store

import (
	"context"
	"sort"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

func affectedIncident(t *testing.T, sg *signer, affected ...peer.ID) *protocol.Record {
	t.Helper()
	var ids []string
	for _, a := range affected {
		ids = append(ids, a.String())
	}
	sort.Strings(ids)
	return sg.sign(t, &protocol.Incident{
		Ref: "INC", Jurisdiction: "DE", Severity: protocol.SeverityHigh, Status: protocol.StatusOpen,
		TLP: protocol.TLPGreen, Affected: ids, Categories: []string{}, DetectedAt: 1, Summary: "s",
	})
}

func ruleset(t *testing.T, sg *signer, j string, version int64) *protocol.Record {
	t.Helper()
	rules := protocol.Rules{ProhibitedPurposes: []string{}, BlockOnIncident: protocol.SeverityNone, Conditions: []protocol.Condition{}}
	return sg.sign(t, &protocol.Ruleset{Jurisdiction: j, Version: version,
		Export: protocol.ExportRules{Destinations: []string{}, Rules: rules},
		Import: protocol.ImportRules{Origins: []string{}, Rules: rules}})
}

func TestDecisionIndexes(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *Store{"disk": openDisk, "memory": openMemory} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			sg := newSigner(t)
			p1, p2, p3 := peerID(t), peerID(t), peerID(t)
			i1 := affectedIncident(t, sg, p1)
			i2 := affectedIncident(t, sg, p1, p2)
			i3 := affectedIncident(t, sg)
			de1, fr1, de2 := ruleset(t, sg, "DE", 1), ruleset(t, sg, "FR", 1), ruleset(t, sg, "DE", 2)
			for _, r := range []*protocol.Record{i1, i2, i3, de1, fr1, de2} {
				if _, err := s.Put(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				who  peer.ID
				want []*protocol.Record
			}{{p1, []*protocol.Record{i1, i2}}, {p2, []*protocol.Record{i2}}, {p3, nil}} {
				got, err := s.IncidentsAffecting(tc.who)
				if err != nil {
					t.Fatal(err)
				}
				mustSameRecords(t, got, tc.want)
			}
			for j, want := range map[string][]*protocol.Record{"DE": {de1, de2}, "FR": {fr1}, "BR": nil} {
				got, err := s.RulesetsOf(j)
				if err != nil {
					t.Fatal(err)
				}
				mustSameRecords(t, got, want)
			}
		})
	}
}

// TestSyncItems: the sync set holds every record but receipts and TLP:RED
// incidents, in (issued_at, CID) order.
func TestSyncItems(t *testing.T) {
	s := openMemory(t)
	defer s.Close()
	sg := newSigner(t)
	var want []*protocol.Record
	for i := 0; i < 5; i++ {
		r := sg.consent(t, "DE")
		want = append(want, r)
	}
	red := sg.sign(t, &protocol.Incident{Ref: "R", Jurisdiction: "DE", Severity: protocol.SeverityLow, Status: protocol.StatusOpen,
		TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{}, DetectedAt: 1, Summary: "s", Recipients: []string{"FR"}})
	green := affectedIncident(t, sg)
	want = append(want, green)
	for _, r := range append([]*protocol.Record{red}, want...) {
		if _, err := s.Put(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].IssuedAt() != want[j].IssuedAt() {
			return want[i].IssuedAt() < want[j].IssuedAt()
		}
		return string(want[i].CID().Bytes()) < string(want[j].CID().Bytes())
	})
	var got []string
	err := s.SyncItems(func(at int64, c cid.Cid) error {
		got = append(got, c.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d sync items, want %d (the TLP:RED notice left out)", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i].CID().String() {
			t.Fatalf("item %d: %s, want %s", i, got[i], want[i].CID())
		}
	}
}
