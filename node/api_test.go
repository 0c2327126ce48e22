package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

func TestPostRecordNewThenHeld(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	r := freshAccreditation(t, tn, "DE", "new then held")

	for i, want := range []int{http.StatusCreated, http.StatusOK, http.StatusOK} {
		resp := c.postRecord(r.Bytes())
		if resp.status != want {
			t.Fatalf("POST #%d: status %d, want %d (body %s)", i+1, resp.status, want, resp.body)
		}
		var got map[string]string
		decodeJSON(t, resp.body, &got)
		if len(got) != 1 || got["cid"] != r.CID().String() {
			t.Fatalf("POST #%d: body %s, want {\"cid\": %q}", i+1, resp.body, r.CID())
		}
	}
	if n := m.Store().Len(); n != 1 {
		t.Fatalf("store holds %d records after three POSTs of one, want 1", n)
	}
}

// nonCanonicalKeyOrder re-encodes a record with its top-level keys in
// bytewise order (body, issued_at, issuer, kind, sig, v) instead of
// DAG-CBOR's length-first order. Values, signature included, are kept
// byte for byte.
func nonCanonicalKeyOrder(t *testing.T, r *protocol.Record) []byte {
	t.Helper()
	var fields map[string]cbor.RawMessage
	if err := cbor.Unmarshal(r.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) != 6 || keys[0] != "body" || keys[5] != "v" {
		t.Fatalf("unexpected record keys %v", keys)
	}
	out := []byte{0xa6} // map of 6 pairs
	for _, k := range keys {
		kb, err := rawEncMode.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, kb...), fields[k]...)
	}
	return out
}

// nonMinimalVersion rewrites the record's "v": 1 (one byte, 0x01) in its
// non-minimal one-byte-argument form (0x18 0x01), changing nothing else.
func nonMinimalVersion(t *testing.T, r *protocol.Record) []byte {
	t.Helper()
	b := r.Bytes()
	// Canonical order puts "v" first: map header, text "v", uint 1.
	if !bytes.HasPrefix(b, []byte{0xa6, 0x61, 'v', 0x01}) {
		t.Fatalf("record does not start with {\"v\": 1: % x", b[:4])
	}
	out := append([]byte{0xa6, 0x61, 'v', 0x18, 0x01}, b[4:]...)
	return out
}

