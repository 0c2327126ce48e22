package deliver_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/deliver"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/trust"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeIngester stores what it is given (the ingest pipeline's last step).
type storeIngester struct{ st *store.Store }

func (i storeIngester) Ingest(ctx context.Context, r *protocol.Record, _ service.Source) (service.Accepted, error) {
	res, err := i.st.Put(ctx, r)
	return service.Accepted{CID: r.CID(), Seq: res.Seq, New: res.New, Record: r}, err
}

// directory names the hosts as DE's nodes.
type directory []host.Host

func (d directory) NodesOf(j string) []peer.AddrInfo {
	if j != "DE" {
		return nil
	}
	var out []peer.AddrInfo
	for _, h := range d {
		out = append(out, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	return out
}

// red is a TLP:RED notice of DE's authority for DE.
func red(t *testing.T, fed nodetest.Fed) *protocol.Record {
	return nodetest.Sign(t, fed.Authority, &protocol.Incident{Ref: "r", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "s", Recipients: []string{"DE"}})
}

func newService(t *testing.T, h host.Host, key crypto.PrivKey, fed nodetest.Fed, st *store.Store, dir directory, reg prometheus.Registerer) *deliver.Service {
	t.Helper()
	s, err := deliver.New(deliver.Config{Host: h, Store: st, Trust: trust.NewView(fed.File, st), Ingest: storeIngester{st},
		Directory: dir, IsMember: func(peer.ID) bool { return true }, Key: key, Jurisdiction: "DE",
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func keys(t *testing.T, n int) ([]crypto.PrivKey, []peer.ID) {
	ks, ids := make([]crypto.PrivKey, n), make([]peer.ID, n)
	for i := range ks {
		ks[i], ids[i] = nodetest.Key(t)
	}
	return ks, ids
}

func held(t *testing.T, st *store.Store, r *protocol.Record) bool {
	ok, err := st.Has(r.CID())
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestDeliverAcknowledged: a node pushes a TLP:RED notice to the other
// node of its audience, which stores it and acknowledges; the sender
// keeps the verified acknowledgement durably, so that the state reads
// "delivered" again after the service restarts.
func TestDeliverAcknowledged(t *testing.T) {
	ks, ids := keys(t, 2)
	fed := nodetest.NewFed(t, "deliver-test", ids...)
	hosts := nodetest.Hosts(t, 2, ks...)
	stA, stB := nodetest.Store(t), nodetest.Store(t)
	dir := directory(hosts)
	regA := prometheus.NewRegistry()
	a := newService(t, hosts[0], ks[0], fed, stA, dir, regA)
	newService(t, hosts[1], ks[1], fed, stB, dir, nil)
	rec := red(t, fed)
	nodetest.Put(t, stA, rec)
	if got := a.State(rec.CID()); got != nil {
		t.Fatalf("state before the record was accepted: %v", got)
	}
	a.Accepted(rec)
	if list, err := stA.ListOutbox(); err != nil || len(list) != 1 || list[0].Peer != ids[1] {
		t.Fatalf("the outbox right after Accepted: %+v, %v; want one entry for the other node", list, err)
	}
	nodetest.Eventually(t, 10*time.Second, "the acknowledgement", func() bool {
		return a.State(rec.CID())["DE"].State == service.DeliveryDelivered
	})
	if !held(t, stB, rec) {
		t.Fatal("acknowledged, but the receiver does not hold the record")
	}
	d := a.State(rec.CID())["DE"]
	if d.Attempts != 1 || d.AckedAt.IsZero() || len(a.State(rec.CID())) != 1 {
		t.Errorf("state %+v, want one jurisdiction delivered in one attempt with its time", a.State(rec.CID()))
	}
	list, err := stA.ListOutbox()
	if err != nil || len(list) != 1 || !list[0].Acked() {
		t.Fatalf("outbox %+v, %v", list, err)
	}
	ack := protocol.DeliveryAck{Record: rec.CID(), Jurisdiction: "DE", At: list[0].AckedAt, Sig: list[0].Ack}
	if err := ack.Verify(ids[1]); err != nil {
		t.Errorf("the kept acknowledgement does not verify against the receiver: %v", err)
	}
	if n := counter(t, regA, "entente_deliver_attempts_total", "acked"); n != 1 {
		t.Errorf("%v acked attempts counted, want 1", n)
	}

	a.Close()
	again := newService(t, hosts[0], ks[0], fed, stA, dir, nil)
	if got := again.State(rec.CID())["DE"]; got != d {
		t.Errorf("after a restart the state is %+v, want %+v", got, d)
	}
}

// TestDeliverForgedAckRefused: an answer signed by a key other than the
// receiving node's is not an acknowledgement: the entry stays pending and
// the sender tries again, until the node answers with its own signature.
func TestDeliverForgedAckRefused(t *testing.T) {
	ks, ids := keys(t, 2)
	fed := nodetest.NewFed(t, "deliver-test", ids...)
	hosts := nodetest.Hosts(t, 2, ks...)
	stA := nodetest.Store(t)
	regA := prometheus.NewRegistry()
	a := newService(t, hosts[0], ks[0], fed, stA, directory(hosts), regA)
	forger, _ := nodetest.Key(t)
	var signer atomic.Pointer[crypto.PrivKey]
	signer.Store(&forger)
	hosts[1].SetStreamHandler(protocol.DeliverProtocolID, func(s network.Stream) {
		defer s.Close()
		msg, err := io.ReadAll(io.LimitReader(s, protocol.DeliverMaxRequest))
		if err != nil {
			s.Reset()
			return
		}
		raw, _, err := protocol.DecodeDeliverRequest(msg)
		if err != nil {
			s.Reset()
			return
		}
		ack, err := protocol.SignDeliveryAck(*signer.Load(), protocol.RecordCID(raw), "DE", time.Now().UnixMilli())
		if err != nil {
			s.Reset()
			return
		}
		answer, _ := protocol.EncodeDeliverAnswer(&ack)
		s.Write(answer)
	})
	rec := red(t, fed)
	nodetest.Put(t, stA, rec)
	a.Accepted(rec)
	nodetest.Eventually(t, 10*time.Second, "three attempts", func() bool {
		return a.State(rec.CID())["DE"].Attempts >= 3
	})
	if d := a.State(rec.CID())["DE"]; d.State != service.DeliveryPending || !d.AckedAt.IsZero() {
		t.Fatalf("after forged acknowledgements the state is %+v, want pending", d)
	}
	// The counter is counted before the attempt is kept.
	if n := counter(t, regA, "entente_deliver_attempts_total", "bad_ack"); n < 3 {
		t.Fatalf("%v bad acknowledgements counted after three attempts", n)
	}
	if list, err := stA.ListOutbox(); err != nil || len(list) != 1 || list[0].Acked() {
		t.Fatalf("outbox %+v, %v: a forged acknowledgement was kept", list, err)
	}
	signer.Store(&ks[1])
	nodetest.Eventually(t, 10*time.Second, "the node's own acknowledgement", func() bool {
		return a.State(rec.CID())["DE"].State == service.DeliveryDelivered
	})
	hosts[1].RemoveStreamHandler(protocol.DeliverProtocolID)
}

// TestDeliverReceiverRefuses: a node that is not of the record's audience
// answers "refused" and stores nothing; so does one pushed a record that
// travels by gossip.
func TestDeliverReceiverRefuses(t *testing.T) {
	ks, ids := keys(t, 2)
	fed := nodetest.NewFed(t, "deliver-test", ids[0]) // the receiver is no DE node
	hosts := nodetest.Hosts(t, 2, ks...)
	stB := nodetest.Store(t)
	reg := prometheus.NewRegistry()
	newService(t, hosts[1], ks[1], fed, stB, directory(hosts), reg)
	rec := red(t, fed)
	clear := nodetest.Sign(t, fed.Authority, &protocol.Incident{Ref: "c", Jurisdiction: "DE", Severity: protocol.SeverityLow,
		Status: protocol.StatusOpen, TLP: protocol.TLPClear, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "s"})
	for _, r := range []*protocol.Record{rec, clear} {
		req, err := protocol.EncodeDeliverRequest(r.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		answer, err := service.Exchange(context.Background(), hosts[0], ids[1], protocol.DeliverProtocolID, "test", req, protocol.DeliverMaxAnswer, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ack, err := protocol.DecodeDeliverAnswer(r.CID(), answer); err != nil || ack != nil {
			t.Errorf("%s: answer %x (%v), want a refusal", r.CID(), answer, err)
		}
		if held(t, stB, r) {
			t.Errorf("%s: the node stored a record it refused", r.CID())
		}
	}
	// Malformed input resets the stream.
	_, err := service.Exchange(context.Background(), hosts[0], ids[1], protocol.DeliverProtocolID, "test", []byte{0x00}, protocol.DeliverMaxAnswer, 5*time.Second)
	if err == nil {
		t.Error("an empty frame was answered")
	}
	if n := counter(t, reg, "entente_deliver_served_total", "refused"); n != 2 {
		t.Errorf("%v refusals counted, want 2", n)
	}
}

// counter is the value of the counter name whose one label is value.
func counter(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestDeliverDropsNodeOutsideAudience: a target that is no node of the
// audience when its turn comes (the directory named it, its accreditation
// has lapsed since) is never pushed the record; its entry is dropped.
func TestDeliverDropsNodeOutsideAudience(t *testing.T) {
	ks, ids := keys(t, 2)
	fed := nodetest.NewFed(t, "deliver-test", ids[0]) // the second is no DE node
	hosts := nodetest.Hosts(t, 2, ks...)
	stA, stB := nodetest.Store(t), nodetest.Store(t)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := newService(t, hosts[0], ks[0], fed, stA, directory(hosts), regA)
	newService(t, hosts[1], ks[1], fed, stB, directory(hosts), regB)
	rec := red(t, fed)
	nodetest.Put(t, stA, rec)
	a.Accepted(rec)
	nodetest.Eventually(t, 10*time.Second, "the entry dropped", func() bool {
		list, err := stA.ListOutbox()
		return err == nil && len(list) == 0
	})
	if st := a.State(rec.CID()); st != nil {
		t.Errorf("state %+v after the only target left the audience", st)
	}
	if n := counter(t, regA, "entente_deliver_attempts_total", "withheld"); n != 1 {
		t.Errorf("%v withheld attempts, want 1", n)
	}
	if n := counter(t, regB, "entente_deliver_served_total", "acked") + counter(t, regB, "entente_deliver_served_total", "refused"); n != 0 || held(t, stB, rec) {
		t.Errorf("the record was pushed to a node outside its audience")
	}
}
