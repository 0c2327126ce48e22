package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/reconcile"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/witness"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Peer IDs of nobody in particular, for answers that name peers.
const (
	somePeer  = "12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8"
	otherPeer = "12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw"
)

// nodeStatus is the API's Config.Status as package node makes it, with
// an entry in each of its lists.
func nodeStatus(partial bool, caller *api.CallerView) any {
	root := tlog.RecordHash([]byte("root")).String()
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	st := node.Status{PeerID: somePeer, Jurisdiction: "DE", Federation: "demo", FederationDigest: "sha256:" + strings.Repeat("ab", 32), Addrs: []string{"/ip4/127.0.0.1/tcp/4001"},
		Peers:   []node.PeerStatus{{PeerID: otherPeer, Jurisdiction: "FR", Founding: true, Addr: "/ip4/127.0.0.1/tcp/4002", Direction: "outbound"}},
		Records: map[string]int64{"accreditation": 2, "consent": 1},
		Log:     node.LogStatus{Size: 5, Root: root, CheckpointSize: 4},
		Sync: []reconcile.PeerStatus{{PeerID: otherPeer, Sessions: 2, LastEnd: at.Format(time.RFC3339), Rounds: 3, BytesOut: 10,
			BytesIn: 20, FetchBytes: 30, Need: 1, Have: 2, Fetched: 1, LastError: "stream reset"}},
		Witnessed: []witness.Status{{PeerID: otherPeer, Size: 4, Root: root, At: at.Format(time.RFC3339Nano)}, {PeerID: somePeer}},
		Alerts: []witness.Alert{{PeerID: otherPeer, Size: 4, Kind: witness.EquivocationSameSize, Sizes: []uint64{4, 4},
			Roots: []string{root, tlog.RecordHash([]byte("other")).String()}, DetectedAt: at.Format(time.RFC3339Nano),
			Incident: protocol.RecordCID([]byte("notice")).String(), Notes: []string{"a signed note\n", "another\n"}}},
		UptimeMs: 1000}
	if !partial {
		st.Records["receipt"] = 2
	}
	st.Caller = caller
	return st
}

