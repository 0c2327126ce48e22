package node_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// verifyFixture: one node of DE with a rule set, an accredited platform and
// its consent, and an accredited recipient.
type verifyFixture struct {
	tn        *testnet.Net
	m         *testnet.Member
	api       *apiClient
	consent   *protocol.Record
	recipient string
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	ctx := testCtx(t, 20*time.Second)
	platform, err := tn.NewParty(ctx, "DE", "platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	recipient, err := tn.NewParty(ctx, "DE", "recipient", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	rules := protocol.Rules{MaxTier: 3, ProhibitedPurposes: []string{}, MaxRetentionDays: 365, BlockOnIncident: protocol.SeverityHigh, Conditions: []protocol.Condition{}}
	rs := mustSign(t, tn.Authorities["DE"], &protocol.Ruleset{Jurisdiction: "DE", Version: 1, EffectiveFrom: time.Now().Add(-time.Hour).UnixMilli(),
		Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules}, Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules}})
	subject := make([]byte, 32)
	rand.Read(subject)
	consent := mustSign(t, platform.Key, &protocol.Consent{Subject: subject, Jurisdiction: "DE", Categories: []string{"face"}, Purposes: []string{"research"},
		MaxTier: 1, Destinations: []string{"DE"}, RetentionDays: 90, ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "opt-in"})
	api := newAPIClient(t, m)
	api.submit(rs)
	api.submit(consent)
	return &verifyFixture{tn: tn, m: m, api: api, consent: consent, recipient: recipient.ID.String()}
}

func (f *verifyFixture) request(edit func(map[string]any)) []byte {
	r := map[string]any{
		"consent": f.consent.CID().String(), "from": "DE", "to": "DE", "sender": f.consent.Issuer().String(), "recipient": f.recipient,
		"purpose": "research", "categories": []string{"face"}, "tier": 1, "retention_days": 30,
	}
	if edit != nil {
		edit(r)
	}
	b, _ := json.Marshal(r)
	return b
}

func (f *verifyFixture) post(t *testing.T, path string, body []byte, token string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.api.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return f.api.do(req)
}

