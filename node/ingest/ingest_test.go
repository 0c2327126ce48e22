package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/ingest"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// outbox records what ingest marks for gossip.
type outbox struct {
	mu              sync.Mutex
	expect, forgets []cid.Cid
}

func (o *outbox) Expect(r *protocol.Record) {
	o.mu.Lock()
	o.expect = append(o.expect, r.CID())
	o.mu.Unlock()
}
func (o *outbox) Forget(r *protocol.Record) {
	o.mu.Lock()
	o.forgets = append(o.forgets, r.CID())
	o.mu.Unlock()
}

// fetcher hands out records it holds by ingesting them, as the fetch
// service does.
type fetcher struct {
	p     *ingest.Pipeline
	have  map[cid.Cid]*protocol.Record
	asked int
}

func (f *fetcher) Fetch(ctx context.Context, cids ...cid.Cid) (map[cid.Cid]*protocol.Record, error) {
	out := map[cid.Cid]*protocol.Record{}
	for _, c := range cids {
		f.asked++
		if r, ok := f.have[c]; ok {
			if _, err := f.p.Ingest(ctx, r, service.SourceFetch); err == nil {
				out[c] = r
			}
		}
	}
	return out, nil
}

type world struct {
	fed      nodetest.Fed
	store    *store.Store
	p        *ingest.Pipeline
	out      *outbox
	reg      *prometheus.Registry
	accepted []cid.Cid
	mu       sync.Mutex
}

func newWorld(t *testing.T) *world { return newWorldWith(t, nil) }

// newWorldWith is newWorld with the pipeline's config changed by edit
// (its clock, say) before it is made.
func newWorldWith(t *testing.T, edit func(*ingest.Config)) *world {
	w := &world{fed: nodetest.NewFed(t, "ingest-test"), out: &outbox{}, reg: prometheus.NewRegistry()}
	v := w.fed.View(t)
	w.store = v.Store()
	cfg := ingest.Config{Store: w.store, Trust: v, Outbox: w.out, Registerer: w.reg,
		OnAccept: []func(*protocol.Record){func(r *protocol.Record) {
			w.mu.Lock()
			w.accepted = append(w.accepted, r.CID())
			w.mu.Unlock()
		}}}
	if edit != nil {
		edit(&cfg)
	}
	var err error
	if w.p, err = ingest.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.p.Close)
	return w
}

// metric is the value of the counter or gauge name of w's registry whose
// labels include labels.
func (w *world) metric(t *testing.T, name string, labels map[string]string) float64 {
	return nodetest.Metric(t, w.reg, name, labels)
}

// reingests is how many times parked records were ingested again.
func (w *world) reingests(t *testing.T) float64 {
	return w.metric(t, "entente_ingest_total", map[string]string{"source": string(service.SourceParked)})
}

func (w *world) parkedNow(t *testing.T) float64 { return w.metric(t, "entente_ingest_parked", nil) }

func TestSubmitThenDuplicate(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, id := nodetest.Key(t)
	acc := w.fed.Accredit(t, id, protocol.RoleController)
	got, err := w.p.SubmitRecord(ctx, acc)
	if err != nil || !got.New || got.Seq != 1 {
		t.Fatalf("first submit: %+v %v", got, err)
	}
	again, err := w.p.SubmitRecord(ctx, acc)
	if err != nil || again.New || again.Seq != 1 {
		t.Fatalf("second submit: %+v %v", again, err)
	}
	if len(w.accepted) != 1 || !w.accepted[0].Equals(acc.CID()) {
		t.Errorf("OnAccept saw %v, want the accreditation once", w.accepted)
	}
	if len(w.out.expect) != 1 || len(w.out.forgets) != 0 {
		t.Errorf("outbox: expected %d, forgot %d; want 1 and 0 (a held record is not marked)", len(w.out.expect), len(w.out.forgets))
	}
	if _, err := w.p.Submit(ctx, []byte{0xa0}); protocol.CodeOf(err) != protocol.CodeMalformed {
		t.Errorf("garbage: %v", err)
	}
}

