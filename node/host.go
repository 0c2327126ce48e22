package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func (n *Node) startHost() error {
	var tcpOpts []any
	if n.cfg.DisableReuseport {
		tcpOpts = append(tcpOpts, tcp.DisableReuseport())
	}
	listen := make([]ma.Multiaddr, 0, len(n.cfg.Listen))
	for _, s := range n.cfg.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("node: listen address %q: %w", s, err)
		}
		listen = append(listen, a)
	}
	opts := []libp2p.Option{
		libp2p.Identity(n.cfg.Key),
		// Listen once the host exists: libp2p.New that cannot listen
		// leaves its goroutines running, a host that cannot is closed.
		libp2p.NoListenAddrs,
		// The transports of DESIGN.md: TCP and QUIC.
		libp2p.Transport(tcp.NewTCPTransport, tcpOpts...),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ConnectionGater(&gater{n: n}),
		libp2p.DisableRelay(),
	}
	if len(n.cfg.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(n.cfg.Announce))
		for _, s := range n.cfg.Announce {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("node: announce %q: %w", s, err)
			}
			announce = append(announce, a)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return fmt.Errorf("node: libp2p host: %w", err)
	}
	n.host = h // Close closes it, should listening fail
	if len(listen) > 0 {
		if err := h.Network().Listen(listen...); err != nil {
			return fmt.Errorf("node: listen: %w", err)
		}
	}
	return nil
}

// gater is the membership gate of DESIGN.md §3: only founding nodes and
// holders of a live node accreditation get past the security handshake.
type gater struct{ n *Node }

func (g *gater) allowed(id peer.ID) bool {
	if id == g.n.id {
		return false
	}
	ok := g.n.trust.isMember(id, g.n.cfg.Now().UnixMilli()) && (g.n.cfg.Gate == nil || g.n.cfg.Gate(id))
	if !ok {
		g.n.metrics.gateRefused.Inc()
		g.n.log.Debug("refused a peer that is not a member", "peer", id.String())
	}
	return ok
}

func (g *gater) InterceptPeerDial(p peer.ID) bool             { return g.allowed(p) }
func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}

// members lists the peers this node should stay connected to: the
// founding nodes of the recognised jurisdictions and the holders of live
// node accreditations that published addresses, except itself.
func (n *Node) members() []peer.AddrInfo {
	byID := map[peer.ID][]ma.Multiaddr{}
	for _, ai := range n.fed.BootstrapAddrs() {
		byID[ai.ID] = append(byID[ai.ID], ai.Addrs...)
	}
	now := n.cfg.Now().UnixMilli()
	n.nodeAddrsMu.Lock()
	for id, addrs := range n.nodeAddrs {
		byID[id] = append(byID[id], addrs...)
	}
	n.nodeAddrsMu.Unlock()
	delete(byID, n.id)
	out := make([]peer.AddrInfo, 0, len(byID))
	for id, addrs := range byID {
		if _, founding := n.trust.FoundingNode(id); founding || n.trust.isMember(id, now) {
			out = append(out, peer.AddrInfo{ID: id, Addrs: addrs})
		}
	}
	return out
}

// loadNodeAddrs reads the addresses of every held node accreditation, once
// at start; noteNodeAddrs keeps the map current after that.
func (n *Node) loadNodeAddrs() error {
	return n.forEach(protocol.KindAccreditation, n.noteNodeAddrs)
}

// noteNodeAddrs remembers the addresses a node accreditation publishes.
// Whether the key is still a member is decided when dialling.
func (n *Node) noteNodeAddrs(r *protocol.Record) {
	a, ok := r.Accreditation()
	if !ok || len(a.Addrs) == 0 || !containsRole(a.Roles, protocol.RoleNode) {
		return
	}
	id, err := peer.Decode(a.Subject)
	if err != nil {
		return
	}
	var addrs []ma.Multiaddr
	for _, s := range a.Addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if rest, last := ma.SplitLast(m); last != nil && last.Protocol().Code == ma.P_P2P {
			m = rest
		}
		addrs = append(addrs, m)
	}
	n.nodeAddrsMu.Lock()
	n.nodeAddrs[id] = addrs
	n.nodeAddrsMu.Unlock()
}

func containsRole(roles []protocol.Role, r protocol.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// dialLoop keeps the node connected to every member it knows an address
// of: at start, then every ReconnectInterval.
func (n *Node) dialLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		n.dialMissing()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dialMissing dials, in parallel, every member not connected, and returns
// when all dials have ended.
func (n *Node) dialMissing() {
	var wg sync.WaitGroup
	for _, ai := range n.members() {
		if n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			defer cancel()
			if err := n.host.Connect(ctx, ai); err != nil {
				n.log.Debug("dial failed", "peer", ai.ID.String(), "err", err)
				return
			}
			n.log.Info("connected to member", "peer", ai.ID.String())
		}()
	}
	wg.Wait()
}

// forEach calls fn for every held record of kind k, in acceptance order.
func (n *Node) forEach(k protocol.Kind, fn func(*protocol.Record)) error {
	q := store.Query{Kind: k, Limit: 1000}
	for {
		entries, next, err := n.store.List(q)
		if err != nil {
			return err
		}
		for _, e := range entries {
			fn(e.Record)
		}
		if next == 0 {
			return nil
		}
		q.After = next
	}
}
