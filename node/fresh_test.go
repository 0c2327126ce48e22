package node_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// signAged signs body with key, issued age before now (negative: ahead).
func signAged(t *testing.T, key crypto.PrivKey, age time.Duration, body protocol.Body) *protocol.Record {
	t.Helper()
	r, err := protocol.Sign(key, time.Now().Add(-age).UnixMilli(), body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// postRecordQuery POSTs raw to /v1/records?query with the client's token.
func (c *apiClient) postRecordQuery(query string, raw []byte) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+"/v1/records?"+query, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", api.MediaDagCBOR)
	req.Header.Set("Authorization", "Bearer "+c.token)
	return c.do(req)
}

// revokedController is a DE controller whose accreditation, live from an
// hour ago, the DE authority has just revoked (the attacker).
func revokedController(t *testing.T, ctx context.Context, tn *testnet.Net) *testnet.Party {
	t.Helper()
	p, err := tn.NewParty(ctx, "DE", "revoked platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	rev := mustSign(t, tn.Authorities["DE"], &protocol.Revocation{Target: protocol.LinkTo(p.Accreditation.CID()),
		Reason: "licence withdrawn", EffectiveAt: time.Now().UnixMilli()})
	if err := tn.Submit(ctx, tn.NodeOf("DE"), rev); err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, p.Accreditation.CID(), rev.CID()); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPostRecordFreshness: the API takes a record new to the federation
// only when fresh (DESIGN.md §4), and an older one only as the operator's
// import.
func TestPostRecordFreshness(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	ctx := testCtx(t, 20*time.Second)
	c := newAPIClient(t, m)
	auth := tn.Authorities["DE"]

	c.submit(freshAccreditation(t, tn, "DE", "fresh"))
	c.submit(signAged(t, auth, 9*time.Minute, accreditation(newID(t), "DE", "nine minutes old", protocol.RoleAuditor)))

	attacker := revokedController(t, ctx, tn)
	backdated := signAged(t, attacker.Key, 30*time.Minute, consent("DE"))
	old := signAged(t, auth, 11*time.Minute, accreditation(newID(t), "DE", "eleven minutes old", protocol.RoleAuditor))
	ahead := signAged(t, auth, -6*time.Minute, accreditation(newID(t), "DE", "six minutes ahead", protocol.RoleAuditor))
	for _, tc := range []struct {
		name   string
		rec    *protocol.Record
		msgHas []string
	}{
		{"11 minutes old", old, []string{"issued_at", "11m", "ago", "10m0s", "import"}},
		{"6 minutes ahead", ahead, []string{"issued_at", "future", "5m0s"}},
		{"a revoked controller's consent dated 30 minutes ago", backdated, []string{"30m", "10m0s", "import"}},
	} {
		before := stateOf(m.Node)
		msg := wantAPIError(t, c.postRecord(tc.rec.Bytes()), http.StatusUnprocessableEntity, "clock_skew")
		for _, s := range tc.msgHas {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: message %q does not say %q", tc.name, msg, s)
			}
		}
		if after := stateOf(m.Node); !before.equal(after) {
			t.Errorf("%s: the store changed: %+v -> %+v", tc.name, before, after)
		}
	}

	// The operator may import the old one (201, then 200 as held), not
	// the one ahead.
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		if resp := c.postRecordQuery("import=true", old.Bytes()); resp.status != want {
			t.Fatalf("import %d: status %d (%s), want %d", i, resp.status, resp.body, want)
		}
	}
	if !holds(t, m.Node, old.CID()) {
		t.Error("the imported record is not held")
	}
	wantAPIError(t, c.postRecordQuery("import=true", ahead.Bytes()), http.StatusUnprocessableEntity, "clock_skew")
	// import=false is a submission.
	wantAPIError(t, c.postRecordQuery("import=false", backdated.Bytes()), http.StatusUnprocessableEntity, "clock_skew")

	// Nobody else may import, not even a granted caller its own record.
	platform, err := tn.NewParty(ctx, "DE", "platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	token, err := m.Grant(ctx, "platform", protocol.RoleController, platform.ID)
	if err != nil {
		t.Fatal(err)
	}
	own := signAged(t, platform.Key, 20*time.Minute, consent("DE"))
	granted := newAPIClientAt(t, m.APIAddr(), token)
	msg := wantAPIError(t, granted.postRecordQuery("import=true", own.Bytes()), http.StatusForbidden, "forbidden")
	if !strings.Contains(msg, "operator") {
		t.Errorf("message %q does not say who may import", msg)
	}
	wantAPIError(t, granted.postRecord(own.Bytes()), http.StatusUnprocessableEntity, "clock_skew")
	if holds(t, m.Node, own.CID()) {
		t.Error("a granted caller's old consent was stored")
	}

	for _, q := range []string{"import=yes", "import=", "import=true&import=true", "imports=true", "import=TRUE"} {
		resp := c.postRecordQuery(q, freshAccreditation(t, tn, "DE", "bad query").Bytes())
		if msg := wantAPIError(t, resp, http.StatusBadRequest, "bad_request"); !strings.Contains(msg, "import") {
			t.Errorf("?%s: message %q does not name the parameter", q, msg)
		}
	}
}

