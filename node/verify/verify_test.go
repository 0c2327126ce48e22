package verify_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
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

func (r *receipts) StoreOwn(ctx context.Context, receipt *protocol.Record, blocks []store.Block) error {
	r.calls++
	_, err := r.st.PutReceipt(ctx, receipt, blocks)
	return err
}

// fetcher has records and blocks to give (records are stored as the
// fetch service's ingest would), and counts what it is asked.
type fetcher struct {
	st     *store.Store
	give   []*protocol.Record
	blocks map[cid.Cid][]byte
	asked  []cid.Cid
}

func (f *fetcher) Fetch(ctx context.Context, cids ...cid.Cid) (map[cid.Cid]*protocol.Record, error) {
	f.asked = append(f.asked, cids...)
	out := map[cid.Cid]*protocol.Record{}
	for _, c := range cids {
		for _, r := range f.give {
			if c.Equals(r.CID()) {
				if _, err := f.st.Put(ctx, r); err != nil {
					return nil, err
				}
				out[c] = r
			}
		}
	}
	return out, nil
}

func (f *fetcher) FetchBlocks(ctx context.Context, cids ...cid.Cid) (map[cid.Cid][]byte, error) {
	f.asked = append(f.asked, cids...)
	out := map[cid.Cid][]byte{}
	for _, c := range cids {
		if b, ok := f.blocks[c]; ok {
			out[c] = b
		}
	}
	return out, nil
}