func TestPostRecordRefusals(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	ctx := testCtx(t, 10*time.Second)
	auth := tn.Authorities["DE"]

	// Something held, so that refusals are seen not to disturb it.
	if _, err := tn.NewParty(ctx, "DE", "platform", protocol.RoleController); err != nil {
		t.Fatal(err)
	}
	c.submit(freshAccreditation(t, tn, "DE", "filler"))

	lowerCase := accreditation(newID(t), "DE", "lower-case jurisdiction", protocol.RoleAuditor)
	lowerCase.Jurisdiction = "de"
	// A DE consent by a key no authority accredited.
	stranger, _ := newKey(t)
	skewed, err := protocol.Sign(auth, time.Now().Add(10*time.Minute).UnixMilli(), accreditation(newID(t), "DE", "from the future", protocol.RoleAuditor))
	if err != nil {
		t.Fatal(err)
	}
	unheld := protocol.RecordCID([]byte("a record this node never saw"))
	tooLarge := bytes.Repeat([]byte{0xa0}, protocol.MaxRecordSize+1)
	bearer := "Bearer " + m.Token

	for _, tc := range []struct {
		name        string
		body        func() io.Reader
		contentType string
		auth        string
		status      int
		code        string
		msgHas      string
	}{
		{name: "garbage", body: bytesOf([]byte("this is not CBOR at all")), status: 400, code: "malformed"},
		{name: "empty body", body: bytesOf(nil), status: 400, code: "malformed"},
		{name: "trailing bytes", body: bytesOf(append(bytes.Clone(freshAccreditation(t, tn, "DE", "trailing").Bytes()), 0x00)), status: 400, code: "malformed"},
		{name: "two records", body: bytesOf(append(bytes.Clone(freshAccreditation(t, tn, "DE", "one").Bytes()), freshAccreditation(t, tn, "DE", "two").Bytes()...)), status: 400, code: "malformed"},
		{name: "a CBOR list", body: bytesOf([]byte{0x80}), status: 400, code: "malformed"},
		{name: "wrong Content-Type", body: bytesOf(freshAccreditation(t, tn, "DE", "json?").Bytes()), contentType: "application/json", status: 415, code: "unsupported_media_type", msgHas: api.MediaDagCBOR},
		{name: "no Content-Type", body: bytesOf(freshAccreditation(t, tn, "DE", "no type").Bytes()), contentType: "-", status: 415, code: "unsupported_media_type"},
		{name: "key order", body: bytesOf(nonCanonicalKeyOrder(t, freshAccreditation(t, tn, "DE", "key order"))), status: 400, code: "non_canonical"},
		{name: "non-minimal integer", body: bytesOf(nonMinimalVersion(t, freshAccreditation(t, tn, "DE", "wide int"))), status: 400, code: "non_canonical"},
		{name: "lower-case jurisdiction", body: bytesOf(signRaw(t, auth, "accreditation", time.Now().UnixMilli(), lowerCase)), status: 400, code: "invalid_body", msgHas: "body.jurisdiction"},
		{name: "unknown kind", body: bytesOf(signRaw(t, auth, "permit", time.Now().UnixMilli(), map[string]string{"to": "FR"})), status: 400, code: "unknown_kind"},
		{name: "no token", body: bytesOf(freshAccreditation(t, tn, "DE", "no token").Bytes()), auth: "-", status: 401, code: "unauthorized"},
		{name: "wrong token", body: bytesOf(freshAccreditation(t, tn, "DE", "wrong token").Bytes()), auth: "Bearer " + m.Token + "x", status: 401, code: "unauthorized"},
		{name: "token without Bearer", body: bytesOf(freshAccreditation(t, tn, "DE", "bare token").Bytes()), auth: m.Token, status: 401, code: "unauthorized"},
		{name: "too large", body: bytesOf(tooLarge), status: 413, code: "too_large"},
		{name: "too large, chunked", body: func() io.Reader { return io.MultiReader(bytes.NewReader(tooLarge)) }, status: 413, code: "too_large"},
		{name: "bad signature", body: bytesOf(flipSignature(t, freshAccreditation(t, tn, "DE", "bad sig"))), status: 422, code: "bad_signature"},
		{name: "unaccredited controller", body: bytesOf(mustSign(t, stranger, consent("DE")).Bytes()), status: 422, code: "unauthorized_issuer"},
		{name: "another jurisdiction's authority", body: bytesOf(mustSign(t, tn.Authorities["FR"], accreditation(newID(t), "DE", "not yours", protocol.RoleNode)).Bytes()), status: 422, code: "unauthorized_issuer"},
		{name: "revocation of an unheld record", body: bytesOf(mustSign(t, auth, &protocol.Revocation{Target: protocol.LinkTo(unheld), Reason: "gone", EffectiveAt: time.Now().UnixMilli()}).Bytes()), status: 422, code: "unknown_reference", msgHas: unheld.String()},
		{name: "issued ten minutes ahead", body: bytesOf(skewed.Bytes()), status: 422, code: "clock_skew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, authz := tc.contentType, tc.auth
			switch ct {
			case "":
				ct = api.MediaDagCBOR
			case "-":
				ct = ""
			}
			switch authz {
			case "":
				authz = bearer
			case "-":
				authz = ""
			}
			before := stateOf(m.Node)
			resp := c.postRecordWith(tc.body(), ct, authz)
			msg := wantAPIError(t, resp, tc.status, tc.code)
			if tc.msgHas != "" && !strings.Contains(msg, tc.msgHas) {
				t.Errorf("message %q does not mention %q", msg, tc.msgHas)
			}
			if tc.status == http.StatusUnauthorized {
				if h := resp.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", h)
				}
			}
			if after := stateOf(m.Node); !before.equal(after) {
				t.Errorf("store changed by a refused record: %+v -> %+v", before, after)
			}
		})
	}

	// The node still takes a good record after all that.
	c.submit(freshAccreditation(t, tn, "DE", "after the refusals"))
}

func bytesOf(b []byte) func() io.Reader {
	return func() io.Reader { return bytes.NewReader(b) }
}

func newID(t *testing.T) peer.ID {
	_, id := newKey(t)
	return id
}

