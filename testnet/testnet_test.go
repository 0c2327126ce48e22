package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

func TestSpreadAcrossFederation(t *testing.T) {
	net, err := Start(Options{Nodes: 3, InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := net.NewParty(ctx, "DE", "platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := net.WaitAll(ctx, p.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
	t.Logf("accreditation reached all nodes in %s", time.Since(start))
}
