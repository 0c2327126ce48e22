package node

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/trust"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// members keeps the node connected to the federation's members: it knows
// the addresses node accreditations publish (besides the federation
// file's founding nodes), dials every member it is not connected to at
// start and every ReconnectInterval, and closes the connections of a
// node whose accreditation is revoked.
type members struct {
	self  peer.ID
	fed   *config.Federation
	trust *trust.View
	now   service.Clock
	log   *slog.Logger
	h     host.Host // set once the host exists, before records arrive
	g     *service.Group

	mu    sync.Mutex
	addrs map[peer.ID][]ma.Multiaddr // from node accreditations
	// nodeKeys are the subjects of node accreditations, by jurisdiction,
	// live or not: NodesOf looks at these alone, not at every
	// accreditation of a jurisdiction (which may be millions).
	nodeKeys map[string]map[peer.ID]bool
	// nodes caches NodesOf per jurisdiction, for nodesTTL (a node
	// accreditation lapses with time) or until an accreditation or a
	// revocation arrives (under mu).
	nodes map[string]cachedNodes
	// refusals are the members that refused this node since they last
	// admitted it (logRefused).
	refusals map[peer.ID]bool
}

// cachedNodes is a jurisdiction's nodes as NodesOf found them at a time.
type cachedNodes struct {
	at    time.Time
	nodes []peer.AddrInfo
}

// nodesTTL bounds how stale NodesOf's answer may be.
const nodesTTL = 5 * time.Second

func newMembers(self peer.ID, fed *config.Federation, v *trust.View, now service.Clock, log *slog.Logger) (*members, error) {
	m := &members{self: self, fed: fed, trust: v, now: now, log: log, g: service.NewGroup(), addrs: map[peer.ID][]ma.Multiaddr{},
		nodeKeys: map[string]map[peer.ID]bool{}}
	q := store.Query{Kind: protocol.KindAccreditation, Limit: 1000}
	for {
		entries, next, err := v.Store().List(q)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			m.note(e.Record)
		}
		if next == 0 {
			return m, nil
		}
		q.After = next
	}
}

// isMember is the membership test, now.
func (m *members) isMember(id peer.ID) bool { return m.trust.IsMember(id, m.now().UnixMilli()) }

// accepted follows a new record: the addresses of a node accreditation,
// and the revocation of one.
func (m *members) accepted(r *protocol.Record) {
	switch b := r.Body().(type) {
	case *protocol.Revocation:
		m.forgetNodes()
		m.dropRevoked(b.Target.Cid)
	case *protocol.Accreditation:
		if m.note(r) {
			m.forgetNodes()
			if b.Subject == m.self.String() {
				m.log.Info("this node's node accreditation arrived", "cid", r.CID().String(), "jurisdiction", b.Jurisdiction,
					"member", m.isMember(m.self))
			}
		}
	}
}

// forgetNodes empties NodesOf's cache.
func (m *members) forgetNodes() {
	m.mu.Lock()
	clear(m.nodes)
	m.mu.Unlock()
}

// note remembers the subject of a node accreditation and the addresses
// it publishes, and reports whether r is one. Whether the key is still a
// member is decided when dialling.
func (m *members) note(r *protocol.Record) bool {
	a, ok := r.Accreditation()
	if !ok || !slices.Contains(a.Roles, protocol.RoleNode) {
		return false
	}
	id, err := peer.Decode(a.Subject)
	if err != nil {
		return false
	}
	var addrs []ma.Multiaddr
	for _, s := range a.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if rest, last := ma.SplitLast(a); last != nil && last.Protocol().Code == ma.P_P2P {
			a = rest
		}
		addrs = append(addrs, a)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodeKeys[a.Jurisdiction] == nil {
		m.nodeKeys[a.Jurisdiction] = map[peer.ID]bool{}
	}
	m.nodeKeys[a.Jurisdiction][id] = true
	if len(addrs) > 0 {
		m.addrs[id] = addrs
	}
	return true
}

// dropRevoked closes connections to a peer whose node accreditation was
// just revoked, unless it is still a member on other grounds.
func (m *members) dropRevoked(target cid.Cid) {
	t, err := m.trust.Record(target)
	if err != nil || m.h == nil {
		return
	}
	a, ok := t.Accreditation()
	if !ok || !slices.Contains(a.Roles, protocol.RoleNode) {
		return
	}
	id, err := peer.Decode(a.Subject)
	if err != nil || m.isMember(id) {
		return
	}
	m.log.Info("closing connections to a peer whose node accreditation was revoked", "peer", id.String())
	m.h.ConnManager().Unprotect(id, memberTag)
	if err := m.h.Network().ClosePeer(id); err != nil {
		m.log.Debug("close peer", "peer", id.String(), "err", err)
	}
}

// list lists the peers this node should stay connected to: the founding
// nodes of the recognised jurisdictions and the holders of live node
// accreditations that published addresses, except itself.
func (m *members) list() []peer.AddrInfo {
	byID := map[peer.ID][]ma.Multiaddr{}
	for _, ai := range m.fed.BootstrapAddrs() {
		byID[ai.ID] = append(byID[ai.ID], ai.Addrs...)
	}
	m.mu.Lock()
	for id, addrs := range m.addrs {
		byID[id] = append(byID[id], addrs...)
	}
	m.mu.Unlock()
	delete(byID, m.self)
	out := make([]peer.AddrInfo, 0, len(byID))
	for id, addrs := range byID {
		if m.isMember(id) {
			out = append(out, peer.AddrInfo{ID: id, Addrs: addrs})
		}
	}
	return out
}