// recordJSON is the DAG-JSON view of a record with a link and bytes.
type recordJSON struct {
	V        int    `json:"v"`
	Kind     string `json:"kind"`
	Issuer   string `json:"issuer"`
	IssuedAt int64  `json:"issued_at"`
	Body     struct {
		Target struct {
			Link string `json:"/"`
		} `json:"target"`
		Reason string `json:"reason"`
	} `json:"body"`
	Sig struct {
		Slash struct {
			Bytes string `json:"bytes"`
		} `json:"/"`
	} `json:"sig"`
}

func TestGetRecord(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	ctx := testCtx(t, 10*time.Second)

	platform, err := tn.NewParty(ctx, "DE", "platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	cons := mustSign(t, platform.Key, consent("DE"))
	c.submit(cons)
	rev := mustSign(t, platform.Key, &protocol.Revocation{Target: protocol.LinkTo(cons.CID()), Reason: "the person withdrew", EffectiveAt: time.Now().UnixMilli()})
	c.submit(rev)

	t.Run("DAG-JSON", func(t *testing.T) {
		resp := c.get("/v1/records/"+rev.CID().String(), "")
		if resp.status != http.StatusOK {
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, api.MediaJSON) {
			t.Errorf("Content-Type %q", ct)
		}
		var view struct {
			CID    string          `json:"cid"`
			Record json.RawMessage `json:"record"`
		}
		decodeJSON(t, resp.body, &view)
		if view.CID != rev.CID().String() {
			t.Errorf("cid %q, want %s", view.CID, rev.CID())
		}
		var rj recordJSON
		decodeJSON(t, view.Record, &rj)
		if rj.V != 1 || rj.Kind != "revocation" || rj.Issuer != platform.ID.String() || rj.IssuedAt != rev.IssuedAt() {
			t.Errorf("envelope fields wrong: %s", view.Record)
		}
		if rj.Body.Target.Link != cons.CID().String() {
			t.Errorf("body.target = %q, want the link {\"/\": %q}: %s", rj.Body.Target.Link, cons.CID(), view.Record)
		}
		if rj.Sig.Slash.Bytes == "" {
			t.Errorf("sig is not DAG-JSON bytes {\"/\": {\"bytes\": ...}}: %s", view.Record)
		}
		// The view is lossless: it gives back the very record.
		back, err := protocol.RecordFromJSON(view.Record)
		if err != nil {
			t.Fatalf("RecordFromJSON: %v", err)
		}
		if !back.CID().Equals(rev.CID()) {
			t.Errorf("record from its JSON view has CID %s, want %s", back.CID(), rev.CID())
		}
	})

	t.Run("DAG-CBOR", func(t *testing.T) {
		for _, accept := range []string{api.MediaDagCBOR, "application/json;q=0.5, " + api.MediaDagCBOR} {
			resp := c.get("/v1/records/"+cons.CID().String(), accept)
			if resp.status != http.StatusOK {
				t.Fatalf("Accept %q: status %d: %s", accept, resp.status, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); ct != api.MediaDagCBOR {
				t.Errorf("Accept %q: Content-Type %q, want %s", accept, ct, api.MediaDagCBOR)
			}
			if !bytes.Equal(resp.body, cons.Bytes()) {
				t.Errorf("Accept %q: body is not the record's exact bytes", accept)
			}
		}
	})

	t.Run("not held", func(t *testing.T) {
		resp := c.get("/v1/records/"+protocol.RecordCID([]byte("never stored")).String(), "")
		wantAPIError(t, resp, http.StatusNotFound, api.CodeNotFound)
		resp = c.get("/v1/records/"+protocol.RecordCID([]byte("never stored")).String(), api.MediaDagCBOR)
		wantAPIError(t, resp, http.StatusNotFound, api.CodeNotFound)
	})

	t.Run("bad CID", func(t *testing.T) {
		sum, _ := mh.Sum([]byte("raw"), mh.SHA2_256, -1)
		for _, s := range []string{
			"not-a-cid",
			"bafy",
			cid.NewCidV1(cid.Raw, sum).String(), // a CID, but not of a record
			cid.NewCidV0(sum).String(),
			strings.ToUpper(cons.CID().String()), // a held record, in another text form
		} {
			resp := c.get("/v1/records/"+url.PathEscape(s), "")
			wantAPIError(t, resp, http.StatusBadRequest, string(protocol.CodeBadCID))
		}
	})
}

// listPage is an answer of GET /v1/records.
type listPage struct {
	Records []struct {
		CID    string          `json:"cid"`
		Record json.RawMessage `json:"record"`
	} `json:"records"`
	Next string `json:"next"`
}

func (c *apiClient) list(query string) listPage {
	c.t.Helper()
	resp := c.get("/v1/records?"+query, "")
	if resp.status != http.StatusOK {
		c.t.Fatalf("GET /v1/records?%s: status %d: %s", query, resp.status, resp.body)
	}
	var p listPage
	decodeJSON(c.t, resp.body, &p)
	if p.Records == nil {
		c.t.Fatalf("GET /v1/records?%s: records is not a list: %s", query, resp.body)
	}
	return p
}

// listAll follows next until it is empty and returns every CID, in order,
// and the number of pages.
func (c *apiClient) listAll(query string, limit int) (cids []string, pages int) {
	c.t.Helper()
	after := ""
	for {
		q := query
		if q != "" {
			q += "&"
		}
		q += fmt.Sprintf("limit=%d", limit)
		if after != "" {
			q += "&after=" + after
		}
		p := c.list(q)
		pages++
		if len(p.Records) > limit {
			c.t.Fatalf("page of %d records with limit %d", len(p.Records), limit)
		}
		for _, r := range p.Records {
			cids = append(cids, r.CID)
		}
		if p.Next == "" {
			return cids, pages
		}
		if len(p.Records) == 0 {
			c.t.Fatalf("empty page with next %q", p.Next)
		}
		if pages > 1000 {
			c.t.Fatal("paging does not end")
		}
		after = p.Next
	}
}

func TestListRecords(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)

	// Build a known store, in a known acceptance order.
	var all []*protocol.Record
	add := func(r *protocol.Record) *protocol.Record {
		c.submit(r)
		all = append(all, r)
		return r
	}
	deKey, deID := newKey(t)
	frKey, frID := newKey(t)
	frAuthority, err := peer.IDFromPrivateKey(tn.Authorities["FR"])
	if err != nil {
		t.Fatal(err)
	}
	add(mustSign(t, tn.Authorities["DE"], accreditation(deID, "DE", "de platform", protocol.RoleController)))
	add(mustSign(t, tn.Authorities["FR"], accreditation(frID, "FR", "fr platform", protocol.RoleController)))
	var deConsents []*protocol.Record
	for range 3 {
		deConsents = append(deConsents, add(mustSign(t, deKey, consent("DE"))))
	}
	frConsent := add(mustSign(t, frKey, consent("FR")))
	deRevocation := add(mustSign(t, deKey, &protocol.Revocation{Target: protocol.LinkTo(deConsents[0].CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()}))

	cidsOf := func(rs ...*protocol.Record) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.CID().String()
		}
		return out
	}
	filter := func(keep func(*protocol.Record) bool) []string {
		var out []*protocol.Record
		for _, r := range all {
			if keep(r) {
				out = append(out, r)
			}
		}
		return cidsOf(out...)
	}

	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"", cidsOf(all...)},
			{"kind=consent", filter(func(r *protocol.Record) bool { return r.Kind() == protocol.KindConsent })},
			{"kind=revocation", cidsOf(deRevocation)},
			{"kind=receipt", nil},
			{"issuer=" + deID.String(), append(cidsOf(deConsents...), deRevocation.CID().String())},
			{"issuer=" + frAuthority.String(), cidsOf(all[1])},
			{"jurisdiction=FR", cidsOf(all[1], frConsent)},
			{"jurisdiction=BR", nil},
			{"kind=consent&jurisdiction=DE", cidsOf(deConsents...)},
			{"kind=accreditation&issuer=" + frID.String(), nil},
		} {
			p := c.list(tc.query)
			got := make([]string, 0, len(p.Records))
			for _, r := range p.Records {
				got = append(got, r.CID)
			}
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("?%s: got %v, want %v", tc.query, got, tc.want)
			}
			if p.Next != "" {
				t.Errorf("?%s: next %q on a page that holds everything", tc.query, p.Next)
			}
		}
	})

	t.Run("records are DAG-JSON", func(t *testing.T) {
		p := c.list("kind=revocation")
		if len(p.Records) != 1 {
			t.Fatalf("got %d revocations", len(p.Records))
		}
		back, err := protocol.RecordFromJSON(p.Records[0].Record)
		if err != nil {
			t.Fatal(err)
		}
		if !back.CID().Equals(deRevocation.CID()) {
			t.Fatalf("listed record has CID %s, want %s", back.CID(), deRevocation.CID())
		}
	})

	t.Run("paging", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3, len(all), len(all) + 1, 1000} {
			got, pages := c.listAll("", limit)
			if !slices.Equal(got, cidsOf(all...)) {
				t.Errorf("limit %d: paged through %v, want %v", limit, got, cidsOf(all...))
			}
			if want := (len(all) + limit - 1) / limit; pages != want {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
			}
		}
		got, _ := c.listAll("kind=consent", 2)
		if want := filter(func(r *protocol.Record) bool { return r.Kind() == protocol.KindConsent }); !slices.Equal(got, want) {
			t.Errorf("consents paged: %v, want %v", got, want)
		}
	})

	t.Run("bad queries", func(t *testing.T) {
		for _, tc := range []struct {
			query string
			code  string
		}{
			{"limit=0", api.CodeBadRequest},
			{"limit=-1", api.CodeBadRequest},
			{"limit=1001", api.CodeBadRequest},
			{"limit=ten", api.CodeBadRequest},
			{"after=yesterday", api.CodeBadRequest},
			{"after=-1", api.CodeBadRequest},
			{"issuer=someone", api.CodeBadRequest},
			{"jurisdiction=de", api.CodeBadRequest},
			{"jurisdiction=DEU", api.CodeBadRequest},
			{"kind=permit", "unknown_kind"},
			{"colour=blue", api.CodeBadRequest},
			{"kind=consent&sort=desc", api.CodeBadRequest},
			{"kind=consent&kind=incident", api.CodeBadRequest}, // one value each, never the first of several
		} {
			wantAPIError(t, c.get("/v1/records?"+tc.query, ""), http.StatusBadRequest, tc.code)
		}
		// Every list and stream of the API refuses a parameter given twice.
		for _, path := range []string{"/v1/incidents?status=open&status=resolved", "/v1/incidents/stream?jurisdiction=DE&jurisdiction=FR",
			"/v1/receipts?from=DE&from=FR", "/v1/log/proof?cid=x&cid=y"} {
			resp := c.get(path, c.token)
			wantAPIError(t, resp, http.StatusBadRequest, api.CodeBadRequest)
			if !strings.Contains(string(resp.body), "given 2 times") {
				t.Errorf("%s: %s, want it to say the parameter was given twice", path, resp.body)
			}
		}
	})
}

