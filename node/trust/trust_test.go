package trust_test

import (
	"testing"
	"time"

	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/protocol"
)

// TestMembership: a founding node and an accredited node are members of
// their jurisdiction; a controller and a stranger are not; a revoked node
// accreditation ends membership.
func TestMembership(t *testing.T) {
	_, founding := nodetest.Key(t)
	fed := nodetest.NewFed(t, "trust-test", founding)
	v := fed.View(t)
	_, nodeID := nodetest.Key(t)
	_, ctrl := nodetest.Key(t)
	_, stranger := nodetest.Key(t)
	acc := fed.Accredit(t, nodeID, protocol.RoleNode)
	nodetest.Put(t, v.Store(), acc, fed.Accredit(t, ctrl, protocol.RoleController))
	now := time.Now().UnixMilli()
	for id, want := range map[string]bool{founding.String(): true, nodeID.String(): true, ctrl.String(): false, stranger.String(): false} {
		pid, _ := protocol.ParsePeerID(id)
		if got := v.IsMember(pid, now); got != want {
			t.Errorf("IsMember(%s) = %v, want %v", id, got, want)
		}
		wantJ := ""
		if want {
			wantJ = "DE"
		}
		if got := v.NodeJurisdiction(pid, now); got != wantJ {
			t.Errorf("NodeJurisdiction(%s) = %q, want %q", id, got, wantJ)
		}
	}
	nodetest.Put(t, v.Store(), nodetest.Sign(t, fed.Authority, &protocol.Revocation{Target: protocol.LinkTo(acc.CID()),
		Reason: "retired", EffectiveAt: now - 1}))
	if v.IsMember(nodeID, now) {
		t.Error("a node whose accreditation was revoked is still a member")
	}
	if got := v.Jurisdictions(); len(got) != 1 || got[0] != "DE" {
		t.Errorf("Jurisdictions %v", got)
	}
}
