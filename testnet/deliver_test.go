package testnet

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// TestDeliverRedWhileRecipientDown: in a DE–FR–BR federation whose FR
// node is down, a DE regulator publishes a TLP:RED notice for FR. The DE
// node keeps it in its outbox across a restart (FR still down); once FR
// is back it receives the notice by direct delivery and acknowledges it,
// and DE's delivery state says so. BR's node never holds the notice, and
// asking for it by CID gets nothing.
func TestDeliverRedWhileRecipientDown(t *testing.T) {
	net, err := Start(Options{Dir: t.TempDir(), API: true, DeliverBackoff: node.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	de, fr, br := net.NodeOf("DE"), net.NodeOf("FR"), net.NodeOf("BR")
	regulator, err := net.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.WaitAll(ctx, regulator.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
	if err := fr.Stop(); err != nil {
		t.Fatal(err)
	}

	red, err := Sign(regulator.Key, &protocol.Incident{Ref: "DE-RED-1", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "for FR's eyes only", Recipients: []string{"FR"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Submit(ctx, de, red); err != nil {
		t.Fatal(err)
	}
	// The entry is durable before the submit returns.
	if st := de.Deliveries(red.CID()); st["FR"].State != service.DeliveryPending || len(st) != 1 {
		t.Fatalf("DE's delivery state right after the submit: %+v, want FR pending (and no other jurisdiction: DE has no other node)", st)
	}
	if err := net.waitUntil(ctx, "a failed push to the FR node", func() bool { return de.Deliveries(red.CID())["FR"].Attempts >= 2 }); err != nil {
		t.Fatal(err)
	}

	// DE restarts on its data while FR is still down: the outbox survives.
	if err := de.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := de.Restart(); err != nil {
		t.Fatal(err)
	}
	if st := de.Deliveries(red.CID())["FR"]; st.State != service.DeliveryPending || st.Attempts < 2 {
		t.Fatalf("after DE's restart the state is %+v, want pending with the attempts made", st)
	}

	if err := fr.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := fr.Services().Ingest.WaitRecord(ctx, red.CID()); err != nil {
		t.Fatalf("the FR node never received the notice: %v", err)
	}
	// Ingest counts a record once its commit has returned, which may be
	// just after the store has shown it to WaitRecord.
	delivered := func() float64 {
		return metric(t, fr, "entente_ingest_total", map[string]string{"source": "deliver", "result": "accepted"})
	}
	if err := net.waitUntil(ctx, "the FR node counting the notice's delivery", func() bool { return delivered() > 0 }); err != nil || delivered() != 1 {
		t.Errorf("the FR node accepted %v records by direct delivery, want 1 (the notice): %v", delivered(), err)
	}
	if err := net.WaitDelivered(ctx, de, red.CID(), "FR"); err != nil {
		t.Fatal(err)
	}
	if st := de.Deliveries(red.CID())["FR"]; st.AckedAt.IsZero() || st.AckedAt.After(time.Now()) {
		t.Errorf("delivered with acknowledgement time %v", st.AckedAt)
	}
	// FR, having accepted it, delivers it to the rest of the audience
	// (DE, which holds it already and acknowledges).
	if err := net.WaitDelivered(ctx, fr, red.CID(), "DE"); err != nil {
		t.Fatal(err)
	}

	// BR is not of the audience: nothing pushed it there, and asking for
	// it by CID (DE and FR hold it) gets "not held".
	got, err := br.Services().Fetch.Fetch(ctx, red.CID())
	if err != nil || len(got) != 0 {
		t.Errorf("the BR node fetched %v (%v); want nothing", got, err)
	}
	withheld := metric(t, de, "entente_fetch_records_served_total", map[string]string{"status": "withheld"}) +
		metric(t, fr, "entente_fetch_records_served_total", map[string]string{"status": "withheld"})
	if withheld < 1 {
		t.Errorf("neither DE nor FR withheld the notice from BR's fetch")
	}
	if ok, err := br.Store().Has(red.CID()); err != nil || ok {
		t.Errorf("the BR node holds the notice: %v %v", ok, err)
	}
	// Nor is it in any node's sync set (reconciled with every peer).
	for _, m := range net.Running() {
		if slices.Contains(syncSetOf(t, m), red.CID().String()) {
			t.Errorf("the %s node's sync set holds the notice", m.Jurisdiction())
		}
	}
	if _, ok := de.Deliveries(red.CID())["BR"]; ok {
		t.Error("DE has a delivery to BR")
	}
	// Through the API: DE's operator sees the notice with its delivery to
	// FR; a caller without a token sees it on no node, nor does BR's
	// operator.
	get := func(m *Member, token string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.APIAddr()+"/v1/incidents/"+red.CID().String(), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := get(de, de.Token)
	var entry service.Incident
	if err := json.Unmarshal(body, &entry); status != http.StatusOK || err != nil || entry.Delivery["FR"].State != service.DeliveryDelivered {
		t.Errorf("the DE operator's view of the notice: %d %s", status, body)
	}
	for _, c := range []struct {
		m     *Member
		token string
	}{{de, ""}, {fr, ""}, {br, ""}, {br, br.Token}} {
		if status, body := get(c.m, c.token); status != http.StatusNotFound {
			t.Errorf("the %s node, token %v: %d %s", c.m.Jurisdiction(), c.token != "", status, body)
		}
	}
}

// metric sums the series of the metric name of m whose labels include
// labels.
func metric(t *testing.T, m *Member, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
		}
	}
	return sum
}

// TestDeliverReceipts: a receipt signed by the DE node for a DE → BR
// transfer is delivered to the BR node with its decision block, and
// registered there; the FR node, which the decision does not concern,
// never gets it; the DE node's delivery state says BR has it.
func TestDeliverReceipts(t *testing.T) {
	net, err := Start(Options{Dir: t.TempDir(), API: true, DeliverBackoff: node.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := NewTransferWorld(ctx, net)
	if err != nil {
		t.Fatal(err)
	}
	de, fr, br := net.NodeOf("DE"), net.NodeOf("FR"), net.NodeOf("BR")
	v, err := de.Services().Verify.Verify(ctx, w.Request)
	if err != nil || !v.Decision.Allowed() {
		t.Fatalf("verify: %v %+v", err, v)
	}
	receipt := v.Receipt.CID()
	if err := net.WaitDelivered(ctx, de, receipt, "BR"); err != nil {
		t.Fatal(err)
	}
	if st := de.Deliveries(receipt); len(st) != 1 {
		t.Errorf("the DE node delivers the receipt to %v; want BR only (DE is its own)", st)
	}
	body, _ := v.Receipt.Receipt()
	if b, err := br.Store().GetBlock(body.Decisions[0].Cid); err != nil || protocol.RecordCID(b) != body.Decisions[0].Cid {
		t.Errorf("the BR node's copy of the decision block: %v", err)
	}
	entries, _, err := br.Store().Decisions(store.DecisionQuery{Consent: w.Consent.CID()})
	if err != nil || len(entries) != 1 || !entries[0].Receipt.Equals(receipt) {
		t.Errorf("the BR node's register: %+v, %v", entries, err)
	}
	if ok, _ := fr.Store().Has(receipt); ok {
		t.Error("the FR node holds a receipt of a DE → BR transfer")
	}
	// The BR node does not deliver it on: the node that signed it does.
	if st := br.Deliveries(receipt); len(st) != 0 {
		t.Errorf("the BR node delivers the receipt too: %v", st)
	}
}