func TestStatus(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	c.submit(freshAccreditation(t, tn, "DE", "one"))
	c.submit(freshAccreditation(t, tn, "DE", "two"))

	resp := c.get("/v1/status", "")
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var raw map[string]json.RawMessage
	decodeJSON(t, resp.body, &raw)
	for _, f := range []string{"peer_id", "jurisdiction", "federation", "federation_digest", "version", "peers", "records", "log"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("status has no %q: %s", f, resp.body)
		}
	}
	if want, _ := tn.Federation.Digest(); string(raw["federation_digest"]) != `"`+want+`"` {
		t.Errorf("federation_digest %s, want the digest of the federation file the node read, %s", raw["federation_digest"], want)
	}
	if string(raw["peers"]) == "null" {
		t.Errorf("peers is null, want a list: %s", resp.body)
	}
	var st struct {
		PeerID       string           `json:"peer_id"`
		Jurisdiction string           `json:"jurisdiction"`
		Federation   string           `json:"federation"`
		Peers        []any            `json:"peers"`
		Records      map[string]int64 `json:"records"`
		Log          struct {
			Size uint64 `json:"size"`
		} `json:"log"`
	}
	decodeJSON(t, resp.body, &st)
	if st.PeerID != m.ID().String() || st.Jurisdiction != "DE" || st.Federation != tn.Federation.Name {
		t.Errorf("identity fields: %s", resp.body)
	}
	if len(st.Peers) != 0 {
		t.Errorf("a lone node lists peers: %s", resp.body)
	}
	if st.Records["accreditation"] != 2 || st.Records["consent"] != 0 {
		t.Errorf("records %v, want 2 accreditations", st.Records)
	}
	if st.Log.Size != 2 {
		t.Errorf("log.size %d, want 2", st.Log.Size)
	}
}

