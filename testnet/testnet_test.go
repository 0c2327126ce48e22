package testnet

import (
	"context"
	"strings"
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

// TestQUIC runs a federation whose nodes also listen on QUIC and checks
// that records spread over QUIC connections.
func TestQUIC(t *testing.T) {
	net, err := Start(Options{Nodes: 2, InMemory: true, QUIC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	quic := 0
	for _, m := range net.Nodes {
		for _, c := range m.Host().Network().Conns() {
			if strings.Contains(c.RemoteMultiaddr().String(), "/quic-v1") {
				quic++
			}
		}
	}
	if quic == 0 {
		t.Fatal("no connection uses QUIC although every node listens on it and is listed with it")
	}
	p, err := net.NewParty(ctx, "DE", "platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.WaitAll(ctx, p.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
}
