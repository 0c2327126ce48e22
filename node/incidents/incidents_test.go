package incidents_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/entente-net/entente/node/incidents"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func notice(t *testing.T, key crypto.PrivKey, at int64, tlp, status string, prev *protocol.Record) *protocol.Record {
	t.Helper()
	b := &protocol.Incident{
		Ref: "R-1", Jurisdiction: "DE", Severity: protocol.SeverityHigh, Status: status, TLP: tlp,
		Affected: []string{}, Categories: []string{"face"}, DetectedAt: at - 1000, Summary: status,
	}
	if tlp == protocol.TLPRed {
		b.Recipients = []string{"FR"}
	}
	if prev != nil {
		l := protocol.LinkTo(prev.CID())
		b.Follows = &l
	}
	r, err := protocol.Sign(key, at, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func model(t *testing.T, s *store.Store, d incidents.Deliveries) *incidents.Model {
	t.Helper()
	m, err := incidents.New(incidents.Config{Store: s, Deliveries: d})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func cids(rs ...*protocol.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.CID().String()
	}
	return out
}

// TestStateIsTheLatestNotice: the state is the notice of greatest
// issued_at; on a tie a notice beats the one it follows; a chain may
// branch, and every notice names the same incident.
func TestStateIsTheLatestNotice(t *testing.T) {
	s := nodetest.Store(t)
	key, _ := nodetest.Key(t)
	at := time.Now().UnixMilli()
	root := notice(t, key, at, protocol.TLPClear, protocol.StatusOpen, nil)
	tie := notice(t, key, at, protocol.TLPClear, protocol.StatusContained, root) // same ms: the follower wins
	later := notice(t, key, at+2000, protocol.TLPClear, protocol.StatusResolved, root)
	older := notice(t, key, at+1000, protocol.TLPClear, protocol.StatusOpen, tie) // accepted last, but older
	nodetest.Put(t, s, root, tie, later, older)
	m := model(t, s, nil)

	for _, n := range []*protocol.Record{root, tie, later, older} {
		e, err := m.Get(n.CID())
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != root.CID().String() || e.Status != protocol.StatusResolved || !e.State.CID().Equals(later.CID()) {
			t.Errorf("Get(%s): id %s, status %s; want the root's incident in later's state", n.CID(), e.ID, e.Status)
		}
		if !slices.Equal(e.Notices, cids(root, tie, later, older)) {
			t.Errorf("notices %v, want in acceptance order", e.Notices)
		}
	}
	evs, scanned, err := m.Events(service.IncidentQuery{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || scanned != 4 {
		t.Fatalf("%d events, scanned to %d; want 4, 4", len(evs), scanned)
	}
	wantStatus := []string{protocol.StatusOpen, protocol.StatusContained, protocol.StatusResolved, protocol.StatusResolved}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || ev.Incident.Status != wantStatus[i] || len(ev.Incident.Notices) != i+1 {
			t.Errorf("event %d: seq %d, status %s, %d notices; want seq %d, %s, %d notices",
				i, ev.Seq, ev.Incident.Status, len(ev.Incident.Notices), i+1, wantStatus[i], i+1)
		}
	}
	// Filters apply to the entry as of each event; the cursor passes the
	// others.
	evs, scanned, err = m.Events(service.IncidentQuery{Status: protocol.StatusContained}, 0, 0)
	if err != nil || len(evs) != 1 || evs[0].Seq != 2 || scanned != 4 {
		t.Errorf("contained events: %d, scanned %d, err %v; want seq 2 alone, scanned 4", len(evs), scanned, err)
	}
	if evs, scanned, _ := m.Events(service.IncidentQuery{}, 4, 0); len(evs) != 0 || scanned != 4 {
		t.Errorf("nothing new: %d events, scanned %d", len(evs), scanned)
	}
	acc := nodetest.Sign(t, key, &protocol.Revocation{Target: protocol.LinkTo(root.CID()), Reason: "x", EffectiveAt: at})
	nodetest.Put(t, s, acc)
	if _, err := m.Get(acc.CID()); !errors.Is(err, incidents.ErrNotIncident) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a revocation: %v, want ErrNotIncident (a not found)", err)
	}
}

type deliveries map[string]map[string]service.Delivery

func (d deliveries) State(c cid.Cid) map[string]service.Delivery { return d[c.String()] }

func TestDeliveryOfRedIncidents(t *testing.T) {
	s := nodetest.Store(t)
	key, _ := nodetest.Key(t)
	at := time.Now().UnixMilli()
	red := notice(t, key, at, protocol.TLPRed, protocol.StatusOpen, nil)
	redNext := notice(t, key, at+1, protocol.TLPRed, protocol.StatusResolved, red)
	clear := notice(t, key, at, protocol.TLPClear, protocol.StatusOpen, nil)
	nodetest.Put(t, s, red, redNext, clear)
	pending := map[string]service.Delivery{"FR": {State: service.DeliveryPending, Attempts: 2}}
	d := deliveries{redNext.CID().String(): pending, clear.CID().String(): pending}

	page, err := model(t, s, d).List(service.IncidentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Incidents) != 2 || page.Next != 0 {
		t.Fatalf("%d incidents, next %d", len(page.Incidents), page.Next)
	}
	if got := page.Incidents[0].Delivery; got["FR"] != pending["FR"] || len(got) != 1 {
		t.Errorf("the red incident's delivery %v, want its newest notice's %v", got, pending)
	}
	if got := page.Incidents[1].Delivery; got != nil {
		t.Errorf("a clear incident shows a delivery: %v", got)
	}
	if page, err := model(t, s, nil).List(service.IncidentQuery{}); err != nil || page.Incidents[0].Delivery != nil {
		t.Errorf("without a delivery service: %v, %v", err, page.Incidents[0].Delivery)
	}
	// Visible keeps a page to what the caller may see, and the cursor to it.
	page, err = model(t, s, nil).List(service.IncidentQuery{Limit: 1, Visible: func(e *service.Incident) bool { return e.TLP != protocol.TLPRed }})
	if err != nil || len(page.Incidents) != 1 || page.Incidents[0].ID != clear.CID().String() || page.Next != 0 {
		t.Errorf("visible page: %+v, %v", page, err)
	}
}

// TestEventsShared: the stream's events are computed once per notice and
// shared by its subscribers, with the same content each time; a TLP:RED
// incident's delivery state, which moves, is read afresh at each call.
func TestEventsShared(t *testing.T) {
	s := nodetest.Store(t)
	key, _ := nodetest.Key(t)
	at := time.Now().UnixMilli()
	red := notice(t, key, at, protocol.TLPRed, protocol.StatusOpen, nil)
	redNext := notice(t, key, at+1, protocol.TLPRed, protocol.StatusResolved, red)
	nodetest.Put(t, s, red, redNext)
	d := deliveries{}
	m := model(t, s, d)

	first, scanned, err := m.Events(service.IncidentQuery{}, 0, 10)
	if err != nil || len(first) != 2 || scanned != 2 {
		t.Fatalf("Events: %d events, scanned %d, %v", len(first), scanned, err)
	}
	if first[0].Incident.Status != protocol.StatusOpen || first[1].Incident.Status != protocol.StatusResolved {
		t.Errorf("events as of each notice: %s then %s", first[0].Incident.Status, first[1].Incident.Status)
	}
	if first[1].Incident.Delivery != nil {
		t.Errorf("a delivery state before any: %v", first[1].Incident.Delivery)
	}
	delivered := map[string]service.Delivery{"FR": {State: service.DeliveryDelivered, Attempts: 1}}
	d[redNext.CID().String()] = delivered
	again, _, err := m.Events(service.IncidentQuery{}, 0, 10)
	if err != nil || len(again) != 2 {
		t.Fatalf("again: %d events, %v", len(again), err)
	}
	if again[0].Incident != first[0].Incident {
		t.Error("the first notice's event was computed again, not shared")
	}
	if got := again[1].Incident.Delivery; got["FR"] != delivered["FR"] {
		t.Errorf("the red incident's delivery %v, want the new state %v", got, delivered)
	}
	if first[1].Incident.Delivery != nil {
		t.Error("the delivery state was written into the shared event")
	}
	// A filter applies to the shared events as to computed ones.
	if evs, _, err := m.Events(service.IncidentQuery{Status: protocol.StatusResolved}, 0, 10); err != nil || len(evs) != 1 || evs[0].Seq != 2 {
		t.Errorf("filtered: %+v, %v", evs, err)
	}
}

// TestEventsFromMemoryAndFromTheIndex: Events answers the same whether the
// store still holds the notices after `after` in memory (store.Recent) or
// it reads them from the index, with and without a jurisdiction.
func TestEventsFromMemoryAndFromTheIndex(t *testing.T) {
	s := nodetest.Store(t)
	key, _ := nodetest.Key(t)
	at := time.Now().UnixMilli()
	var recs []*protocol.Record
	for i := range 300 { // more than the store keeps in memory
		r, err := protocol.Sign(key, at+int64(i), &protocol.Incident{Ref: fmt.Sprintf("R-%d", i), Jurisdiction: []string{"DE", "FR"}[i%2],
			Severity: protocol.SeverityLow, Status: protocol.StatusOpen, TLP: protocol.TLPClear, Affected: []string{},
			Categories: []string{"face"}, DetectedAt: at, Summary: "s"})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	nodetest.Put(t, s, recs...)
	m := model(t, s, nil)
	for _, j := range []string{"", "FR"} {
		for _, after := range []uint64{0, 40, 250, 299, 300} {
			evs, scanned, err := m.Events(service.IncidentQuery{Jurisdiction: j}, after, 20)
			if err != nil {
				t.Fatal(err)
			}
			entries, _, err := s.List(store.Query{Kind: protocol.KindIncident, Jurisdiction: j, After: after, Limit: 20})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(entries) {
				t.Fatalf("jurisdiction %q after %d: %d events, the index %d notices", j, after, len(evs), len(entries))
			}
			for i, e := range entries {
				if evs[i].Seq != e.Seq || evs[i].Incident.ID != e.Record.CID().String() {
					t.Fatalf("jurisdiction %q after %d: event %d is seq %d, the index's %d", j, after, i, evs[i].Seq, e.Seq)
				}
			}
			if len(entries) > 0 && scanned < entries[len(entries)-1].Seq || scanned < after {
				t.Errorf("jurisdiction %q after %d: scanned %d, before the last event", j, after, scanned)
			}
		}
	}
}