func TestProbesAndMetrics(t *testing.T) {
	tn := startNet(t, 1)
	c := newAPIClient(t, tn.Nodes[0])
	c.submit(freshAccreditation(t, tn, "DE", "counted"))
	c.postRecord([]byte("garbage"))

	for _, path := range []string{"/healthz", "/readyz"} {
		resp := c.get(path, "")
		if resp.status != http.StatusOK {
			t.Errorf("GET %s: status %d: %s", path, resp.status, resp.body)
		}
	}
	var ready struct{ Ready bool }
	decodeJSON(t, c.get("/readyz", "").body, &ready)
	if !ready.Ready {
		t.Error("readyz: ready is false on a running node")
	}

	resp := c.get("/metrics", "")
	if resp.status != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.status)
	}
	text := string(resp.body)
	for _, want := range []string{
		`entente_ingest_total{result="accepted",source="api"} 1`,
		`entente_ingest_total{result="malformed",source="api"} 1`,
		`entente_records{kind="accreditation"} 1`,
		"entente_peers ",
		"entente_gate_refused_total ",
		"entente_ingest_seconds_count 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	wantAPIError(t, c.get("/v1/no-such-thing", ""), http.StatusNotFound, api.CodeNotFound)
}

// TestOverloaded holds the only request slot of a node that has one, with
// a POST whose body has not arrived, so that the answer to any other
// request is certain: 503 overloaded with Retry-After.
//
// The POST asks "Expect: 100-continue", and the server sends 100 Continue
// only when the record handler first reads the body: from then until the
// body ends, the handler is known to hold the slot. No other request is in
// flight before that, so the POST cannot lose the slot to one.
func TestOverloaded(t *testing.T) {
	n, auth := newStandaloneNode(t, node.Config{APIAddr: "127.0.0.1:0", APIToken: "secret", MaxConcurrentRequests: 1})
	c := newAPIClientAt(t, n.APIAddr(), "secret")

	slowTransport := &http.Transport{ExpectContinueTimeout: time.Minute}
	t.Cleanup(slowTransport.CloseIdleConnections)
	pr, pw := io.Pipe()
	defer pw.Close()
	gotContinue := make(chan struct{})
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	req, err := http.NewRequest(http.MethodPost, c.base+"/v1/records", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", api.MediaDagCBOR)
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("Expect", "100-continue")
	req = req.WithContext(httptrace.WithClientTrace(testCtx(t, 10*time.Second), &httptrace.ClientTrace{
		Got100Continue: func() { close(gotContinue) },
	}))
	go func() {
		resp, err := slowTransport.RoundTrip(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	select {
	case <-gotContinue:
	case res := <-done:
		t.Fatalf("the POST was answered before its body was read: status %d, err %v", res.status, res.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no 100 Continue: the record handler never started reading the body")
	}

	for _, path := range []string{"/healthz", "/v1/status", "/v1/records"} {
		refused := c.get(path, "")
		wantAPIError(t, refused, http.StatusServiceUnavailable, api.CodeOverloaded)
		if ra := refused.header.Get("Retry-After"); ra == "" {
			t.Errorf("GET %s: 503 without Retry-After", path)
		} else if secs, err := strconv.Atoi(ra); err != nil || secs < 1 {
			t.Errorf("GET %s: Retry-After %q, want a positive number of seconds", path, ra)
		}
	}

	r := mustSign(t, auth, accreditation(newID(t), "DE", "slow", protocol.RoleAuditor))
	if _, err := pw.Write(r.Bytes()); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if got := <-done; got.err != nil || got.status != http.StatusCreated {
		t.Fatalf("slow POST: status %d, err %v; want 201", got.status, got.err)
	}
	if resp := c.get("/healthz", ""); resp.status != http.StatusOK {
		t.Fatalf("after the slot is free: status %d: %s", resp.status, resp.body)
	}
}
