package node

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// newHost makes the libp2p host, with the membership gate, the resource
// manager and the connection manager (limits.go), and listens. A host
// that cannot listen is closed before newHost returns.
func newHost(cfg *Config, gate *gater) (host.Host, error) {
	rm, err := newResourceManager(cfg.Connections)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.Connections.Low, cfg.Connections.High)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	var tcpOpts []any
	if cfg.DisableReuseport {
		tcpOpts = append(tcpOpts, tcp.DisableReuseport())
	}
	listen, err := parseAddrs("listen", cfg.Listen)
	if err != nil {
		rm.Close()
		cm.Close()
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		// Listen once the host exists: libp2p.New that cannot listen
		// leaves its goroutines running, a host that cannot is closed.
		libp2p.NoListenAddrs,
		// The transports of DESIGN.md: TCP and QUIC.
		libp2p.Transport(tcp.NewTCPTransport, tcpOpts...),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ConnectionGater(gate),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
	}
	if len(cfg.Announce) > 0 {
		announce, err := parseAddrs("announce", cfg.Announce)
		if err != nil {
			rm.Close()
			cm.Close()
			return nil, err
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		// libp2p.New closes what it was given when it fails.
		return nil, fmt.Errorf("node: libp2p host: %w", err)
	}
	if len(listen) > 0 {
		if err := h.Network().Listen(listen...); err != nil {
			h.Close()
			return nil, fmt.Errorf("node: listen: %w", err)
		}
	}
	return h, nil
}

func parseAddrs(what string, addrs []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("node: %s address %q: %w", what, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// gater is the membership gate of DESIGN.md §3: only founding nodes and
// holders of a live node accreditation get past the security handshake.
type gater struct {
	self     peer.ID
	isMember func(peer.ID) bool
	extra    func(peer.ID) bool // Config.Gate; nil admits every member
	// graylisted, once set, names the members whose gossip score fell
	// below the graylist threshold: refused while they stay there.
	graylisted atomic.Pointer[func(peer.ID) bool]
	refused    prometheus.Counter
	log        *slog.Logger
}

func newGater(self peer.ID, isMember, extra func(peer.ID) bool, log *slog.Logger) *gater {
	return &gater{self: self, isMember: isMember, extra: extra, log: log,
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_gate_refused_total",
			Help: "Connections refused because the peer is not a federation member.",
		}),
	}
}

func (g *gater) allowed(id peer.ID) bool {
	if id == g.self {
		return false
	}
	ok := g.isMember(id) && (g.extra == nil || g.extra(id))
	if !ok {
		g.refused.Inc()
		g.log.Debug("refused a peer that is not a member", "peer", id.String())
		return false
	}
	if gl := g.graylisted.Load(); gl != nil && (*gl)(id) {
		g.refused.Inc()
		g.log.Debug("refused a member whose gossip is graylisted (it sent invalid records)", "peer", id.String())
		return false
	}
	return true
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
