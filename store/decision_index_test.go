package store

import (
	"context"
	"sort"
	"testing"

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
