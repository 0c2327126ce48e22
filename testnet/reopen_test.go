package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// TestReopen starts a kept testnet, closes it and starts it again from
// its directory: the same nodes, holding what they held, meshed again.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	if Kept(dir) {
		t.Fatal("an empty directory is taken for a kept testnet")
	}
	net, err := Start(Options{Nodes: 2, Dir: dir, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		net.Close()
		t.Fatal(err)
	}
	p, err := net.NewParty(ctx, "FR", "platform", protocol.RoleController)
	if err == nil {
		err = net.WaitAll(ctx, p.Accreditation.CID())
	}
	ids := []string{net.Nodes[0].ID().String(), net.Nodes[1].ID().String()}
	if cerr := net.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if !Kept(dir) {
		t.Fatal("Kept does not recognise the directory of a kept testnet")
	}

	again, err := Reopen(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if len(again.Nodes) != 2 || again.Nodes[0].ID().String() != ids[0] || again.Nodes[1].ID().String() != ids[1] {
		t.Fatalf("reopened nodes %v, want %v", again.Nodes, ids)
	}
	if again.Nodes[0].Jurisdiction() != "DE" || again.Nodes[1].Jurisdiction() != "FR" {
		t.Errorf("reopened jurisdictions %s, %s", again.Nodes[0].Jurisdiction(), again.Nodes[1].Jurisdiction())
	}
	for _, m := range again.Nodes {
		if ok, err := m.Store().Has(p.Accreditation.CID()); err != nil || !ok {
			t.Errorf("node %d no longer holds the accreditation (%v)", m.Index, err)
		}
	}
	if err := again.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// The authorities are the same: a new party spreads.
	q, err := again.NewParty(ctx, "DE", "another platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.WaitAll(ctx, q.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
}
