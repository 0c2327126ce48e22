package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
)

// ConnLimits bound the node's libp2p connections. Zero fields take the
// defaults below. Only members get past the gate, so the connections
// are the members' (each may hold two: one dialled by each side, or TCP
// and QUIC), and the connection manager protects every member's
// (members.protect): it trims only what is not a member's, which the gate
// never lets in. The limits are there so that a federation that outgrows
// them fails loudly at start-up (checkConnLimits) rather than losing
// members' connections.
type ConnLimits struct {
	// Max bounds the connections, inbound and outbound together (the
	// resource manager's system limit). Default 512
	// (gossip.max_peer_connections).
	Max int
	// Low and High are the connection manager's watermarks: past High
	// connections it closes unprotected ones down to Low. Defaults 160
	// and 192, libp2p's (gossip.peer_connections_low and _high).
	Low, High int
}

func (l *ConnLimits) setDefaults() {
	g := config.Defaults().Gossip
	setInt(&l.Max, g.MaxPeerConnections)
	setInt(&l.Low, g.PeerConnectionsLow)
	setInt(&l.High, g.PeerConnectionsHigh)
}

// checkConnLimits refuses limits that conflict with each other or with a
// federation of others member nodes besides this one: each must be able
// to hold two connections within Max, and the connection manager must
// not want fewer connections than there are members.
func checkConnLimits(l ConnLimits, others int) error {
	switch {
	case l.Low > l.High:
		return fmt.Errorf("node config: Connections.Low (%d) is above Connections.High (%d)", l.Low, l.High)
	case l.High > l.Max:
		return fmt.Errorf("node config: Connections.High (%d) is above Connections.Max (%d): the resource manager would refuse connections before the connection manager trims any", l.High, l.Max)
	case l.High < others:
		return fmt.Errorf("node config: Connections.High (%d) is below the %d other member nodes of the federation: every member must stay connected; raise it to at least %d", l.High, others, others)
	case l.Max < 2*others:
		return fmt.Errorf("node config: Connections.Max (%d) is below twice the %d other member nodes of the federation (each may hold two connections): the resource manager would refuse members; raise it to at least %d", l.Max, others, 2*others)
	}
	return nil
}

// protocolLimits are the resource manager's limits of the node's own
// protocols: for all peers together, and for one peer (a backstop above
// the services' own per-peer limits, service.PeerLimit, which count and
// log what they refuse). Memory covers what each stream reserves: fetch
// 72 KiB, a sync session 1 MiB, a served push 6 MiB.
var protocolLimits = []struct {
	id          libp2pprotocol.ID
	total, peer rcmgr.BaseLimit
}{
	{protocol.FetchProtocolID,
		streams(256, 256, 256<<20), streams(64, 64, 32<<20)},
	{protocol.SyncProtocolID,
		streams(64, 16, 128<<20), streams(8, 4, 16<<20)},
	// Sync-all makes this node send its whole set: at most 8 peers at
	// once.
	{protocol.SyncAllProtocolID,
		streams(8, 8, 64<<20), streams(4, 2, 8<<20)},
	{protocol.CheckpointProtocolID,
		streams(128, 128, 64<<20), streams(8, 8, 4<<20)},
	{protocol.CosignProtocolID,
		streams(128, 128, 64<<20), streams(8, 8, 4<<20)},
	{protocol.DeliverProtocolID,
		streams(128, 128, 256<<20), streams(8, 8, 64<<20)},
}

// streams is a limit of in inbound and out outbound streams and memory
// bytes.
func streams(in, out int, memory int64) rcmgr.BaseLimit {
	return rcmgr.BaseLimit{StreamsInbound: in, StreamsOutbound: out, Streams: in + out, Memory: memory}
}

// newResourceManager is libp2p's default resource manager (scaled to the
// machine's memory) with explicit limits for the node's protocols and
// conns as the system's connection limit.
func newResourceManager(conns ConnLimits) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	for _, p := range protocolLimits {
		scaling.AddProtocolLimit(p.id, p.total, rcmgr.BaseLimitIncrease{})
		scaling.AddProtocolPeerLimit(p.id, p.peer, rcmgr.BaseLimitIncrease{})
	}
	system := rcmgr.PartialLimitConfig{System: rcmgr.ResourceLimits{
		Conns: rcmgr.LimitVal(conns.Max), ConnsInbound: rcmgr.LimitVal(conns.Max), ConnsOutbound: rcmgr.LimitVal(conns.Max),
	}}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(system.Build(scaling.AutoScale())))
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	return rm, nil
}