// TestImportNotGossipedButSynced: a record the operator imports is not
// gossiped (the peer neither holds it after a later gossiped record nor
// judged it on gossip), and sync then brings it to the peer, old as it is.
func TestImportNotGossipedButSynced(t *testing.T) {
	tn, err := testnet.Start(testnet.Options{Nodes: 2, InMemory: true, API: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tn.Close(); err != nil {
			t.Errorf("testnet close: %v", err)
		}
	})
	ctx := testCtx(t, 30*time.Second)
	if err := tn.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	a, b := tn.Nodes[0], tn.Nodes[1]
	c := newAPIClient(t, a)
	// Gossip reaches b once the mesh has formed.
	eventuallyGossiped := func(what string) *protocol.Record {
		t.Helper()
		var r *protocol.Record
		eventually(t, 10*time.Second, what+" to reach node 1 on gossip", func() bool {
			r = freshAccreditation(t, tn, "DE", what)
			c.submit(r)
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			return b.Services().Ingest.WaitRecord(wctx, r.CID()) == nil
		})
		return r
	}
	eventuallyGossiped("a probe")

	imported := signAged(t, tn.Authorities["DE"], 30*time.Minute, accreditation(newID(t), "DE", "migrated", protocol.RoleAuditor))
	if resp := c.postRecordQuery("import=true", imported.Bytes()); resp.status != http.StatusCreated {
		t.Fatalf("import: status %d (%s)", resp.status, resp.body)
	}
	// A record submitted after the import goes out on the same streams; had
	// the import gone out, node 1 would have judged it before this one.
	marker := freshAccreditation(t, tn, "DE", "marker")
	c.submit(marker)
	if err := b.Services().Ingest.WaitRecord(ctx, marker.CID()); err != nil {
		t.Fatalf("the marker did not reach node 1: %v", err)
	}
	if holds(t, b.Node, imported.CID()) {
		t.Fatal("node 1 holds the imported record without sync: it was gossiped")
	}
	if n := gossipResult(t, b, "clock_skew"); n != 0 {
		t.Errorf("node 1 judged %v stale records on gossip: the import was gossiped", n)
	}

	if _, err := b.Services().Sync.With(ctx, a.ID()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if !holds(t, b.Node, imported.CID()) {
		t.Error("sync did not bring the imported record (30 minutes old) to node 1")
	}
}

// TestGossipRefusesStale: records not fresh that reach a node on gossip —
// among them the case, a revoked controller's consent dated 30
// minutes ago — are Ignored (counted as clock_skew), neither stored nor
// forwarded; the publisher is not punished, and its fresh records spread.
func TestGossipRefusesStale(t *testing.T) {
	tn := startNet(t, 3)
	ctx := testCtx(t, 30*time.Second)
	first := tn.Nodes[0]
	attacker := revokedController(t, ctx, tn)
	topic := joinAsNode(t, tn, first)
	waitForwarding(t, tn, topic)

	stale := []*protocol.Record{
		signAged(t, attacker.Key, 30*time.Minute, consent("DE")),
		signAged(t, tn.Authorities["DE"], 11*time.Minute, accreditation(newID(t), "DE", "eleven minutes old", protocol.RoleAuditor)),
		signAged(t, tn.Authorities["DE"], -6*time.Minute, accreditation(newID(t), "DE", "six minutes ahead", protocol.RoleAuditor)),
	}
	for _, r := range stale {
		if err := topic.Publish(ctx, r.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "node 0 to judge the stale records", func() bool {
		return gossipResult(t, first, "clock_skew") >= float64(len(stale))
	})
	// As in TestGossipRefusals: a marker published after node 0's verdicts
	// travels behind anything it would have forwarded.
	marker := freshAccreditation(t, tn, "DE", "marker after the stale ones")
	if err := topic.Publish(ctx, marker.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, marker.CID()); err != nil {
		t.Fatalf("a fresh record from the same publisher did not spread: %v", err)
	}
	for _, m := range tn.Nodes {
		for _, r := range stale {
			if holds(t, m.Node, r.CID()) {
				t.Errorf("node %d holds stale record %s", m.Index, r.CID())
			}
		}
		if m != first {
			if n := gossipResult(t, m, "clock_skew"); n != 0 {
				t.Errorf("node %d was offered %v stale records: node 0 forwarded them", m.Index, n)
			}
		}
	}
	if n := metricValue(t, first.Registry(), "entente_ingest_total", map[string]string{"source": "gossip", "result": "clock_skew"}); n != float64(len(stale)) {
		t.Errorf("node 0 counted %v gossip ingests refused as clock_skew, want %d", n, len(stale))
	}
}
