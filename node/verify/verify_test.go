package verify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/checkpoint"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/verify"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// receipts stores receipts as the ingest pipeline does, and counts them.
type receipts struct {
	st    *store.Store
	calls int
}

func (r *receipts) StoreOwn(ctx context.Context, receipt *protocol.Record, blocks [][]byte) error {
	r.calls++
	_, err := r.st.PutReceipt(ctx, receipt, blocks)
	return err
}

// fetcher has one record to give, and counts what it is asked.
type fetcher struct {
	st    *store.Store
	give  *protocol.Record
	asked []cid.Cid
}

func (f *fetcher) Fetch(ctx context.Context, cids ...cid.Cid) (map[cid.Cid]*protocol.Record, error) {
	f.asked = append(f.asked, cids...)
	out := map[cid.Cid]*protocol.Record{}
	for _, c := range cids {
		if f.give != nil && c.Equals(f.give.CID()) {
			if _, err := f.st.Put(ctx, f.give); err != nil {
				return nil, err
			}
			out[c] = f.give
		}
	}
	return out, nil
}

type world struct {
	svc       *verify.Service
	st        *store.Store
	receipts  *receipts
	fetch     *fetcher
	consent   *protocol.Record
	recipient string
	fed       nodetest.Fed
}

// newWorld is a DE of a ruleset, a platform that gave a consent, and a
// recipient platform; the consent is held unless fetchConsent, when only
// the fetcher has it.
func newWorld(t *testing.T, fetchConsent bool) *world {
	key, id := nodetest.Key(t)
	w := &world{fed: nodetest.NewFed(t, "verify-test", id)} // the node is a founding node
	v := w.fed.View(t)
	w.st = v.Store()
	pkey, pid := nodetest.Key(t)
	_, rid := nodetest.Key(t)
	w.recipient = rid.String()
	w.consent = nodetest.Consent(t, pkey, "research")
	nodetest.Put(t, w.st, w.fed.Ruleset(t), w.fed.Accredit(t, pid, protocol.RoleController), w.fed.Accredit(t, rid, protocol.RoleController))
	w.fetch = &fetcher{st: w.st}
	if fetchConsent {
		w.fetch.give = w.consent
	} else {
		nodetest.Put(t, w.st, w.consent)
	}
	cps, err := checkpoint.New(checkpoint.Config{Store: w.st, Key: key, Federation: "verify-test", Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cps.Close)
	w.receipts = &receipts{st: w.st}
	w.svc, err = verify.New(verify.Config{Store: w.st, Trust: v, Key: key, Fetch: w.fetch, Receipts: w.receipts,
		Checkpoints: cps, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) request() protocol.TransferRequest {
	return protocol.TransferRequest{Consent: protocol.LinkTo(w.consent.CID()), From: "DE", To: "DE", Recipient: w.recipient,
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30}
}

// TestVerifySignsStoresAndBundles: an allowed transfer is signed, stored
// through the Storer and bundled; the bundle checks offline.
func TestVerifySignsStoresAndBundles(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	v, err := w.svc.Verify(ctx, w.request())
	if err != nil {
		t.Fatal(err)
	}
	if !v.Decision.Allowed() || w.receipts.calls != 1 {
		t.Fatalf("verdict %s (%v), %d stores", v.Decision.Verdict, v.Decision.Failed(), w.receipts.calls)
	}
	if len(w.fetch.asked) != 0 {
		t.Errorf("fetched %v for a held consent", w.fetch.asked)
	}
	b, err := w.svc.Bundle(v.Receipt.CID(), v.Item)
	if err != nil {
		t.Fatal(err)
	}
	w.checks(t, b)
	if _, err := w.svc.Bundle(w.consent.CID(), 0); !errors.Is(err, service.ErrNoBundle) {
		t.Errorf("the bundle of a consent: %v", err)
	}
}

// checks has the bundle pass the offline check.
func (w *world) checks(t *testing.T, b *protocol.Bundle) *protocol.BundleReport {
	t.Helper()
	car, err := b.MarshalCAR()
	if err != nil {
		t.Fatal(err)
	}
	f := w.fed.File
	rep := protocol.CheckBundleCAR(car, protocol.NewBundleTrust(f.Name, f.Authorities(), f.FoundingNodes()))
	if !rep.OK() {
		t.Fatalf("the bundle does not check: %v", rep.Err())
	}
	return rep
}

// TestVerifyFetchesAMissingConsent: a consent the node lacks is asked of
// peers before deciding.
func TestVerifyFetchesAMissingConsent(t *testing.T) {
	w := newWorld(t, true)
	v, err := w.svc.Verify(context.Background(), w.request())
	if err != nil || !v.Decision.Allowed() {
		t.Fatalf("verify: %v %v", err, v)
	}
	if len(w.fetch.asked) != 1 || !w.fetch.asked[0].Equals(w.consent.CID()) {
		t.Errorf("asked %v, want the consent", w.fetch.asked)
	}
}

// TestDecideIsADryRun: Decide stores nothing; a batch stores once.
func TestDecideIsADryRun(t *testing.T) {
	w := newWorld(t, false)
	before := w.st.Len()
	d, err := w.svc.Decide(w.request())
	if err != nil || !d.Allowed() || w.st.Len() != before || w.receipts.calls != 0 {
		t.Fatalf("Decide: %v, stored %d, %d stores", err, w.st.Len()-before, w.receipts.calls)
	}
	deny := w.request()
	deny.Purpose = "marketing"
	vs, err := w.svc.VerifyBatch(context.Background(), []protocol.TransferRequest{w.request(), deny})
	if err != nil || len(vs) != 2 || !vs[0].Decision.Allowed() || vs[1].Decision.Allowed() || w.receipts.calls != 1 {
		t.Fatalf("batch: %v, %d stores", err, w.receipts.calls)
	}
	// One receipt for the batch; each decision has its bundle.
	if !vs[0].Receipt.CID().Equals(vs[1].Receipt.CID()) || vs[0].Item != 0 || vs[1].Item != 1 {
		t.Fatalf("batch receipts %s/%d and %s/%d", vs[0].Receipt.CID(), vs[0].Item, vs[1].Receipt.CID(), vs[1].Item)
	}
	for _, v := range vs {
		b, err := w.svc.Bundle(v.Receipt.CID(), v.Item)
		if err != nil {
			t.Fatal(err)
		}
		if rep := w.checks(t, b); rep.Block.Verdict != v.Decision.Verdict || rep.Decision.Verdict != v.Decision.Verdict {
			t.Errorf("item %d: the bundle's decision is %s, recomputed %s, want %s", v.Item, rep.Block.Verdict, rep.Decision.Verdict, v.Decision.Verdict)
		}
	}
	for _, item := range []int{-1, 2} {
		if _, err := w.svc.Bundle(vs[0].Receipt.CID(), item); !errors.Is(err, service.ErrNoBundle) {
			t.Errorf("the bundle of item %d of 2: %v", item, err)
		}
	}
	bad := w.request()
	bad.Tier = -1
	if _, err := w.svc.VerifyBatch(context.Background(), []protocol.TransferRequest{w.request(), bad}); protocol.CodeOf(err) != protocol.CodeInvalidBody {
		t.Errorf("a batch with an invalid request: %v", err)
	}
	w.svc.Close()
	if _, err := w.svc.Verify(context.Background(), w.request()); !errors.Is(err, service.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
