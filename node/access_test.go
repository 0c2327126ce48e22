package node_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
	"github.com/entente-net/entente/testnet"
)

// accessWorld is a DE node with the API, the transfer world's parties and
// callers of every role.
type accessWorld struct {
	tn       *testnet.Net
	m        *testnet.Member
	w        *testnet.TransferWorld
	reg, aud *testnet.Party
	other    *testnet.Party        // a DE controller, party to nothing
	tokens   map[string]string     // caller name → token ("" for the public)
	clients  map[string]*apiClient // caller name → client
	receipt  *protocol.Record      // of the world's DE → BR transfer
	records  map[string]*protocol.Record
}

var callerNames = []string{"public", "operator", "platform", "recipient", "other controller", "regulator", "auditor"}

func newAccessWorld(t *testing.T) *accessWorld {
	t.Helper()
	tn, err := testnet.Start(testnet.Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}, InMemory: true, API: true, StreamKeepalive: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	ctx := testCtx(t, 30*time.Second)
	aw := &accessWorld{tn: tn, m: tn.Nodes[0], tokens: map[string]string{"public": "", "operator": tn.Nodes[0].Token},
		clients: map[string]*apiClient{}, records: map[string]*protocol.Record{}}
	if aw.w, err = testnet.NewTransferWorld(ctx, tn); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		party **testnet.Party
		name  string
		role  protocol.Role
	}{{&aw.reg, "regulator", protocol.RoleRegulator}, {&aw.aud, "auditor", protocol.RoleAuditor}, {&aw.other, "other controller", protocol.RoleController}} {
		if *p.party, err = tn.NewParty(ctx, "DE", p.name, p.role); err != nil {
			t.Fatal(err)
		}
	}
	for name, p := range map[string]*testnet.Party{"platform": aw.w.Platform, "recipient": aw.w.Recipient, "other controller": aw.other, "regulator": aw.reg, "auditor": aw.aud} {
		role := protocol.RoleController
		if p == aw.reg {
			role = protocol.RoleRegulator
		} else if p == aw.aud {
			role = protocol.RoleAuditor
		}
		if aw.tokens[name], err = aw.m.Grant(ctx, strings.ReplaceAll(name, " ", "-"), role, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range callerNames {
		aw.clients[name] = newAPIClientAt(t, aw.m.APIAddr(), aw.tokens[name])
	}
	// Incidents of every TLP by the DE regulator, an amber one naming the
	// platform; a receipt of the world's transfer.
	for _, tlp := range []string{protocol.TLPClear, protocol.TLPGreen, protocol.TLPAmber, protocol.TLPAmberStrict, protocol.TLPRed} {
		b := incident("DE", tlp)
		b.Severity = protocol.SeverityLow // informs, blocks nothing
		if tlp == protocol.TLPRed {
			b.Recipients = []string{"DE"}
		}
		aw.records["incident "+tlp] = mustSign(t, aw.reg.Key, b)
	}
	named := incident("DE", protocol.TLPAmber)
	named.Severity, named.Ref, named.Affected = protocol.SeverityLow, "INC-named", []string{aw.w.Platform.ID.String()}
	aw.records["incident amber naming the platform"] = mustSign(t, aw.reg.Key, named)
	named.Ref, named.Affected = "INC-recipient", []string{aw.w.Recipient.ID.String()}
	aw.records["incident amber naming the recipient"] = mustSign(t, aw.reg.Key, named)
	for _, r := range aw.records {
		aw.clients["operator"].submit(r)
	}
	aw.records["consent"] = aw.w.Consent
	aw.records["accreditation"] = aw.w.Platform.Accreditation
	v, err := aw.m.Services().Verify.Verify(ctx, aw.w.Request)
	if err != nil || !v.Decision.Allowed() || v.Receipt == nil {
		t.Fatalf("verify: %v %+v", err, v)
	}
	aw.receipt = v.Receipt
	aw.records["receipt"] = v.Receipt
	// A checkpoint covers the receipt before proofs are asked of it.
	if _, err := aw.m.Services().Checkpoints.Sign(); err != nil {
		t.Fatal(err)
	}
	return aw
}

// TestCallersSeeWhatTheyMay tries every caller against every kind and TLP
// level on every read path of the API: get (JSON and DAG-CBOR), list,
// inclusion proof; for receipts, the bundle; for incidents, the incident
// get, list and stream. Each path must agree with the table of DESIGN.md
// §8 — and so with every other path.
func TestCallersSeeWhatTheyMay(t *testing.T) {
	aw := newAccessWorld(t)
	everyone := callerNames
	granted := callerNames[1:]
	want := map[string][]string{
		"accreditation":                       granted,
		"consent":                             granted,
		"incident clear":                      everyone,
		"incident green":                      granted,
		"incident amber":                      {"operator", "regulator", "auditor"},
		"incident amber naming the platform":  {"operator", "platform", "regulator", "auditor"},
		"incident amber naming the recipient": {"operator", "recipient", "regulator", "auditor"},
		"incident amber+strict":               {"operator", "regulator"},
		"incident red":                        {"operator", "regulator"},
		"receipt":                             {"operator", "platform", "recipient", "regulator", "auditor"},
	}
	// What each caller lists, kind by kind, and the incidents it lists and
	// is streamed, once.
	listed := map[string]map[string]bool{}
	incidentsListed := map[string]map[string]bool{}
	streamed := map[string]map[string]bool{}
	registered := map[string]map[string]bool{}
	for _, name := range callerNames {
		incidentsListed[name], streamed[name] = aw.clients[name].incidentIDs(), aw.clients[name].streamedNotices()
		registered[name] = aw.clients[name].registered("")
		listed[name] = map[string]bool{}
		for _, kind := range []protocol.Kind{protocol.KindAccreditation, protocol.KindConsent, protocol.KindIncident, protocol.KindReceipt} {
			cids, _ := aw.clients[name].listAll("kind="+string(kind), 3)
			for _, c := range cids {
				listed[name][c] = true
			}
		}
	}
	for what, rec := range aw.records {
		c := rec.CID().String()
		for _, name := range callerNames {
			may := slices.Contains(want[what], name)
			cl := aw.clients[name]
			paths := map[string]bool{
				"get":      cl.get("/v1/records/"+c, "").status == http.StatusOK,
				"get cbor": cl.get("/v1/records/"+c, api.MediaDagCBOR).status == http.StatusOK,
				"list":     listed[name][c],
				"proof":    cl.get("/v1/log/proof?cid="+c, "").status == http.StatusOK,
			}
			if rec.Kind() == protocol.KindReceipt {
				paths["bundle"] = cl.get("/v1/receipts/"+c+"/bundle", "").status == http.StatusOK
				paths["register"] = registered[name][c+"#0"]
			}
			if rec.Kind() == protocol.KindIncident {
				paths["incident get"] = cl.get("/v1/incidents/"+c, "").status == http.StatusOK
				paths["incident list"] = incidentsListed[name][c]
				paths["incident stream"] = streamed[name][c]
			}
			for path, got := range paths {
				if got != may {
					t.Errorf("%s: %s reads it on %s: %v, want %v", what, name, path, got, may)
				}
			}
			// Not visible is not found, never forbidden.
			if !may {
				resp := cl.get("/v1/records/"+c, "")
				wantAPIError(t, resp, http.StatusNotFound, api.CodeNotFound)
			}
		}
	}
}

// TestCallersRoles: who may call which route, the accreditation checked
// on every request, tokens applied and revoked within a second.
func TestCallersRoles(t *testing.T) {
	aw := newAccessWorld(t)
	verify := func(name string, sender string) response {
		req := aw.w.Request
		req.Sender = sender
		body, err := req.JSON()
		if err != nil {
			t.Fatal(err)
		}
		return aw.clients[name].post("/v1/transfers/verify", body)
	}
	platform := aw.w.Platform.ID.String()
	// verify: a controller for itself, the operator for anyone.
	for name, status := range map[string]int{"public": 401, "operator": 200, "platform": 200, "recipient": 403, "regulator": 403, "auditor": 403} {
		if got := verify(name, platform).status; got != status {
			t.Errorf("%s verifies a transfer the platform sends: %d, want %d", name, got, status)
		}
	}
	batch := fmt.Appendf(nil, `{"requests":[%s]}`, must(aw.w.Request.JSON()))
	if got := aw.clients["recipient"].post("/v1/transfers/verify-batch", batch); got.status != 403 || !strings.Contains(string(got.body), "requests[0].sender") {
		t.Errorf("a batch naming another sender: %d %s", got.status, got.body)
	}
	// Records: a regulator submits what it issues; an auditor nothing; a
	// controller nothing it does not issue.
	own := mustSign(t, aw.reg.Key, incident("DE", protocol.TLPGreen))
	if got := aw.clients["regulator"].postRecord(own.Bytes()); got.status != http.StatusCreated {
		t.Errorf("a regulator submits its notice: %d %s", got.status, got.body)
	}
	notice := mustSign(t, aw.reg.Key, incident("DE", protocol.TLPClear))
	for name, status := range map[string]int{"auditor": 403, "platform": 403, "public": 401} {
		if got := aw.clients[name].postRecord(notice.Bytes()); got.status != status {
			t.Errorf("%s submits the regulator's notice: %d, want %d", name, got.status, status)
		}
	}
	// Metrics are the operator's.
	for name, status := range map[string]int{"operator": 200, "regulator": 403, "public": 401} {
		if got := aw.clients[name].get("/metrics", "").status; got != status {
			t.Errorf("%s reads /metrics: %d, want %d", name, got, status)
		}
	}
	// Backups are the operator's: a whole store, checked end to end.
	for name, status := range map[string]int{"operator": 200, "regulator": 403, "auditor": 403, "platform": 403, "public": 401} {
		got := aw.clients[name].get("/v1/backup", "")
		if got.status != status {
			t.Errorf("%s reads /v1/backup: %d, want %d", name, got.status, status)
			continue
		}
		if status != 200 {
			wantAPIError(t, got, status, map[int]string{401: api.CodeUnauthorized, 403: api.CodeForbidden}[status])
			continue
		}
		info, err := store.CheckBackup(bytes.NewReader(got.body))
		if err != nil || info.Tree.Size != aw.m.Store().Len() || got.header.Get("Content-Type") != api.MediaBackup {
			t.Errorf("the operator's backup: %+v, %v, %s; want a log of %d records", info, err, got.header.Get("Content-Type"), aw.m.Store().Len())
		}
	}
	wantAPIError(t, aw.clients["operator"].get("/v1/backup?since=3", ""), http.StatusBadRequest, api.CodeBadRequest)
	// A token the node does not know is 401, on a public route too.
	stranger := newAPIClientAt(t, aw.m.APIAddr(), config.TokenPrefix+"not-a-token")
	wantAPIError(t, stranger.get("/v1/status", ""), http.StatusUnauthorized, api.CodeUnauthorized)
	// The public lists no kind it may read nothing of, and no page of
	// nothing with a cursor to follow (more accreditations than one page
	// scans for a limit of 1).
	for i := range 10 {
		aw.clients["operator"].submit(freshAccreditation(t, aw.tn, "DE", fmt.Sprintf("listed %d", i)))
	}
	var page struct {
		Records []json.RawMessage
		Next    string
	}
	decodeJSON(t, aw.clients["public"].get("/v1/records?kind=accreditation&limit=1", "").body, &page)
	if len(page.Records) != 0 || page.Next != "" {
		t.Errorf("the public's accreditations: %d records, next %q", len(page.Records), page.Next)
	}
	// Only the operator's status counts incidents and receipts: any other
	// caller may see some of them only, and a count would tell it when
	// one it may not read arrives.
	for name, c := range aw.clients {
		var st struct {
			Records map[string]int64
			Caller  *struct{ Name, Role string }
		}
		decodeJSON(t, c.get("/v1/status", "").body, &st)
		// Each caller is named to itself: its grant's name and role.
		switch {
		case name == "public" && st.Caller != nil:
			t.Errorf("the public's status names a caller: %+v", st.Caller)
		case name == "operator" && (st.Caller == nil || st.Caller.Role != "operator"):
			t.Errorf("the operator's status names %+v", st.Caller)
		case name != "public" && name != "operator" && (st.Caller == nil || st.Caller.Name != strings.ReplaceAll(name, " ", "-") || st.Caller.Role == ""):
			t.Errorf("%s's status names %+v", name, st.Caller)
		}
		_, incidents := st.Records["incident"]
		_, receipts := st.Records["receipt"]
		if incidents != (name == "operator") || receipts != (name == "operator") || st.Records["consent"] == 0 {
			t.Errorf("%s's status counts %v", name, st.Records)
		}
	}
	// The authority revokes the platform's accreditation: its token is
	// refused from the next request on.
	rev := mustSign(t, aw.tn.Authorities["DE"], &protocol.Revocation{Target: protocol.LinkTo(aw.w.Platform.Accreditation.CID()), Reason: "suspended", EffectiveAt: time.Now().UnixMilli()})
	aw.clients["operator"].submit(rev)
	resp := aw.clients["platform"].get("/v1/status", "")
	if msg := wantAPIError(t, resp, http.StatusForbidden, api.CodeForbidden); !strings.Contains(msg, "platform") {
		t.Errorf("the refusal does not name the caller: %q", msg)
	}
	// access revoke: the regulator's token stops working within a second.
	a, err := config.LoadAccess(aw.m.AccessFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Remove("regulator"); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(aw.m.AccessFile); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	eventually(t, 2*time.Second, "the regulator's token refused", func() bool {
		return aw.clients["regulator"].get("/v1/status", "").status == http.StatusUnauthorized
	})
	if d := time.Since(revoked); d > time.Second {
		t.Errorf("the revocation took %v to apply", d)
	}
	// An access file that no longer loads lets no granted caller in; the
	// operator keeps working.
	if err := os.WriteFile(aw.m.AccessFile, []byte("[[caller"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "the auditor's token refused", func() bool {
		return aw.clients["auditor"].get("/v1/status", "").status == http.StatusUnauthorized
	})
	if got := aw.clients["operator"].get("/metrics", "").status; got != 200 {
		t.Errorf("the operator with a broken access file: %d", got)
	}
}

// TestBundleWithholds: the platform's bundle of its decision leaves out
// the amber notice naming the recipient, which it may not see, and lists
// it as withheld; the offline check holds with incident.clear neither
// confirmed nor refuted, and fails if the listing is taken away. The
// recipient's withholds the notice naming the platform; the regulator's
// nothing.
func TestBundleWithholds(t *testing.T) {
	aw := newAccessWorld(t)
	hidden := aw.records["incident amber naming the recipient"].CID()
	body, _ := aw.receipt.Receipt()
	blk := must(protocol.DecodeDecisionBlock(must(aw.m.Store().GetBlock(body.Decisions[0].Cid))))
	if !slices.ContainsFunc(blk.Evidence, func(l protocol.Link) bool { return l.Equals(hidden) }) {
		t.Fatal("the notice naming the recipient is not evidence of the decision")
	}
	trust := protocol.NewBundleTrust(aw.tn.Federation.Name, aw.tn.Federation.Authorities(), aw.tn.Federation.FoundingNodes())
	bundleOf := func(name string) *protocol.Bundle {
		resp := aw.clients[name].get("/v1/receipts/"+aw.receipt.CID().String()+"/bundle", "")
		if resp.status != http.StatusOK {
			t.Fatalf("%s's bundle: %d %s", name, resp.status, resp.body)
		}
		b, err := protocol.ReadBundle(resp.body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := bundleOf("platform")
	if rep := protocol.CheckBundle(bundleOf("regulator"), trust); rep.Err() != nil || !rep.Complete() {
		t.Errorf("the regulator's bundle: %v, withheld %v", rep.Err(), rep.Withheld)
	}
	for _, blk := range b.Blocks {
		if blk.CID.Equals(hidden) {
			t.Fatal("the platform's bundle holds the notice it may not see")
		}
	}
	rep := protocol.CheckBundle(b, trust)
	if err := rep.Err(); err != nil || rep.Complete() || !slices.Equal(rep.WithheldChecks, []string{protocol.CheckIncidentClear}) ||
		len(rep.Withheld) != 1 || !rep.Withheld[0].CID.Equals(hidden) {
		t.Fatalf("the platform's bundle: %v, withheld %v, checks %v", err, rep.Withheld, rep.WithheldChecks)
	}
	// The listing taken away: the evidence is missing, and the check says so.
	m := *rep.Manifest
	m.Withheld = nil
	var records []*protocol.Record
	for _, blk := range b.Blocks[3+len(m.Lineage):] {
		records = append(records, must(protocol.Decode(blk.Data)))
	}
	stripped, err := protocol.NewBundle(rep.Receipt, &m, b.Blocks[2].Data, nil, records)
	if err != nil {
		t.Fatal(err)
	}
	if s, failed := protocol.CheckBundle(stripped, trust).FirstFailure(); !failed || s.ID != protocol.StepEvidenceHeld || !strings.Contains(s.Detail, hidden.String()) {
		t.Errorf("a bundle missing evidence it does not withhold: %+v", s)
	}
	// Withholding what is no evidence fails too.
	m.Withheld = []protocol.BundleWithheld{{CID: protocol.LinkTo(aw.records["incident amber+strict"].CID()), Kind: protocol.KindIncident}}
	if other, err := protocol.NewBundle(rep.Receipt, &m, b.Blocks[2].Data, nil, records); err != nil {
		t.Fatal(err)
	} else if s, failed := protocol.CheckBundle(other, trust).FirstFailure(); !failed || s.ID != protocol.StepEvidenceHeld {
		t.Errorf("a bundle withholding what is no evidence: %+v", s)
	}
	// The recipient gets the notice naming it, and not the one naming the
	// platform.
	rep = protocol.CheckBundle(bundleOf("recipient"), trust)
	if rep.Err() != nil || len(rep.Withheld) != 1 || !rep.Withheld[0].CID.Equals(aw.records["incident amber naming the platform"].CID()) {
		t.Errorf("the recipient's bundle: %v, withheld %v", rep.Err(), rep.Withheld)
	}
}

// registered lists the decisions of the register the client's caller may
// see (GET /v1/receipts?query, every page), as "receipt#item"; a caller
// without a token gets 401 and nothing.
func (c *apiClient) registered(query string) map[string]bool {
	c.t.Helper()
	out := map[string]bool{}
	after := ""
	for range 100 {
		resp := c.get("/v1/receipts?limit=2"+query+after, "")
		if c.token == "" {
			wantAPIError(c.t, resp, http.StatusUnauthorized, api.CodeUnauthorized)
			return out
		}
		if resp.status != http.StatusOK {
			c.t.Fatalf("GET /v1/receipts: %d %s", resp.status, resp.body)
		}
		var page api.ReceiptPage
		decodeJSON(c.t, resp.body, &page)
		for _, e := range page.Receipts {
			out[fmt.Sprintf("%s#%d", e.Receipt, e.Item)] = true
		}
		if page.Next == "" {
			return out
		}
		after = "&after=" + page.Next
	}
	c.t.Fatal("the register's pages do not end")
	return nil
}

// incidentIDs lists every incident the client's caller may see (their
// first notices' CIDs), following next.
func (c *apiClient) incidentIDs() map[string]bool {
	c.t.Helper()
	ids := map[string]bool{}
	after := ""
	for range 100 {
		resp := c.get("/v1/incidents?limit=2"+after, "")
		if resp.status != http.StatusOK {
			c.t.Fatalf("GET /v1/incidents: %d %s", resp.status, resp.body)
		}
		var page struct {
			Incidents []struct{ ID string }
			Next      string
		}
		decodeJSON(c.t, resp.body, &page)
		for _, inc := range page.Incidents {
			ids[inc.ID] = true
		}
		if page.Next == "" {
			return ids
		}
		after = "&after=" + page.Next
	}
	c.t.Fatal("the incident list does not end")
	return nil
}

// streamedNotices replays the client's incident stream from the start
// (Last-Event-ID 0) until its first keepalive, and returns the notices
// its events were about (each event's last notice).
func (c *apiClient) streamedNotices() map[string]bool {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+"/v1/incidents/stream", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", "0")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("the incident stream: %s", resp.Status)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == ": keepalive" {
			return seen
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var e struct{ Notices []string }
			decodeJSON(c.t, []byte(data), &e)
			seen[e.Notices[len(e.Notices)-1]] = true
		}
	}
	c.t.Fatalf("the incident stream ended before a keepalive: %v", sc.Err())
	return nil
}

// TestRegisterAPI: GET /v1/receipts lists the node's decisions with their
// receipt, issuer, request and verdict, filtered by consent, parties and
// jurisdictions; bad filters are refused.
func TestRegisterAPI(t *testing.T) {
	aw := newAccessWorld(t)
	ctx := testCtx(t, 20*time.Second)
	// A second decision: the same transfer for marketing, denied.
	req := aw.w.Request
	req.Purpose = "marketing"
	denied, err := aw.m.Services().Verify.Verify(ctx, req)
	if err != nil || denied.Decision.Allowed() {
		t.Fatalf("verify: %v %+v", err, denied)
	}
	op := aw.clients["operator"]
	first, second := aw.receipt.CID().String()+"#0", denied.Receipt.CID().String()+"#0"
	platform, recipient := aw.w.Platform.ID.String(), aw.w.Recipient.ID.String()
	for query, want := range map[string][]string{
		"": {first, second},
		"&consent=" + aw.w.Consent.CID().String(): {first, second},
		"&sender=" + platform + "&to=BR":          {first, second},
		"&recipient=" + recipient + "&from=DE":    {first, second},
		"&from=BR":                                nil,
		"&recipient=" + platform:                  nil,
		"&consent=" + aw.receipt.CID().String():   nil,
	} {
		got := op.registered(query)
		if len(got) != len(want) {
			t.Errorf("?%s: %v, want %v", query, got, want)
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("?%s: %s missing from %v", query, w, got)
			}
		}
	}
	var page api.ReceiptPage
	decodeJSON(t, op.get("/v1/receipts?limit=1", "").body, &page)
	if len(page.Receipts) != 1 || page.Next == "" {
		t.Fatalf("a page of one: %+v", page)
	}
	e := page.Receipts[0]
	var r struct{ Sender, Purpose string }
	if err := json.Unmarshal(e.Request, &r); err != nil || e.Issuer != aw.m.ID().String() || e.Verdict != protocol.VerdictAllow ||
		e.IssuedAt != aw.receipt.IssuedAt() || r.Sender != platform || r.Purpose != "research" {
		t.Errorf("the first entry: %+v (request %s)", e, e.Request)
	}
	for query, code := range map[string]string{"?consent=bafy-not": string(protocol.CodeBadCID), "?to=de": api.CodeBadRequest,
		"?sender=nope": api.CodeBadRequest, "?limit=0": api.CodeBadRequest, "?nope=1": api.CodeBadRequest} {
		wantAPIError(t, op.get("/v1/receipts"+query, ""), http.StatusBadRequest, code)
	}
}

// TestLineageAPI: GET /v1/consents/{cid}/lineage shows a three-tier
// resale as a tree, tier by tier; a platform sees only the decisions it
// is party to; what is no consent is not found.
func TestLineageAPI(t *testing.T) {
	aw := newAccessWorld(t)
	ctx := testCtx(t, 20*time.Second)
	tier3, err := aw.w.Resale(ctx, aw.m, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := aw.m.Services().Verify.Verify(ctx, tier3); err != nil || !v.Decision.Allowed() {
		t.Fatalf("tier 3: %v %+v", err, v)
	}
	path := "/v1/consents/" + aw.w.Consent.CID().String() + "/lineage"
	var l api.Lineage
	resp := aw.clients["operator"].get(path, "")
	decodeJSON(t, resp.body, &l)
	// The world's own tier-1 decision (newAccessWorld) and the resale's
	// chain: two roots, one of them three deep.
	depth := func(n *api.LineageNode) int {
		d := 0
		for ; n != nil; d++ {
			if len(n.Children) == 0 {
				return d + 1
			}
			if len(n.Children) != 1 {
				t.Fatalf("decision %s#%d has %d children", n.Receipt, n.Item, len(n.Children))
			}
			n = n.Children[0]
		}
		return d
	}
	if resp.status != http.StatusOK || l.Consent != aw.w.Consent.CID().String() || len(l.Roots) != 2 || depth(l.Roots[1]) != 3 {
		t.Fatalf("the operator's lineage: %d %s", resp.status, resp.body)
	}
	chain := l.Roots[1]
	for tier, n := 1, chain; n != nil; tier++ {
		if n.Tier != int64(tier) || n.Verdict != protocol.VerdictAllow || n.At == "" {
			t.Errorf("tier %d: %+v", tier, n)
		}
		if len(n.Children) == 0 {
			break
		}
		if n.Children[0].Sender != n.Recipient {
			t.Errorf("tier %d's recipient %s is not tier %d's sender %s", tier, n.Recipient, tier+1, n.Children[0].Sender)
		}
		n = n.Children[0]
	}
	// The platform sent the tier-1 decisions only.
	var mine api.Lineage
	decodeJSON(t, aw.clients["platform"].get(path, "").body, &mine)
	if len(mine.Roots) != 2 || len(mine.Roots[0].Children)+len(mine.Roots[1].Children) != 0 {
		t.Errorf("the platform's lineage: %+v", mine.Roots)
	}
	wantAPIError(t, aw.clients["public"].get(path, ""), http.StatusUnauthorized, api.CodeUnauthorized)
	wantAPIError(t, aw.clients["operator"].get("/v1/consents/"+aw.receipt.CID().String()+"/lineage", ""), http.StatusNotFound, api.CodeNotFound)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// post POSTs a JSON body with the client's token.
func (c *apiClient) post(path string, body []byte) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.do(req)
}
