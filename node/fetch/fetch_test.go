package fetch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/fetch"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ingester stores what it is given, unchecked, and counts it.
type ingester struct {
	st  *store.Store
	got []cid.Cid
}

func (i *ingester) Ingest(ctx context.Context, r *protocol.Record, src service.Source) (service.Accepted, error) {
	if src != service.SourceFetch {
		return service.Accepted{}, errors.New("not from fetch")
	}
	i.got = append(i.got, r.CID())
	res, err := i.st.Put(ctx, r)
	return service.Accepted{CID: r.CID(), Seq: res.Seq, New: res.New, Record: r}, err
}

// TestFetchAndAudience: a client gets what the server holds and may give
// it; a TLP:RED notice for DE is withheld from a peer that is no DE node
// until it is one; what no one holds is absent; a closed service fetches
// nothing.
func TestFetchAndAudience(t *testing.T) {
	fed := nodetest.NewFed(t, "fetch-test")
	hosts := nodetest.Hosts(t, 2)
	server, client := hosts[0], hosts[1]
	serverView := fed.View(t)
	regKey, reg := nodetest.Key(t)
	acc := fed.Accredit(t, reg, protocol.RoleRegulator)
	red := nodetest.Sign(t, regKey, &protocol.Incident{Ref: "r", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "s", Recipients: []string{"DE"}})
	nodetest.Put(t, serverView.Store(), acc, red)

	srv, err := fetch.New(fetch.Config{Host: server, Store: serverView.Store(), Trust: serverView,
		Ingest: &ingester{st: serverView.Store()}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	clientView := fed.View(t)
	in := &ingester{st: clientView.Store()}
	cl, err := fetch.New(fetch.Config{Host: client, Store: clientView.Store(), Trust: clientView, Ingest: in})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	absent := protocol.RecordCID([]byte("absent"))
	got, err := cl.Fetch(ctx, acc.CID(), red.CID(), absent)
	if err != nil {
		t.Fatal(err)
	}
	if got[acc.CID()] == nil || got[red.CID()] != nil || got[absent] != nil || len(in.got) != 1 {
		t.Fatalf("fetched %v (ingested %v); want the accreditation alone", got, in.got)
	}
	// The client becomes a DE node in the server's eyes.
	nodetest.Put(t, serverView.Store(), fed.Accredit(t, client.ID(), protocol.RoleNode))
	recs, err := cl.FetchFrom(ctx, server.ID(), []cid.Cid{red.CID()})
	if err != nil || recs[red.CID()] == nil {
		t.Fatalf("a DE node was refused the notice for DE: %v %v", recs, err)
	}
	if _, err := cl.Fetch(ctx, cid.NewCidV0(red.CID().Hash())); err == nil {
		t.Error("fetched a CID that is not a record ID")
	}

	// A decision block of a receipt the server holds: any member may have
	// it by CID; it is checked and decoded, not ingested; records and
	// absent blocks are not blocks.
	nodeKey, _ := nodetest.Key(t)
	blk := &protocol.DecisionBlock{Request: protocol.TransferRequest{Consent: protocol.LinkTo(acc.CID()), From: "DE", To: "DE",
		Sender: reg.String(), Recipient: reg.String(), Purpose: "p", Categories: []string{"face"}, At: 1},
		Verdict: protocol.VerdictDeny, Checks: []protocol.Check{{ID: protocol.CheckConsentKnown, Reason: protocol.ReasonNotConsent, Detail: "d"}}, Evidence: []protocol.Link{}}
	enc, blockID, err := blk.Encode()
	if err != nil {
		t.Fatal(err)
	}
	receipt := nodetest.Sign(t, nodeKey, protocol.NewReceipt([]cid.Cid{blockID}, protocol.Checkpoint{Root: make([]byte, 32)}))
	if _, err := serverView.Store().PutReceipt(ctx, receipt, []store.Block{{Data: enc, Request: &blk.Request}}); err != nil {
		t.Fatal(err)
	}
	ingested := len(in.got)
	blocks, err := cl.FetchBlocks(ctx, blockID, acc.CID(), absent)
	if err != nil || len(blocks) != 1 || string(blocks[blockID]) != string(enc) || len(in.got) != ingested {
		t.Fatalf("FetchBlocks: %d blocks, %v, ingested %d", len(blocks), err, len(in.got)-ingested)
	}
	cl.Close()
	cl.Close()
	if _, err := cl.Fetch(ctx, acc.CID()); !errors.Is(err, service.ErrClosed) {
		t.Errorf("Fetch after Close: %v", err)
	}
}
