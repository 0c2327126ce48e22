package node_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/protocol"
)

// readyz reads /readyz: its status and its reason when not ready.
func readyz(t *testing.T, c *apiClient) (int, string) {
	t.Helper()
	resp := c.get("/readyz", "")
	var body struct {
		Ready  bool
		Reason string
	}
	decodeJSON(t, resp.body, &body)
	if body.Ready != (resp.status == http.StatusOK) {
		t.Errorf("readyz: status %d with ready %v", resp.status, body.Ready)
	}
	return resp.status, body.Reason
}

// TestReadyOnceConnectedAndSynced: a node with other members is ready
// while connected to one and once a sync has completed; cut off from
// them it is not, and says why; healed, it is again.
func TestReadyOnceConnectedAndSynced(t *testing.T) {
	tn := startNet(t, 2)
	c := newAPIClient(t, tn.Nodes[0])
	eventually(t, 10*time.Second, "the node to be ready", func() bool {
		status, _ := readyz(t, c)
		return status == http.StatusOK
	})
	tn.Partition([]int{0}, []int{1})
	eventually(t, 10*time.Second, "the cut-off node to be not ready", func() bool {
		status, reason := readyz(t, c)
		return status == http.StatusServiceUnavailable && strings.Contains(reason, "no member node connected (the federation has 1 besides this one)")
	})
	tn.Heal()
	eventually(t, 10*time.Second, "the healed node to be ready again", func() bool {
		status, _ := readyz(t, c)
		return status == http.StatusOK
	})
}

// TestNotMemberWarnsAndIsNotReady: a node whose key is neither a founding
// node nor accredited says so at start (WARN, naming what to do) and is
// not ready; once it holds its own node accreditation it says that too,
// and, alone in its federation, is ready.
func TestNotMemberWarnsAndIsNotReady(t *testing.T) {
	key, id := newKey(t)
	authKey, authority := newKey(t)
	logs := &recordingHandler{}
	n, err := node.New(node.Config{Key: key, Jurisdiction: "DE", InMemory: true, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Federation: &config.Federation{Name: "alone", Jurisdictions: []config.Jurisdiction{{Code: "DE", Name: "Germany", Authority: authority.String()}}},
		APIAddr:    "127.0.0.1:0", APIToken: "operator-token", Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !logs.has(slog.LevelWarn, "neither a founding node nor holds a live node accreditation") ||
		!logs.has(slog.LevelWarn, "Have the authority of DE sign an accreditation with role node") {
		t.Error("a node that is not a member does not say so at start, with what to do")
	}
	c := newAPIClientAt(t, n.APIAddr(), "operator-token")
	status, reason := readyz(t, c)
	if status != http.StatusServiceUnavailable || !strings.Contains(reason, "neither a founding node") {
		t.Errorf("readyz of a node that is not a member: %d %q", status, reason)
	}

	acc := mustSign(t, authKey, accreditation(id, "DE", "the node itself", protocol.RoleNode))
	c.submit(acc)
	if !logs.has(slog.LevelInfo, "this node's node accreditation arrived") {
		t.Error("the node does not say that its accreditation arrived")
	}
	if status, reason := readyz(t, c); status != http.StatusOK {
		t.Errorf("readyz of an accredited node alone in its federation: %d %q", status, reason)
	}
}

// TestFoundingNodeAloneIsReady: the only member node of its federation is
// ready at once, and does not warn.
func TestFoundingNodeAloneIsReady(t *testing.T) {
	key, id := newKey(t)
	_, authority := newKey(t)
	logs := &recordingHandler{}
	n, err := node.New(node.Config{Key: key, Jurisdiction: "DE", InMemory: true, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Federation: &config.Federation{Name: "alone", Jurisdictions: []config.Jurisdiction{{Code: "DE", Name: "Germany",
			Authority: authority.String(), Bootstrap: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + id.String()}}}},
		APIAddr: "127.0.0.1:0", APIToken: "operator-token", Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if logs.has(slog.LevelWarn, "neither a founding node") {
		t.Error("a founding node warns that it is not a member")
	}
	if status, reason := readyz(t, newAPIClientAt(t, n.APIAddr(), "operator-token")); status != http.StatusOK {
		t.Errorf("readyz of a founding node alone: %d %q", status, reason)
	}
}