func TestVerifyAPI(t *testing.T) {
	f := newVerifyFixture(t)
	token := f.m.Token

	t.Run("allow", func(t *testing.T) {
		resp := f.post(t, "/v1/transfers/verify", f.request(nil), token)
		if resp.status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		var v api.VerdictView
		decodeJSON(t, resp.body, &v)
		if v.Verdict != "allow" || len(v.Checks) != len(protocol.CheckIDs) || v.Receipt == "" {
			t.Fatalf("verdict %+v", v)
		}
		for _, c := range v.Checks {
			if !c.OK || c.Detail == "" {
				t.Errorf("check %+v", c)
			}
		}
		// The receipt is stored and readable, and its verdict is the same.
		got := f.api.get("/v1/records/"+v.Receipt, api.MediaDagCBOR)
		rec, err := protocol.Parse(got.body)
		if err != nil {
			t.Fatalf("receipt: %v", err)
		}
		rb, ok := rec.Receipt()
		if !ok || len(rb.Decisions) != 1 || v.Item != 0 || rec.Issuer() != f.m.ID() || rb.Checkpoint.Size < 1 {
			t.Fatalf("receipt body %+v by %s, item %d", rb, rec.Issuer(), v.Item)
		}
		data, err := f.m.Store().GetBlock(rb.Decisions[0].Cid)
		if err != nil {
			t.Fatalf("the decision block: %v", err)
		}
		if blk, err := protocol.DecodeDecisionBlock(data); err != nil || blk.Verdict != "allow" || len(blk.Checks) != len(v.Checks) {
			t.Fatalf("decision block %+v: %v", blk, err)
		}
	})

	t.Run("deny", func(t *testing.T) {
		resp := f.post(t, "/v1/transfers/verify", f.request(func(r map[string]any) { r["purpose"] = "marketing" }), token)
		var v api.VerdictView
		decodeJSON(t, resp.body, &v)
		if resp.status != http.StatusOK || v.Verdict != "deny" {
			t.Fatalf("status %d verdict %+v", resp.status, v)
		}
		failed := ""
		for _, c := range v.Checks {
			if !c.OK {
				failed += c.ID + " " + c.Detail + ";"
			}
		}
		if !strings.Contains(failed, "consent.scope") || !strings.Contains(failed, "marketing") {
			t.Fatalf("failed checks %q", failed)
		}
	})

	t.Run("unknown consent", func(t *testing.T) {
		other := mustSign(t, f.tn.Authorities["DE"], accreditation(f.m.ID(), "DE", "x", protocol.RoleNode)) // a CID no one holds as a consent
		resp := f.post(t, "/v1/transfers/verify", f.request(func(r map[string]any) { r["consent"] = other.CID().String() }), token)
		var v api.VerdictView
		decodeJSON(t, resp.body, &v)
		if resp.status != http.StatusOK || v.Verdict != "deny" || v.Checks[0].ID != "consent.known" || v.Checks[0].OK {
			t.Fatalf("status %d verdict %+v", resp.status, v)
		}
	})

	t.Run("batch", func(t *testing.T) {
		var reqs []json.RawMessage
		for _, p := range []string{"research", "marketing", "research"} {
			reqs = append(reqs, f.request(func(r map[string]any) { r["purpose"] = p }))
		}
		body, _ := json.Marshal(map[string]any{"requests": reqs})
		resp := f.post(t, "/v1/transfers/verify-batch", body, token)
		var out api.BatchView
		decodeJSON(t, resp.body, &out)
		if resp.status != http.StatusOK || len(out.Results) != 3 || out.Receipt == "" {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		// One receipt; result i is its decision i, with a bundle of its own.
		for i, want := range []string{"allow", "deny", "allow"} {
			r := out.Results[i]
			if r.Verdict != want || r.Item != i {
				t.Errorf("result %d: item %d %s, want %s", i, r.Item, r.Verdict, want)
			}
			bundle := f.api.get(fmt.Sprintf("/v1/receipts/%s/bundle?item=%d", out.Receipt, i), "")
			if bundle.status != http.StatusOK {
				t.Fatalf("bundle of item %d: %d %s", i, bundle.status, bundle.body)
			}
			rep := protocol.CheckBundleCAR(bundle.body, protocol.NewBundleTrust(f.tn.Federation.Name, f.tn.Federation.Authorities(), f.tn.Federation.FoundingNodes()))
			if !rep.OK() || rep.Manifest.Item != int64(i) || rep.Block.Verdict != want {
				t.Errorf("bundle of item %d: %v", i, rep.Err())
			}
		}
		for _, item := range []string{"3", "-1", "x"} {
			got := f.api.get("/v1/receipts/"+out.Receipt+"/bundle?item="+item, "")
			if want := map[string]int{"3": 404, "-1": 400, "x": 400}[item]; got.status != want {
				t.Errorf("bundle of item %s: %d %s, want %d", item, got.status, got.body, want)
			}
		}
	})

	// Bad requests: 400 with the field named, and no receipt stored.
	for _, tc := range []struct {
		name, path string
		body       []byte
		status     int
		code       string
		field      string
	}{
		{"unknown field", "/v1/transfers/verify", f.request(func(r map[string]any) { r["colour"] = "red" }), 400, "bad_request", "colour"},
		{"bad code", "/v1/transfers/verify", f.request(func(r map[string]any) { r["to"] = "de" }), 400, "bad_request", "to"},
		{"bad CID", "/v1/transfers/verify", f.request(func(r map[string]any) { r["consent"] = "bafynotacid" }), 400, "bad_cid", "consent"},
		{"negative tier", "/v1/transfers/verify", f.request(func(r map[string]any) { r["tier"] = -1 }), 400, "bad_request", "tier"},
		{"wrong type", "/v1/transfers/verify", f.request(func(r map[string]any) { r["tier"] = "one" }), 400, "bad_request", "tier"},
		{"not JSON", "/v1/transfers/verify", []byte("consent=bafy"), 400, "bad_request", ""},
		{"an array", "/v1/transfers/verify", []byte(`[]`), 400, "bad_request", "one JSON object"},
		{"cut short", "/v1/transfers/verify", []byte(`{"consent":`), 400, "bad_request", "consent"},
		{"batch field", "/v1/transfers/verify-batch", []byte(`{"requests": [` + string(f.request(nil)) + `,` + string(f.request(func(r map[string]any) { r["from"] = "Germany" })) + `]}`), 400, "bad_request", "requests[1].from"},
		{"batch empty", "/v1/transfers/verify-batch", []byte(`{"requests": []}`), 400, "bad_request", "requests"},
		{"batch without requests", "/v1/transfers/verify-batch", []byte(`{}`), 400, "bad_request", "requests: missing field"},
		{"batch of a bare request", "/v1/transfers/verify-batch", f.request(nil), 400, "bad_request", "requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stateOf(f.m.Node)
			msg := wantAPIError(t, f.post(t, tc.path, tc.body, token), tc.status, tc.code)
			if tc.field != "" && !strings.Contains(msg, tc.field) {
				t.Errorf("message %q does not name %s", msg, tc.field)
			}
			if after := stateOf(f.m.Node); !after.equal(before) {
				t.Errorf("a refused request changed the store")
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		wantAPIError(t, f.post(t, "/v1/transfers/verify", f.request(nil), ""), http.StatusUnauthorized, "unauthorized")
	})
}