// TestRedIncidentNotMarkedForGossip: a record not for every member is
// stored but never handed to the outbox.
func TestRedIncidentNotMarkedForGossip(t *testing.T) {
	w := newWorld(t)
	regKey, reg := nodetest.Key(t)
	nodetest.Put(t, w.store, w.fed.Accredit(t, reg, protocol.RoleRegulator))
	red := nodetest.Sign(t, regKey, &protocol.Incident{Ref: "r-1", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "x", Recipients: []string{"DE"}})
	if acc, err := w.p.SubmitRecord(context.Background(), red); err != nil || !acc.New {
		t.Fatalf("submit: %+v %v", acc, err)
	}
	if len(w.out.expect) != 0 {
		t.Errorf("a TLP:RED notice was marked for gossip")
	}
}

// TestParkedUntilAuthorised: a consent whose issuer is not yet accredited
// is parked, and accepted once the accreditation arrives.
func TestParkedUntilAuthorised(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, id := nodetest.Key(t)
	consent := nodetest.Consent(t, key, "research")
	_, parked, err := w.p.IngestOrPark(ctx, consent, service.SourceGossip)
	if !parked || protocol.CodeOf(err) != protocol.CodeUnauthorizedIssuer {
		t.Fatalf("IngestOrPark: parked %v, %v", parked, err)
	}
	if _, err := w.p.Ingest(ctx, w.fed.Accredit(t, id, protocol.RoleController), service.SourceGossip); err != nil {
		t.Fatal(err)
	}
	if err := w.p.WaitRecord(ctx, consent.CID()); err != nil {
		t.Fatalf("the parked consent was not accepted: %v", err)
	}
}

// TestMissingReferenceFetched: a revocation from the API whose target is
// not held has it fetched, once, and is then accepted; from a fetch it is
// not (the fetcher follows references itself).
func TestMissingReferenceFetched(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	key, id := nodetest.Key(t)
	nodetest.Put(t, w.store, w.fed.Accredit(t, id, protocol.RoleController))
	consent := nodetest.Consent(t, key, "research")
	rev := nodetest.Sign(t, key, &protocol.Revocation{Target: protocol.LinkTo(consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()})
	f := &fetcher{p: w.p, have: map[cid.Cid]*protocol.Record{consent.CID(): consent}}
	if _, err := w.p.Ingest(ctx, rev, service.SourceFetch); protocol.CodeOf(err) != protocol.CodeUnknownReference {
		t.Fatalf("without a fetcher: %v", err)
	}
	w.p.SetFetcher(f)
	if _, err := w.p.Ingest(ctx, rev, service.SourceFetch); protocol.CodeOf(err) != protocol.CodeUnknownReference || f.asked != 0 {
		t.Fatalf("from a fetch: %v, asked %d", err, f.asked)
	}
	if acc, err := w.p.SubmitRecord(ctx, rev); err != nil || !acc.New || f.asked != 1 {
		t.Fatalf("from the API: %+v %v, asked %d", acc, err, f.asked)
	}
}

func TestClosed(t *testing.T) {
	w := newWorld(t)
	w.p.Close()
	w.p.Close()
	_, id := nodetest.Key(t)
	if _, err := w.p.SubmitRecord(context.Background(), w.fed.Accredit(t, id, protocol.RoleNode)); !errors.Is(err, service.ErrClosed) {
		t.Errorf("submit after Close: %v", err)
	}
	if err := w.p.WaitRecord(context.Background(), protocol.RecordCID([]byte("x"))); !errors.Is(err, service.ErrClosed) {
		t.Errorf("WaitRecord after Close: %v", err)
	}
}

// logLines is a slog handler that keeps the lines it is given, as text.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// matching returns the lines holding msg.
func (l *logLines) matching(msg string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, msg) {
			out = append(out, line)
		}
	}
	return out
}

