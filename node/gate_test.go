package node_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
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

// TestRefusedByPeerIsLogged: a node whose peer's gate does not admit it
// (the peer lacks its accreditation) says so, "refused by peer", rather
// than that it connected.
func TestRefusedByPeerIsLogged(t *testing.T) {
	_, authority := newKey(t)
	refuserKey, refuserID := newKey(t)
	fedOf := func(bootstrap string) *config.Federation {
		return &config.Federation{Name: "gated", Jurisdictions: []config.Jurisdiction{{
			Code: "DE", Name: "Germany", Authority: authority.String(), Bootstrap: []string{bootstrap}}}}
	}
	// The refuser knows only itself.
	refuser, err := node.New(node.Config{Key: refuserKey, Federation: fedOf("/ip4/127.0.0.1/tcp/1/p2p/" + refuserID.String()),
		Jurisdiction: "DE", InMemory: true, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, DisableSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer refuser.Close()
	logs := &recordingHandler{}
	key, _ := newKey(t)
	dialer, err := node.New(node.Config{Key: key, Federation: fedOf(refuser.Addrs()[0].String()),
		Jurisdiction: "DE", InMemory: true, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, DisableSync: true,
		ReconnectInterval: 100 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer dialer.Close()
	eventually(t, 10*time.Second, `a log line "refused by peer"`, func() bool {
		return logs.has(slog.LevelWarn, "refused by peer")
	})
	if logs.has(slog.LevelInfo, "connected to member") {
		t.Error(`the dialer logged "connected to member" for a peer that refused it`)
	}
}

// recordingHandler keeps the messages logged to it.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r)
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// has reports whether a message at level containing text was logged.
func (h *recordingHandler) has(level slog.Level, text string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.msgs {
		if r.Level == level && strings.Contains(r.Message, text) {
			return true
		}
	}
	return false
}
