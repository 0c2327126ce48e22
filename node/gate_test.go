package node_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

func gateRefused(t *testing.T, m *testnet.Member) float64 {
	t.Helper()
	return metricValue(t, m.Registry(), "entente_gate_refused_total", nil)
}

// wantRefused dials m from h and checks that no connection survives: the
// dial fails, or the node closes what the dialer thought was open, and
// the node counts a refusal.
func wantRefused(t *testing.T, h host.Host, m *testnet.Member) {
	t.Helper()
	// A connection the node closed may still look open from h's side for a
	// moment; dialling then would reuse it and test nothing.
	eventually(t, 5*time.Second, "no connection left between the host and the node", func() bool {
		return !connected(m.Host(), h.ID()) && !connected(h, m.ID())
	})
	before := gateRefused(t, m)
	err := dial(testCtx(t, 5*time.Second), h, m)
	eventually(t, 5*time.Second, "the gate to refuse a non-member", func() bool {
		return gateRefused(t, m) > before && !connected(m.Host(), h.ID()) && !connected(h, m.ID())
	})
	t.Logf("node %d refused %s (dial error: %v)", m.Index, h.ID(), err)
}

func TestGate(t *testing.T) {
	tn := startNet(t, 3)
	ctx := testCtx(t, 20*time.Second)
	key, id := newKey(t)
	h := newOutsideHost(t, key)

	t.Log("a key that is no member is refused by every node")
	for _, m := range tn.Nodes {
		wantRefused(t, h, m)
	}

	t.Log("once DE's authority accredits the key as a node, every node admits it")
	acc, err := tn.Accredit(ctx, "DE", id, "late node", protocol.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, acc.CID()); err != nil {
		t.Fatal(err)
	}
	for _, m := range tn.Nodes {
		if err := dial(ctx, h, m); err != nil {
			t.Fatalf("accredited node cannot connect to node %d: %v", m.Index, err)
		}
		eventually(t, 5*time.Second, "the node to keep the connection", func() bool {
			return connected(m.Host(), id)
		})
	}
	// The node's status shows it as a (non-founding) node of DE.
	var st struct {
		Peers []struct {
			PeerID       string `json:"peer_id"`
			Jurisdiction string `json:"jurisdiction"`
			Founding     bool   `json:"founding"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(newAPIClient(t, tn.Nodes[1]).get("/v1/status", "").body, &st); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range st.Peers {
		if p.PeerID == id.String() {
			found = true
			if p.Jurisdiction != "DE" || p.Founding {
				t.Errorf("status shows the accredited node as %+v, want jurisdiction DE, not founding", p)
			}
		}
	}
	if !found {
		t.Errorf("status of node 1 does not list the accredited node: %+v", st.Peers)
	}

	t.Log("when the accreditation is revoked, every node closes its connection")
	rev := mustSign(t, tn.Authorities["DE"], &protocol.Revocation{Target: protocol.LinkTo(acc.CID()), Reason: "decommissioned", EffectiveAt: time.Now().UnixMilli()})
	if err := tn.Submit(ctx, tn.NodeOf("DE"), rev); err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, rev.CID()); err != nil {
		t.Fatal(err)
	}
	for _, m := range tn.Nodes {
		eventually(t, 5*time.Second, "node to drop the revoked node", func() bool {
			return !connected(m.Host(), id)
		})
	}
	t.Log("and refuses it again")
	for _, m := range tn.Nodes {
		wantRefused(t, h, m)
	}

	// The founding nodes themselves were never disturbed.
	if err := tn.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestGateRefusesAuthorityKey: an authority key is named in the federation
// file but is not a node; without a node accreditation it gets no
// connection.
func TestGateRefusesAuthorityKey(t *testing.T) {
	tn := startNet(t, 2)
	h := newOutsideHost(t, tn.Authorities["DE"])
	for _, m := range tn.Nodes {
		wantRefused(t, h, m)
	}
}
