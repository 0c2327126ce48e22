package node

import "fmt"

// readiness is what GET /readyz weighs (DESIGN.md §8, docs/operating.md,
// "Readiness"): a node is ready once it can answer from the federation's
// records rather than from whatever it held when it started.
type readiness struct {
	closing bool
	// member: this node is a founding node or holds a live node
	// accreditation, by the records it holds.
	member bool
	// others is how many member nodes the federation has besides this
	// one; connected, how many of them are connected now.
	others, connected int
	// synced: a sync session this node started with a peer completed.
	synced bool
	// held is why signing is held after a restore ("" when it is not):
	// such a node answers verify unsigned, and is not ready for it.
	held string
}

// notMember is why a node that is neither a founding node nor holds a
// live node accreditation is not ready (/readyz), and what to do.
const notMember = "this node is neither a founding node of the federation file nor holds a live node " +
	"accreditation; member nodes refuse it until its jurisdiction's authority accredits its key " +
	"with role node and a member holds that accreditation (docs/operating.md, \"Membership\")"

// warnIfNotMember says at start what a node that is not a member must do.
func warnIfNotMember(n *Node) {
	if n.trust.IsMember(n.id, n.cfg.Now().UnixMilli()) {
		return
	}
	n.log.Warn("this node is neither a founding node nor holds a live node accreditation: member nodes will refuse it "+
		"until they hold one for its key. Have the authority of "+n.cfg.Jurisdiction+" sign an accreditation with role "+
		"node for this peer ID and submit it to a member node (docs/operating.md, \"Membership\"); once a member "+
		"admits this node, sync brings the accreditation here too", "peer_id", n.id.String(), "jurisdiction", n.cfg.Jurisdiction)
}

// ready decides readiness. A node alone in its federation (no other
// member node, founding or accredited, in any recognised jurisdiction) is
// ready at once: there is no one to connect to or sync with. Any other
// node is ready once it is connected to a member and has completed one
// sync with a peer since it started, and only while it is connected. A
// node restored from a backup is ready only once it signs again.
func (r readiness) ready() (bool, string) {
	switch {
	case r.closing:
		return false, "shutting down"
	case r.held != "":
		return false, "signing held, so transfer verdicts are answered unsigned: " + r.held
	case r.others == 0 && r.member:
		return true, ""
	case r.connected == 0 && !r.member:
		return false, "no member node connected: " + notMember
	case r.connected == 0:
		return false, fmt.Sprintf("no member node connected (the federation has %d besides this one)", r.others)
	case !r.synced:
		return false, fmt.Sprintf("connected to %d member nodes, but no sync with them has completed yet", r.connected)
	case !r.member:
		return false, notMember
	}
	return true, ""
}

// readinessOf gathers n's readiness now.
func readinessOf(n *Node) readiness {
	now := n.cfg.Now().UnixMilli()
	r := readiness{closing: n.closing.Load(), member: n.trust.IsMember(n.id, now), synced: n.svc.Sync.Synced()}
	if h := n.svc.Rejoin.Status(); h.Held {
		r.held = h.Reason
	}
	for _, j := range n.fed.Codes() {
		for _, ai := range n.members.NodesOf(j) {
			if ai.ID != n.id {
				r.others++
			}
		}
	}
	for _, p := range n.host.Network().Peers() {
		if n.trust.IsMember(p, now) {
			r.connected++
		}
	}
	return r
}

// Ready reports whether the node is ready (GET /readyz), and why not.
func (n *Node) Ready() (bool, string) { return readinessOf(n).ready() }