// world is what the API of TestAnswersMatchOpenAPI serves: a federation
// of DE whose controller issued a consent, and the receipts of two
// decisions under it (the second a resale of the first), a red incident
// and a notice to the controller.
type world struct {
	st                   *store.Store
	fed                  nodetest.Fed
	ctlKey               crypto.PrivKey
	ctl, partner, regID  peer.ID
	acc, consent, notice *protocol.Record
	r1, r2               *protocol.Record
	blk1                 []byte
	checkpoint           protocol.SignedCheckpoint
	incident             *service.Incident
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{st: nodetest.Store(t), fed: nodetest.NewFed(t, "demo")}
	var regKey, nodeKey crypto.PrivKey
	w.ctlKey, w.ctl = nodetest.Key(t)
	_, w.partner = nodetest.Key(t)
	regKey, w.regID = nodetest.Key(t)
	nodeKey, nodeID := nodetest.Key(t)
	w.acc = w.fed.Accredit(t, w.ctl, protocol.RoleController)
	w.consent = nodetest.Consent(t, w.ctlKey, "research")
	now := time.Now()
	w.notice = nodetest.Sign(t, regKey, &protocol.Incident{Ref: "inc-1", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{w.partner.String()}, Categories: []string{"breach"},
		DetectedAt: now.Add(-time.Hour).UnixMilli(), Summary: "a leak", Recipients: []string{"FR"}})
	nodetest.Put(t, w.st, w.acc, w.fed.Ruleset(t), w.consent, w.notice)

	req := protocol.TransferRequest{Consent: protocol.LinkTo(w.consent.CID()), From: "DE", To: "FR", Sender: w.ctl.String(),
		Recipient: w.partner.String(), Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30, At: now.UnixMilli()}
	var checks []protocol.Check
	for _, id := range protocol.CheckIDs {
		checks = append(checks, protocol.Check{ID: id, OK: true, Detail: "holds"})
	}
	checks[0].Evidence = protocol.LinkPtr(w.consent.CID())
	var r1Link protocol.Link
	for i, tier := range []int64{1, 2} {
		blk := &protocol.DecisionBlock{Request: req, Verdict: protocol.VerdictAllow, Checks: checks, Evidence: []protocol.Link{}}
		blk.Request.Tier = tier
		if tier == 2 {
			blk.Request.Sender, blk.Request.Recipient = w.partner.String(), w.ctl.String()
			blk.Request.Parent = &protocol.DecisionRef{Receipt: r1Link, Item: 0}
		}
		enc, c, err := blk.Encode()
		if err != nil {
			t.Fatal(err)
		}
		rec := nodetest.Sign(t, nodeKey, protocol.NewReceipt([]cid.Cid{c}, protocol.Checkpoint{Size: 4, Root: make([]byte, 32)}))
		if _, err := w.st.PutReceipt(context.Background(), rec, []store.Block{{Data: enc, Request: &blk.Request}}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			w.r1, w.blk1, r1Link = rec, enc, protocol.LinkTo(rec.CID())
		} else {
			w.r2 = rec
		}
	}
	refs := []store.DecisionRef{{Receipt: w.r1.CID().String(), Item: 0}}
	if _, err := w.st.PutNotice(store.Notice{Event: "consent-revoked", Consent: w.consent.CID().String(), By: w.notice.CID().String(),
		Recipient: w.ctl.String(), Decisions: refs, At: now.UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	// r2's recipient was told (its lineage node has notified_at); r1's,
	// the controller, was not: its stream replays the notice.
	if err := w.st.MarkNotified([]store.DecisionRef{{Receipt: w.r2.CID().String(), Item: 0}}, now.UnixMilli()); err != nil {
		t.Fatal(err)
	}

	tree, err := w.st.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := protocol.NewCheckpointSigner("demo", nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	if w.checkpoint, err = signer.Sign(protocol.LogCheckpoint{Origin: protocol.CheckpointOrigin("demo", nodeID), Size: tree.Size, Root: tree.Root}); err != nil {
		t.Fatal(err)
	}
	w.incident = &service.Incident{ID: w.notice.CID().String(), Jurisdiction: "DE", Ref: "inc-1", Issuer: w.regID.String(),
		Severity: protocol.SeverityHigh, Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{w.partner.String()},
		Categories: []string{"breach"}, DetectedAt: now.Add(-time.Hour).UnixMilli(), Summary: "a leak", Recipients: []string{"FR"},
		Notices:  []string{w.notice.CID().String()},
		Delivery: map[string]service.Delivery{"FR": {State: service.DeliveryDelivered, AckedAt: now.UTC(), Attempts: 1}},
		Records:  []*protocol.Record{w.notice}, State: w.notice}
	return w
}

// The world's services.

// roles names the callers of the world's tokens.
type roles struct{ w *world }

func (r roles) Resolve(token string) (service.Identity, error) {
	switch token {
	case "":
		return service.Identity{Name: "public"}, nil
	case "operator":
		return service.Identity{Name: "operator", Caller: protocol.Caller{Operator: true}}, nil
	case "controller":
		return service.Identity{Name: "platform", Caller: protocol.Caller{Role: protocol.RoleController, Peer: r.w.ctl, Jurisdiction: "DE"}}, nil
	case "regulator":
		return service.Identity{Name: "dpa", Caller: protocol.Caller{Role: protocol.RoleRegulator, Peer: r.w.regID, Jurisdiction: "DE"}}, nil
	case "auditor":
		return service.Identity{Name: "audit", Caller: protocol.Caller{Role: protocol.RoleAuditor, Peer: r.w.partner, Jurisdiction: "DE"}}, nil
	case "lapsed":
		return service.Identity{}, fmt.Errorf("%w: the accreditation of lapsed ended", service.ErrForbidden)
	}
	return service.Identity{}, service.ErrUnauthorized
}

// ingest parses records (signature included) and stores the new ones.
type ingest struct{ st *store.Store }

func (i ingest) Submit(ctx context.Context, raw []byte) (service.Accepted, error) {
	rec, err := protocol.Parse(raw)
	if err != nil {
		return service.Accepted{}, err
	}
	if held, err := i.st.Has(rec.CID()); err != nil || held {
		return service.Accepted{CID: rec.CID(), Record: rec}, err
	}
	_, err = i.st.PutMany(ctx, []*protocol.Record{rec})
	return service.Accepted{CID: rec.CID(), New: true, Record: rec}, err
}

func (i ingest) Import(ctx context.Context, raw []byte) (service.Accepted, error) {
	return i.Submit(ctx, raw)
}

// decider answers every request with the first receipt's decision, signed
// by that receipt unless the request is for a time before 2000.
type decider struct{ w *world }

func (d decider) verdict(req protocol.TransferRequest, item int) *service.Verdict {
	blk, _ := protocol.DecodeDecisionBlock(d.w.blk1)
	v := &service.Verdict{Decision: &protocol.Decision{Verdict: blk.Verdict, Checks: blk.Checks}, Block: blk, Receipt: d.w.r1, Item: item}
	if req.At != 0 && req.At < time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
		v.Receipt = nil
	}
	return v
}

func (d decider) Verify(_ context.Context, req protocol.TransferRequest) (*service.Verdict, error) {
	return d.verdict(req, 0), nil
}

func (d decider) VerifyBatch(_ context.Context, reqs []protocol.TransferRequest) ([]*service.Verdict, error) {
	var out []*service.Verdict
	for i, req := range reqs {
		out = append(out, d.verdict(req, i))
	}
	return out, nil
}

func (d decider) BundleFor(c cid.Cid, item int, _ func(*protocol.Record) bool) (*protocol.Bundle, error) {
	switch {
	case !c.Equals(d.w.r1.CID()):
		return nil, store.ErrNotFound
	case item != 0:
		return nil, fmt.Errorf("%w: receipt %s has 1 decision", service.ErrNoBundle, c)
	}
	return &protocol.Bundle{Root: c, Blocks: []protocol.BundleBlock{{CID: c, Data: d.w.r1.Bytes()}, {CID: protocol.RecordCID(d.w.blk1), Data: d.w.blk1}}}, nil
}

type latest struct{ w *world }

func (l latest) Latest() (protocol.SignedCheckpoint, error) { return l.w.checkpoint, nil }

// storeBlocks reads decision blocks from the store.
type storeBlocks struct{ st *store.Store }

func (b storeBlocks) DecisionBlock(c cid.Cid) (*protocol.DecisionBlock, error) {
	enc, err := b.st.GetBlock(c)
	if err != nil {
		return nil, err
	}
	return protocol.DecodeDecisionBlock(enc)
}

// oneIncident is a read model of the world's one incident, whose notice
// is event 1.
type oneIncident struct{ w *world }

func (o oneIncident) List(q service.IncidentQuery) (service.IncidentPage, error) {
	if q.Visible != nil && !q.Visible(o.w.incident) {
		return service.IncidentPage{}, nil
	}
	return service.IncidentPage{Incidents: []*service.Incident{o.w.incident}}, nil
}

func (o oneIncident) Get(c cid.Cid) (*service.Incident, error) {
	if c.String() != o.w.incident.ID {
		return nil, store.ErrNotFound
	}
	return o.w.incident, nil
}

func (o oneIncident) Events(q service.IncidentQuery, after uint64, _ int) ([]service.IncidentEvent, uint64, error) {
	if after >= 1 {
		return nil, after, nil
	}
	if q.Visible != nil && !q.Visible(o.w.incident) {
		return nil, 1, nil
	}
	return []service.IncidentEvent{{Seq: 1, Incident: o.w.incident}}, 1, nil
}

// failing are services that all fail with err.
type failing struct{ err error }

func (f failing) Submit(context.Context, []byte) (service.Accepted, error) {
	return service.Accepted{}, f.err
}
func (f failing) Import(context.Context, []byte) (service.Accepted, error) {
	return service.Accepted{}, f.err
}
func (f failing) Verify(context.Context, protocol.TransferRequest) (*service.Verdict, error) {
	return nil, f.err
}
func (f failing) VerifyBatch(context.Context, []protocol.TransferRequest) ([]*service.Verdict, error) {
	return nil, f.err
}
func (f failing) BundleFor(cid.Cid, int, func(*protocol.Record) bool) (*protocol.Bundle, error) {
	return nil, f.err
}
func (f failing) Latest() (protocol.SignedCheckpoint, error) {
	return protocol.SignedCheckpoint{}, f.err
}

// worldAPI is an API over w's store; cfg adjusts its configuration.
func worldAPI(t *testing.T, w *world, cfg func(*api.Config)) *api.API {
	t.Helper()
	c := api.Config{
		Access: roles{w}, Blocks: storeBlocks{w.st}, Records: ingest{w.st}, Store: w.st, Verifier: decider{w}, Checkpoints: latest{w},
		Status: nodeStatus, Ready: func() (bool, string) { return true, "" }, Peers: func() int { return 3 },
		Metrics: prometheus.NewRegistry(), Incidents: oneIncident{w},
		Limits: api.Limits{MaxConcurrentRequests: 8, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second},
		Streams: api.Streams{Keepalive: time.Hour},
	}
	if cfg != nil {
		cfg(&c)
	}
	a, err := api.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// exchange is one request of TestAnswersMatchOpenAPI and the status it
// must get.
type exchange struct {
	server       string // "" for the world's API
	method, path string
	token        string
	header       map[string]string
	body         string
	status       int
	// event, for a stream, is the schema of its first event's data.
	event string
}

// TestAnswersMatchOpenAPI: a request to every operation, answered with
// success and with the errors it typically meets, each answer checked
// against the description (by the client's specCheck). Every operation's
// success must be among them.
func TestAnswersMatchOpenAPI(t *testing.T) {
	doc, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	srv, check := serve(t, worldAPI(t, w, nil), false)
	down, downCheck := serve(t, worldAPI(t, w, func(c *api.Config) {
		c.Records, c.Verifier, c.Checkpoints = failing{service.ErrPushback}, failing{service.ErrPushback}, failing{service.ErrEmptyLog}
		c.Incidents, c.Ready = nil, func() (bool, string) { return false, "no peer yet" }
	}), false)
	broken, brokenCheck := serve(t, worldAPI(t, w, func(c *api.Config) {
		c.Records, c.Verifier = failing{errors.New("disk on fire")}, failing{errors.New("disk on fire")}
	}), false)
	limited, limitedCheck := serve(t, worldAPI(t, w, func(c *api.Config) { c.Guard = api.Guard{Rate: 0.001, Burst: 1} }), false)
	servers := map[string]*struct {
		url    string
		client *http.Client
	}{"": {srv.URL, srv.Client()}, "down": {down.URL, down.Client()}, "broken": {broken.URL, broken.Client()}, "limited": {limited.URL, limited.Client()}}

	consent, r1, r2, acc, notice := w.consent.CID().String(), w.r1.CID().String(), w.r2.CID().String(), w.acc.CID().String(), w.notice.CID().String()
	unheld := protocol.RecordCID([]byte("never seen")).String()
	fresh := nodetest.Consent(t, w.ctlKey, "marketing")
	other := nodetest.Sign(t, w.fed.Authority, &protocol.Revocation{Target: protocol.LinkTo(w.consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()})
	tampered := bytes.Clone(nodetest.Consent(t, w.ctlKey, "tampered").Bytes())
	tampered[len(tampered)-1] ^= 1 // issued_at, which the signature covers
	request := func(sender string, at time.Time) string {
		return fmt.Sprintf(`{"consent":%q,"from":"DE","to":"FR","sender":%q,"recipient":%q,"purpose":"research","categories":["face"],"tier":1,"retention_days":30,"at":%q}`,
			consent, sender, w.partner.String(), at.UTC().Format(time.RFC3339))
	}
	req := request(w.ctl.String(), time.Now())
	cbor := map[string]string{"Content-Type": api.MediaDagCBOR}
	jsonBody := map[string]string{"Content-Type": api.MediaJSON}

	for _, x := range []exchange{
		{method: "GET", path: "/v1/status", status: 200},
		{method: "GET", path: "/v1/status", token: "operator", status: 200},
		{method: "GET", path: "/v1/status", token: "lapsed", status: 403},
		{method: "GET", path: "/v1/status", header: map[string]string{"Host": "evil.example"}, status: 421},
		{method: "POST", path: "/v1/status", status: 405},
		{method: "GET", path: "/v1/nothing", status: 404},
		{server: "limited", method: "GET", path: "/v1/status", token: "auditor", status: 200},
		{server: "limited", method: "GET", path: "/v1/status", token: "auditor", status: 429},

		{method: "POST", path: "/v1/records", token: "controller", header: cbor, body: string(fresh.Bytes()), status: 201},
		{method: "POST", path: "/v1/records", token: "controller", header: cbor, body: string(fresh.Bytes()), status: 200},
		{method: "POST", path: "/v1/records?import=true", token: "operator", header: cbor, body: string(other.Bytes()), status: 201},
		{method: "POST", path: "/v1/records?import=maybe", token: "operator", header: cbor, body: string(other.Bytes()), status: 400},
		{method: "POST", path: "/v1/records", token: "controller", header: jsonBody, body: string(fresh.Bytes()), status: 415},
		{method: "POST", path: "/v1/records", token: "controller", header: cbor, body: "\xa1", status: 400},
		{method: "POST", path: "/v1/records", token: "controller", header: cbor, body: string(other.Bytes()), status: 403},
		{method: "POST", path: "/v1/records?import=true", token: "controller", header: cbor, body: string(fresh.Bytes()), status: 403},
		{method: "POST", path: "/v1/records", token: "auditor", header: cbor, body: string(fresh.Bytes()), status: 403},
		{method: "POST", path: "/v1/records", header: cbor, body: string(fresh.Bytes()), status: 401},
		{method: "POST", path: "/v1/records", token: "controller", header: cbor, body: strings.Repeat("\xa0", protocol.MaxRecordSize+1), status: 413},
		{method: "POST", path: "/v1/records", token: "controller", header: cbor, body: string(tampered), status: 422},
		{server: "down", method: "POST", path: "/v1/records", token: "operator", header: cbor, body: string(fresh.Bytes()), status: 503},
		{server: "broken", method: "POST", path: "/v1/records", token: "operator", header: cbor, body: string(fresh.Bytes()), status: 500},

		{method: "GET", path: "/v1/records", status: 200},
		{method: "GET", path: "/v1/records?kind=consent&issuer=" + w.ctl.String() + "&jurisdiction=DE&limit=1", token: "regulator", status: 200},
		{method: "GET", path: "/v1/records?kind=permit", status: 400},
		{method: "GET", path: "/v1/records?limit=1001", status: 400},
		{method: "GET", path: "/v1/records/" + consent, token: "auditor", status: 200},
		{method: "GET", path: "/v1/records/" + r1, token: "operator", header: map[string]string{"Accept": api.MediaDagCBOR}, status: 200},
		{method: "GET", path: "/v1/records/" + r1, status: 404},
		{method: "GET", path: "/v1/records/" + unheld, token: "operator", status: 404},
		{method: "GET", path: "/v1/records/not-a-cid", status: 400},

		{method: "POST", path: "/v1/transfers/verify", token: "controller", header: jsonBody, body: req, status: 200},
		{method: "POST", path: "/v1/transfers/verify", token: "operator", header: jsonBody, body: request(w.partner.String(), time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)), status: 200},
		{method: "POST", path: "/v1/transfers/verify", token: "controller", header: jsonBody, body: request(w.partner.String(), time.Now()), status: 403},
		{method: "POST", path: "/v1/transfers/verify", token: "regulator", header: jsonBody, body: req, status: 403},
		{method: "POST", path: "/v1/transfers/verify", header: jsonBody, body: req, status: 401},
		{method: "POST", path: "/v1/transfers/verify", token: "controller", header: jsonBody, body: `{"consent": 1}`, status: 400},
		{method: "POST", path: "/v1/transfers/verify", token: "controller", header: jsonBody, body: strings.Replace(req, consent, consent[:len(consent)-1]+"b", 1), status: 400},
		{method: "POST", path: "/v1/transfers/verify", token: "controller", header: jsonBody, body: strings.Repeat(" ", 64<<10+1), status: 413},
		{server: "down", method: "POST", path: "/v1/transfers/verify", token: "controller", header: jsonBody, body: req, status: 503},
		{method: "POST", path: "/v1/transfers/verify-batch", token: "controller", header: jsonBody, body: `{"requests":[` + req + `,` + req + `]}`, status: 200},
		{method: "POST", path: "/v1/transfers/verify-batch", token: "controller", header: jsonBody, body: `{"requests":[]}`, status: 400},
		{method: "POST", path: "/v1/transfers/verify-batch", token: "controller", header: jsonBody, body: `{"requests":[` + req + `,` + req + `,` + req + `]}`, status: 413},
		{method: "POST", path: "/v1/transfers/verify-batch", token: "controller", header: jsonBody, body: `{"requests":[` + request(w.partner.String(), time.Now()) + `]}`, status: 403},
		{method: "GET", path: "/v1/transfers/verify", token: "controller", status: 405},

		{method: "GET", path: "/v1/log/checkpoint", status: 200},
		{method: "GET", path: "/v1/log/checkpoint?size=1", status: 400},
		{server: "down", method: "GET", path: "/v1/log/checkpoint", status: 404},
		{method: "GET", path: "/v1/log/proof?cid=" + consent, token: "controller", status: 200},
		{method: "GET", path: "/v1/log/proof?cid=" + acc + "&size=2", token: "operator", status: 200},
		{method: "GET", path: "/v1/log/proof?cid=" + consent, status: 404},
		{method: "GET", path: "/v1/log/proof", status: 400},
		{method: "GET", path: "/v1/log/proof?cid=" + unheld, status: 404},
		{method: "GET", path: "/v1/log/consistency?from=1&to=" + fmt.Sprint(w.checkpoint.Size), status: 200},
		{method: "GET", path: "/v1/log/consistency?from=3&to=2", status: 400},

		{method: "GET", path: "/v1/receipts/" + r1 + "/bundle", token: "controller", status: 200},
		{method: "GET", path: "/v1/receipts/" + r1 + "/bundle?item=0", status: 401},
		{method: "GET", path: "/v1/receipts/" + r1 + "/bundle?item=1", token: "operator", status: 404},
		{method: "GET", path: "/v1/receipts/" + r1 + "/bundle?item=-1", token: "operator", status: 400},
		{method: "GET", path: "/v1/receipts", token: "controller", status: 200},
		{method: "GET", path: "/v1/receipts?consent=" + consent + "&from=DE&to=FR&sender=" + w.ctl.String() + "&recipient=" + w.partner.String() + "&limit=10", token: "auditor", status: 200},
		{method: "GET", path: "/v1/receipts?from=de", token: "controller", status: 400},
		{method: "GET", path: "/v1/receipts", status: 401},
		{method: "GET", path: "/v1/consents/" + consent + "/lineage", token: "controller", status: 200},
		{method: "GET", path: "/v1/consents/" + acc + "/lineage", token: "controller", status: 404},
		{method: "GET", path: "/v1/consents/" + consent + "/lineage?x=1", token: "controller", status: 400},
		{method: "GET", path: "/v1/consents/" + consent + "/lineage", status: 401},

		{method: "GET", path: "/v1/incidents", token: "operator", status: 200},
		{method: "GET", path: "/v1/incidents?status=open&severity=low&jurisdiction=DE&affected=" + w.partner.String() + "&since=2026-01-01T00:00:00Z&limit=5", status: 200},
		{method: "GET", path: "/v1/incidents?severity=none", status: 400},
		{server: "down", method: "GET", path: "/v1/incidents", status: 404},
		{method: "GET", path: "/v1/incidents/" + notice, token: "regulator", status: 200},
		{method: "GET", path: "/v1/incidents/" + notice, status: 404},
		{method: "GET", path: "/v1/incidents/" + r2 + "x", status: 400},
		{method: "GET", path: "/v1/incidents/stream?last_event_id=0&severity=high", token: "operator", status: 200, event: "Incident"},
		{method: "GET", path: "/v1/incidents/stream?after=1", status: 400},
		{server: "down", method: "GET", path: "/v1/incidents/stream", status: 404},
		{method: "GET", path: "/v1/notices/stream", token: "controller", status: 200, event: "NoticeEvent"},
		{method: "GET", path: "/v1/notices/stream", token: "controller", header: map[string]string{"Last-Event-ID": "x"}, status: 400},
		{method: "GET", path: "/v1/notices/stream", token: "regulator", status: 403},
		{method: "GET", path: "/v1/notices/stream", status: 401},

		{method: "GET", path: "/v1/openapi.json", status: 200},
		{method: "GET", path: "/", status: 200},
		{method: "POST", path: "/", status: 405},
		{method: "GET", path: "/ui/app.css", status: 200},
		{method: "GET", path: "/ui/js/main.js", status: 200},
		{method: "GET", path: "/ui/js/nothing.js", status: 404},
		{method: "GET", path: "/healthz", status: 200},
		{method: "GET", path: "/healthz", token: "nobody", status: 401},
		{method: "GET", path: "/readyz", status: 200},
		{server: "down", method: "GET", path: "/readyz", status: 503},
		{method: "GET", path: "/v1/backup", token: "operator", status: 200},
		{method: "GET", path: "/v1/backup?x=1", token: "operator", status: 400},
		{method: "GET", path: "/v1/backup", token: "controller", status: 403},
		{method: "GET", path: "/v1/backup", status: 401},
		{method: "GET", path: "/metrics", token: "operator", status: 200},
		{method: "GET", path: "/metrics", token: "controller", status: 403},
		{method: "GET", path: "/metrics", status: 401},
	} {
		s := servers[x.server]
		status, event := x.do(t, s.url, s.client)
		if status != x.status {
			t.Errorf("%s %s %s (token %q): %d, want %d", x.server, x.method, x.path, x.token, status, x.status)
		}
		if x.event != "" {
			if err := doc.Components.Schemas[x.event].Value.VisitJSON(event, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s %s: the first event's data does not match %s: %v", x.method, x.path, x.event, err)
			}
		}
	}
	for _, c := range []*specCheck{downCheck, brokenCheck, limitedCheck} {
		for k, n := range c.seen {
			check.seen[k] += n
		}
	}
	if missed := check.uncovered(doc); len(missed) > 0 {
		t.Errorf("no successful answer was checked for %v", missed)
	}
}

// do makes x's request on client, and returns the status and, for an
// event stream, its first event's data (decoded JSON).
func (x exchange) do(t *testing.T, base string, client *http.Client) (int, any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, x.method, base+x.path, strings.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	if x.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if x.token != "" {
		req.Header.Set("Authorization", "Bearer "+x.token)
	}
	for k, v := range x.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	defer resp.Body.Close()
	if x.event == "" || resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			var v any
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Errorf("%s %s: event data %q: %v", x.method, x.path, data, err)
			}
			return resp.StatusCode, v
		}
	}
	t.Errorf("%s %s: the stream ended without an event: %v", x.method, x.path, lines.Err())
	return resp.StatusCode, nil
}