// NodesOf lists the nodes of jurisdiction j now, this one included: its
// founding nodes (with the federation file's addresses) and the holders
// of live node accreditations of j (with the addresses they publish).
// Direct delivery's directory, asked for every receipt: the answer is
// kept for up to nodesTTL, or until an accreditation or a revocation
// arrives.
func (m *members) NodesOf(j string) []peer.AddrInfo {
	now := m.now()
	m.mu.Lock()
	c, ok := m.nodes[j]
	m.mu.Unlock()
	if ok && now.Sub(c.at) < nodesTTL && !now.Before(c.at) {
		return slices.Clone(c.nodes)
	}
	nodes := m.nodesOf(j)
	m.mu.Lock()
	if m.nodes == nil {
		m.nodes = map[string]cachedNodes{}
	}
	m.nodes[j] = cachedNodes{at: now, nodes: nodes}
	m.mu.Unlock()
	return slices.Clone(nodes)
}

// nodesOf is NodesOf, found afresh.
func (m *members) nodesOf(j string) []peer.AddrInfo {
	byID := map[peer.ID][]ma.Multiaddr{}
	founding := m.fed.FoundingNodes()
	for id, fj := range founding {
		if fj == j {
			byID[id] = nil
		}
	}
	for _, ai := range m.fed.BootstrapAddrs() {
		if _, ok := byID[ai.ID]; ok {
			byID[ai.ID] = append(byID[ai.ID], ai.Addrs...)
		}
	}
	at := m.now().UnixMilli()
	m.mu.Lock()
	keys := make([]peer.ID, 0, len(m.nodeKeys[j]))
	for id := range m.nodeKeys[j] {
		keys = append(keys, id)
	}
	m.mu.Unlock()
	for _, id := range keys {
		if _, seen := byID[id]; seen {
			continue
		}
		if _, live, err := protocol.HasRole(m.trust, id, j, protocol.RoleNode, at); err == nil && live {
			m.mu.Lock()
			byID[id] = slices.Clone(m.addrs[id])
			m.mu.Unlock()
		}
	}
	out := make([]peer.AddrInfo, 0, len(byID))
	for id, addrs := range byID {
		out = append(out, peer.AddrInfo{ID: id, Addrs: addrs})
	}
	slices.SortFunc(out, func(a, b peer.AddrInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// others is how many member nodes the federation has now besides this
// one: every recognised jurisdiction's founding and accredited nodes.
func (m *members) others() int { return len(m.otherNodes()) }

// otherNodes lists the member nodes the federation has now besides this
// one: every recognised jurisdiction's founding and accredited nodes.
func (m *members) otherNodes() []peer.ID {
	seen := map[peer.ID]bool{m.self: true}
	var out []peer.ID
	for _, j := range m.fed.Codes() {
		for _, ai := range m.nodesOf(j) {
			if !seen[ai.ID] {
				seen[ai.ID] = true
				out = append(out, ai.ID)
			}
		}
	}
	return out
}

// memberTag is the connection manager's protection of members'
// connections.
const memberTag = "entente-member"

// protectConnected has the connection manager protect the connections of
// every peer that connects, which the gate admitted as a member, from
// now on; dropRevoked lifts it. Called once the host exists.
func (m *members) protectConnected() {
	m.h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if m.isMember(c.RemotePeer()) {
			m.h.ConnManager().Protect(c.RemotePeer(), memberTag)
		}
	}})
}

// founding are the founding nodes of the recognised jurisdictions, but
// this node: gossip's direct peers.
func (m *members) founding() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, ai := range m.fed.BootstrapAddrs() {
		if ai.ID != m.self {
			out = append(out, ai)
		}
	}
	return out
}

// start begins dialling on the host: now, then every interval.
func (m *members) start(every time.Duration) {
	m.g.Go(func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.dialMissing(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// dialMissing dials, in parallel, every member not connected, and returns
// when all dials have ended.
func (m *members) dialMissing(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ai := range m.list() {
		if m.h.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := m.h.Connect(ctx, ai); err != nil {
				m.log.Debug("dial failed", "peer", ai.ID.String(), "err", err)
				return
			}
			if m.refusedBy(ctx, ai.ID) {
				m.logRefused(ai.ID)
				return
			}
			m.mu.Lock()
			delete(m.refusals, ai.ID)
			m.mu.Unlock()
			m.log.Info("connected to member", "peer", ai.ID.String())
		}()
	}
	wg.Wait()
}

// refusedBy reports whether p dropped the connection just made to it:
// what a peer whose gate refuses this node does. Its gate runs once the
// security handshake is done, which is all Connect waits for; so wait
// for identify, which needs the connection, and see whether it lasted.
func (m *members) refusedBy(ctx context.Context, p peer.ID) bool {
	if ids, ok := m.h.(interface{ IDService() identify.IDService }); ok {
		for _, c := range m.h.Network().ConnsToPeer(p) {
			select {
			case <-ids.IDService().IdentifyWait(c):
			case <-ctx.Done():
			}
		}
	}
	return m.h.Network().Connectedness(p) != network.Connected
}

// logRefused says that p refused this node: at Warn the first time since
// p last admitted it (the operator has something to fix: most often p
// does not hold this node's accreditation yet), at Debug at every later
// dial.
func (m *members) logRefused(p peer.ID) {
	m.mu.Lock()
	if m.refusals == nil {
		m.refusals = map[peer.ID]bool{}
	}
	first := !m.refusals[p]
	m.refusals[p] = true
	m.mu.Unlock()
	msg := "refused by peer: it closed the connection after the handshake; its gate does not admit this node (does it hold this node's accreditation?)"
	if first {
		m.log.Warn(msg, "peer", p.String())
	} else {
		m.log.Debug(msg, "peer", p.String())
	}
}

// close stops dialling.
func (m *members) close() error {
	m.g.Close()
	return nil
}
