package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// startNet starts an in-memory testnet with the HTTP API and closes it when
// the test ends. With more than one node it waits for the full mesh.
func startNet(t *testing.T, nodes int) *testnet.Net {
	t.Helper()
	tn, err := testnet.Start(testnet.Options{Nodes: nodes, InMemory: true, API: true})
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := tn.Close(); err != nil {
			t.Errorf("testnet close: %v", err)
		}
	})
	if nodes > 1 {
		if err := tn.WaitConnected(testCtx(t, 15*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// testCtx is a context that ends after d or with the test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 10ms until it holds, failing the test after
// timeout. It is for network state that has no event to wait on.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) { return nodetest.Key(t) }

func mustSign(t *testing.T, key crypto.PrivKey, body protocol.Body) *protocol.Record {
	t.Helper()
	r, err := testnet.Sign(key, body)
	if err != nil {
		t.Fatalf("sign %s: %v", body.Kind(), err)
	}
	return r
}

// accreditation is a valid accreditation body for subject in j, live for a
// day around now.
func accreditation(subject peer.ID, j, name string, roles ...protocol.Role) *protocol.Accreditation {
	now := time.Now()
	return &protocol.Accreditation{
		Subject:      subject.String(),
		Jurisdiction: j,
		Roles:        roles,
		Name:         name,
		ValidFrom:    now.Add(-time.Hour).UnixMilli(),
		ValidUntil:   now.Add(24 * time.Hour).UnixMilli(),
	}
}

// freshAccreditation is a valid record that changes nothing anyone tests:
// j's authority accrediting a new key as an auditor. Tests use it as a
// marker and as filler.
func freshAccreditation(t *testing.T, tn *testnet.Net, j, name string) *protocol.Record {
	t.Helper()
	_, id := newKey(t)
	return mustSign(t, tn.Authorities[j], accreditation(id, j, name, protocol.RoleAuditor))
}

func consent(j string) *protocol.Consent {
	subject := make([]byte, 32)
	rand.Read(subject)
	return &protocol.Consent{
		Subject:       subject,
		Jurisdiction:  j,
		Categories:    []string{"face"},
		Purposes:      []string{"research"},
		MaxTier:       1,
		Destinations:  []string{"FR"},
		RetentionDays: 90,
		ExpiresAt:     time.Now().Add(365 * 24 * time.Hour).UnixMilli(),
		Method:        "explicit opt-in",
	}
}

func incident(j, tlp string, recipients ...string) *protocol.Incident {
	return &protocol.Incident{
		Ref:          "INC-" + tlp,
		Jurisdiction: j,
		Severity:     protocol.SeverityHigh,
		Status:       protocol.StatusOpen,
		TLP:          tlp,
		Affected:     []string{},
		Categories:   []string{"face"},
		DetectedAt:   time.Now().Add(-time.Minute).UnixMilli(),
		Summary:      "test incident",
		Recipients:   recipients,
	}
}

// rawEncMode encodes as protocol does (length-first key order, shortest
// integers, definite lengths), so that records built by hand are canonical
// and only the fault a test puts in them is refused.
var rawEncMode = func() cbor.EncMode {
	m, err := cbor.EncOptions{
		Sort:          cbor.SortLengthFirst,
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsEmpty,
		TagsMd:        cbor.TagsAllowed,
	}.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// signRaw builds and signs a record without protocol.Sign's checks, so a
// test can sign what protocol.Sign refuses (a body that breaks its schema,
// an unknown kind). body is encoded as is.
func signRaw(t *testing.T, key crypto.PrivKey, kind string, issuedAt int64, body any) []byte {
	t.Helper()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	rawBody, err := rawEncMode.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	type unsigned struct {
		V        int64           `cbor:"v"`
		Kind     string          `cbor:"kind"`
		Issuer   string          `cbor:"issuer"`
		IssuedAt int64           `cbor:"issued_at"`
		Body     cbor.RawMessage `cbor:"body"`
	}
	type signed struct {
		V        int64           `cbor:"v"`
		Kind     string          `cbor:"kind"`
		Issuer   string          `cbor:"issuer"`
		IssuedAt int64           `cbor:"issued_at"`
		Body     cbor.RawMessage `cbor:"body"`
		Sig      []byte          `cbor:"sig"`
	}
	u := unsigned{V: protocol.FormatVersion, Kind: kind, Issuer: id.String(), IssuedAt: issuedAt, Body: rawBody}
	enc, err := rawEncMode.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	msg := append(append([]byte(protocol.SignatureDomain), 0), enc...)
	sig, err := key.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rawEncMode.Marshal(signed{u.V, u.Kind, u.Issuer, u.IssuedAt, u.Body, sig})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// flipSignature returns a copy of a record's bytes with one bit of its
// signature changed: still canonical, no longer signed by its issuer.
func flipSignature(t *testing.T, r *protocol.Record) []byte {
	t.Helper()
	b := bytes.Clone(r.Bytes())
	// "sig" as a text string, then a 64-byte byte string header.
	i := bytes.Index(b, []byte("\x63sig\x58\x40"))
	if i < 0 {
		t.Fatal("no sig field in the record's bytes")
	}
	b[i+6] ^= 0x01
	return b
}

// apiClient talks to one node's HTTP API.
type apiClient struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func newAPIClient(t *testing.T, m *testnet.Member) *apiClient {
	t.Helper()
	return newAPIClientAt(t, m.APIAddr(), m.Token)
}

func newAPIClientAt(t *testing.T, addr, token string) *apiClient {
	t.Helper()
	if addr == "" {
		t.Fatal("node has no API address")
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &apiClient{t: t, base: "http://" + addr, token: token, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// response is an HTTP answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *apiClient) do(req *http.Request) response {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// postRecordWith POSTs body to /v1/records with the given Content-Type and
// Authorization header values ("" leaves a header out).
func (c *apiClient) postRecordWith(body io.Reader, contentType, authorization string) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+"/v1/records", body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return c.do(req)
}

// postRecord POSTs raw as a client should.
func (c *apiClient) postRecord(raw []byte) response {
	c.t.Helper()
	return c.postRecordWith(bytes.NewReader(raw), api.MediaDagCBOR, "Bearer "+c.token)
}

// submit POSTs a record and requires 201 Created with its CID.
func (c *apiClient) submit(r *protocol.Record) {
	c.t.Helper()
	resp := c.postRecord(r.Bytes())
	if resp.status != http.StatusCreated {
		c.t.Fatalf("POST %s: status %d, body %s; want 201", r, resp.status, resp.body)
	}
	var got struct{ CID string }
	decodeJSON(c.t, resp.body, &got)
	if got.CID != r.CID().String() {
		c.t.Fatalf("POST %s: cid %q, want %s", r.Kind(), got.CID, r.CID())
	}
}

func (c *apiClient) get(path, accept string) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.do(req)
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding JSON %q: %v", b, err)
	}
}

// wantAPIError checks an error answer: status, JSON Content-Type and the
// body {"error": code, "message": non-empty} with nothing else in it.
// It returns the message.
func wantAPIError(t *testing.T, resp response, status int, code string) string {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status %d, want %d (body %s)", resp.status, status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, api.MediaJSON) {
		t.Errorf("Content-Type %q, want %s", ct, api.MediaJSON)
	}
	var body map[string]any
	decodeJSON(t, resp.body, &body)
	if body["error"] != code {
		t.Errorf("error %v, want %q (body %s)", body["error"], code, resp.body)
	}
	msg, _ := body["message"].(string)
	if msg == "" {
		t.Errorf("no message in %s", resp.body)
	}
	if len(body) != 2 {
		t.Errorf("error body has fields beyond error and message: %s", resp.body)
	}
	return msg
}

// storeState is what a refusal must leave unchanged.
type storeState struct {
	len    uint64
	counts map[protocol.Kind]int64
}

func stateOf(n *node.Node) storeState {
	return storeState{len: n.Store().Len(), counts: n.Store().Counts()}
}

func (s storeState) equal(o storeState) bool {
	if s.len != o.len || len(s.counts) != len(o.counts) {
		return false
	}
	for k, v := range s.counts {
		if o.counts[k] != v {
			return false
		}
	}
	return true
}

func holds(t *testing.T, n *node.Node, c cid.Cid) bool {
	t.Helper()
	ok, err := n.Store().Has(c)
	if err != nil {
		t.Fatalf("store.Has(%s): %v", c, err)
	}
	return ok
}

// metricValue is the value of the counter or gauge name whose labels
// include labels, summed over matching series; 0 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	return nodetest.Metric(t, reg, name, labels)
}

// newOutsideHost is a libp2p host that is not part of the testnet: it
// dials out only, and is closed when the test ends.
func newOutsideHost(t *testing.T, key crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		t.Fatalf("libp2p host: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// dial connects h to m, ignoring dial backoff from earlier refusals (the
// test decides when a retry is due).
func dial(ctx context.Context, h host.Host, m *testnet.Member) error {
	ctx = network.WithForceDirectDial(ctx, "test")
	return h.Connect(ctx, peer.AddrInfo{ID: m.ID(), Addrs: m.Host().Addrs()})
}

func connected(a host.Host, b peer.ID) bool {
	return a.Network().Connectedness(b) == network.Connected
}
