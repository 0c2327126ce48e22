package node_test

import (
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// TestParkedUntilAuthorised: a consent gossiped before its issuer's
// accreditation is not lost: the node keeps it and accepts it once the
// accreditation arrives.
func TestParkedUntilAuthorised(t *testing.T) {
	tn := startNet(t, 2)
	ctx := testCtx(t, 20*time.Second)
	first := tn.Nodes[0]
	topic := joinAsNode(t, tn, first)
	waitForwarding(t, tn, topic)

	key, id := newKey(t)
	acc := mustSign(t, tn.Authorities["DE"], accreditation(id, "DE", "late platform", protocol.RoleController))
	early := mustSign(t, key, consent("DE"))
	if err := topic.Publish(ctx, early.Bytes()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the consent to be judged", func() bool {
		return gossipResult(t, first, "unauthorized_issuer") > 0
	})
	if holds(t, first.Node, early.CID()) {
		t.Fatal("the consent was accepted before its issuer was accredited")
	}
	if err := topic.Publish(ctx, acc.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := first.Services().Ingest.WaitRecord(ctx, early.CID()); err != nil {
		t.Fatalf("the parked consent was not accepted after the accreditation: %v", err)
	}
}