// TestSummaryLogged: what the pipeline received is logged at INFO every
// SummaryEvery while records arrive, and at Close.
func TestSummaryLogged(t *testing.T) {
	logs := &logLines{}
	w := newWorldWith(t, func(c *ingest.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		c.SummaryEvery = 20 * time.Millisecond
	})
	ctx := context.Background()
	_, id := nodetest.Key(t)
	if _, err := w.p.SubmitRecord(ctx, w.fed.Accredit(t, id, protocol.RoleController)); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 5*time.Second, "a summary of the accreditation", func() bool { return len(logs.matching(`msg="records received"`)) == 1 })
	if got := logs.matching(`msg="records received"`)[0]; !strings.Contains(got, "level=INFO") ||
		!strings.Contains(got, " accepted=1 kind.accreditation=1 from.api=1 duplicates=0 refused=0") {
		t.Errorf("summary: %s", got)
	}

	// A quiet minute says nothing; the next arrivals are summarised anew.
	key, _ := nodetest.Key(t)
	if _, _, err := w.p.IngestOrPark(ctx, nodetest.Consent(t, key, "research"), service.SourceGossip); protocol.CodeOf(err) != protocol.CodeUnauthorizedIssuer {
		t.Fatal(err)
	}
	if _, err := w.p.Submit(ctx, []byte{0xa0}); err == nil {
		t.Fatal("garbage accepted")
	}
	nodetest.Eventually(t, 5*time.Second, "a second summary", func() bool { return len(logs.matching(`msg="records received"`)) == 2 })
	if got := logs.matching(`msg="records received"`)[1]; !strings.Contains(got, " accepted=0 duplicates=0 refused=1 refused_as.malformed=1 parked=1") {
		t.Errorf("second summary: %s", got)
	}
}

// TestSummaryAtClose: what arrived since the last summary is logged when
// the pipeline closes.
func TestSummaryAtClose(t *testing.T) {
	logs := &logLines{}
	w := newWorldWith(t, func(c *ingest.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		c.SummaryEvery = time.Hour
	})
	_, id := nodetest.Key(t)
	acc := w.fed.Accredit(t, id, protocol.RoleController)
	for range 2 {
		if _, err := w.p.Ingest(context.Background(), acc, service.SourceGossip); err != nil {
			t.Fatal(err)
		}
	}
	if got := logs.matching("records received"); len(got) != 0 {
		t.Fatalf("a summary before the hour: %v", got)
	}
	w.p.Close()
	got := logs.matching("records received")
	if len(got) != 1 || !strings.Contains(got[0], " accepted=1 kind.accreditation=1 from.gossip=1 duplicates=1 refused=0") {
		t.Errorf("at close: %v", got)
	}
}

// TestSummaryCountsNoRefusalOfAWaitingRecord: an amendment parked for its
// issuer's accreditation is retried when it arrives, still lacks the
// consent it amends and waits again; once that comes it is accepted. The
// summary counts it parked once and refused never (it said "refused=1"
// for a record that was only waiting, which worried a newcomer joining
// the demo).
func TestSummaryCountsNoRefusalOfAWaitingRecord(t *testing.T) {
	logs := &logLines{}
	w := newWorldWith(t, func(c *ingest.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		c.SummaryEvery = time.Hour
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prev, amendment, id := w.parkAmendment(t, ctx)
	if _, err := w.p.Ingest(ctx, w.fed.Accredit(t, id, protocol.RoleController), service.SourceFetch); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 5*time.Second, "the amendment's retry", func() bool {
		return w.metric(t, "entente_ingest_total", map[string]string{"source": "parked", "result": "unknown_reference"}) == 1
	})
	if _, err := w.p.Ingest(ctx, prev, service.SourceFetch); err != nil {
		t.Fatal(err)
	}
	if err := w.p.WaitRecord(ctx, amendment.CID()); err != nil {
		t.Fatalf("the amendment was not accepted once the consent arrived: %v", err)
	}
	w.p.Close()
	got := logs.matching("records received")
	want := " accepted=3 kind.accreditation=1 kind.consent=2 from.fetch=2 from.parked=1 duplicates=0 refused=0 parked=1"
	if len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("summary %v\nwant it to hold %q", got, want)
	}
}