type world struct {
	svc       *verify.Service
	cps       *heldCheckpoints
	st        *store.Store
	receipts  *receipts
	fetch     *fetcher
	consent   *protocol.Record
	platform  crypto.PrivKey // the consent's issuer
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
	w.platform = pkey
	_, rid := nodetest.Key(t)
	w.recipient = rid.String()
	w.consent = nodetest.Consent(t, pkey, "research")
	nodetest.Put(t, w.st, w.fed.Ruleset(t), w.fed.Accredit(t, pid, protocol.RoleController), w.fed.Accredit(t, rid, protocol.RoleController))
	w.fetch = &fetcher{st: w.st}
	if fetchConsent {
		w.fetch.give = []*protocol.Record{w.consent}
	} else {
		nodetest.Put(t, w.st, w.consent)
	}
	cps, err := checkpoint.New(checkpoint.Config{Store: w.st, Key: key, Federation: "verify-test", Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cps.Close)
	w.receipts = &receipts{st: w.st}
	w.cps = &heldCheckpoints{Service: cps}
	w.svc, err = verify.New(verify.Config{Store: w.st, Trust: v, Key: key, Fetch: w.fetch, Receipts: w.receipts,
		Checkpoints: w.cps, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) request() protocol.TransferRequest {
	return protocol.TransferRequest{Consent: protocol.LinkTo(w.consent.CID()), From: "DE", To: "DE", Sender: w.consent.Issuer().String(), Recipient: w.recipient,
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

// TestVerifyUnsignedOutsideTheWindow: a decision time older than
// MaxRecordAge, or more than five minutes ahead, is decided and answered
// unsigned, and nothing is stored; inside the window it is signed.
func TestVerifyUnsignedOutsideTheWindow(t *testing.T) {
	w := newWorld(t, false)
	now := time.Now()
	for _, c := range []struct {
		name   string
		at     time.Time
		signed bool
	}{
		{"nine minutes ago", now.Add(-9 * time.Minute), true},
		{"four minutes ahead", now.Add(4 * time.Minute), true},
		{"eleven minutes ago", now.Add(-11 * time.Minute), false},
		{"six minutes ahead", now.Add(6 * time.Minute), false},
	} {
		calls := w.receipts.calls
		req := w.request()
		req.At = c.at.UnixMilli()
		v, err := w.svc.Verify(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if signed := v.Receipt != nil; signed != c.signed || (w.receipts.calls > calls) != c.signed {
			t.Errorf("%s: signed %v, stored %d, want signed %v", c.name, signed, w.receipts.calls-calls, c.signed)
		}
		if v.Block == nil || len(v.Decision.Checks) != len(protocol.CheckIDs) {
			t.Errorf("%s: no decision: %+v", c.name, v)
		}
	}
	// A batch with one request outside is answered unsigned, whole.
	old := w.request()
	old.At = now.Add(-time.Hour).UnixMilli()
	vs, err := w.svc.VerifyBatch(context.Background(), []protocol.TransferRequest{w.request(), old})
	if err != nil || vs[0].Receipt != nil || vs[1].Receipt != nil || vs[1].Item != 1 {
		t.Errorf("a batch reaching an hour back: %v %+v", err, vs)
	}
}

// heldCheckpoints is the checkpoint service, held as after a restore when
// held is set.
type heldCheckpoints struct {
	*checkpoint.Service
	held bool
}

func (h *heldCheckpoints) Held() bool { return h.held }

// TestVerifyUnsignedWhileHeld: while signing is held after a restore,
// verify answers unsigned and stores nothing (a receipt names the log's
// head); once resumed, it signs.
func TestVerifyUnsignedWhileHeld(t *testing.T) {
	w := newWorld(t, false)
	w.cps.held = true
	v, err := w.svc.Verify(context.Background(), w.request())
	if err != nil || v.Receipt != nil || w.receipts.calls != 0 || v.Block == nil || v.Unsigned != service.UnsignedHeld {
		t.Fatalf("verify while held: %v, receipt %v, unsigned %q, stored %d", err, v.Receipt != nil, v.Unsigned, w.receipts.calls)
	}
	// Held and out of the window: held is what the answer says.
	old := w.request()
	old.At = time.Now().Add(-24 * time.Hour).UnixMilli()
	if v, err := w.svc.Verify(context.Background(), old); err != nil || v.Unsigned != service.UnsignedHeld {
		t.Fatalf("verify of an old time while held: %v, unsigned %q", err, v.Unsigned)
	}
	w.cps.held = false
	if v, err := w.svc.Verify(context.Background(), old); err != nil || v.Receipt != nil || v.Unsigned != service.UnsignedTime {
		t.Fatalf("verify of an old time: %v, unsigned %q", err, v.Unsigned)
	}
	if v, err := w.svc.Verify(context.Background(), w.request()); err != nil || v.Receipt == nil || v.Unsigned != "" || w.receipts.calls != 1 {
		t.Fatalf("verify once resumed: %v, unsigned %q, stored %d", err, v.Unsigned, w.receipts.calls)
	}
}

// TestVerifyFetchesTheLineage: a tier-2 resale whose parent decision, by
// another node, only a peer holds: the node fetches the parent's receipt
// and its block, stores both, allows the resale on lineage.parent, and
// the resale's bundle carries the parent and checks offline.
func TestVerifyFetchesTheLineage(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	// A consent that allows resale, the reseller's customer, and another
	// DE node, which decided the first transfer.
	consent := nodetest.Sign(t, w.platform, &protocol.Consent{Subject: make([]byte, 32), Jurisdiction: "DE", Categories: []string{"face"},
		Purposes: []string{"research"}, MaxTier: 2, Destinations: []string{"*"}, RetentionDays: 30,
		ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "app"})
	_, customer := nodetest.Key(t)
	otherKey, other := nodetest.Key(t)
	nodetest.Put(t, w.st, consent, w.fed.Accredit(t, customer, protocol.RoleController), w.fed.Accredit(t, other, protocol.RoleNode))
	first := w.request()
	first.Consent, first.At, first.RetentionDays = protocol.LinkTo(consent.CID()), time.Now().UnixMilli(), 30
	d, err := w.svc.Decide(first)
	if err != nil || !d.Allowed() {
		t.Fatalf("the first transfer: %v %+v", err, d)
	}
	blk, blockID, err := d.Block(first).Encode()
	if err != nil {
		t.Fatal(err)
	}
	parent := nodetest.Sign(t, otherKey, protocol.NewReceipt([]cid.Cid{blockID}, protocol.Checkpoint{Size: 3, Root: make([]byte, 32)}))
	w.fetch.give = []*protocol.Record{parent}
	w.fetch.blocks = map[cid.Cid][]byte{blockID: blk}

	resale := first
	resale.Sender, resale.Recipient, resale.Tier, resale.RetentionDays, resale.At = w.recipient, customer.String(), 2, 20, 0
	resale.Parent = &protocol.DecisionRef{Receipt: protocol.LinkTo(parent.CID())}
	v, err := w.svc.Verify(ctx, resale)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Decision.Allowed() {
		t.Fatalf("the resale: %+v", v.Decision.Failed())
	}
	if !slices.ContainsFunc(w.fetch.asked, parent.CID().Equals) || !slices.ContainsFunc(w.fetch.asked, blockID.Equals) {
		t.Errorf("asked peers for %v", w.fetch.asked)
	}
	if got, err := w.st.GetBlock(blockID); err != nil || string(got) != string(blk) {
		t.Errorf("the parent's block is not held: %v", err)
	}
	b, err := w.svc.Bundle(v.Receipt.CID(), v.Item)
	if err != nil {
		t.Fatal(err)
	}
	rep := w.checks(t, b)
	if len(rep.Manifest.Lineage) != 1 || !rep.Manifest.Lineage[0].Equals(blockID) {
		t.Errorf("the bundle's lineage %v", rep.Manifest.Lineage)
	}
	if s := rep.Steps[len(rep.Steps)-1]; s.ID != protocol.StepAncestor || s.Depth != 1 || !s.OK {
		t.Errorf("last step %+v", s)
	}
	// Asked again, the node holds the lineage and asks no one.
	asked := len(w.fetch.asked)
	if _, err := w.svc.Verify(ctx, resale); err != nil || len(w.fetch.asked) != asked {
		t.Errorf("asked again: %v, %d more", err, len(w.fetch.asked)-asked)
	}
}
