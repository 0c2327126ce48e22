package node

import (
	"sort"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/reconcile"
	"github.com/entente-net/entente/node/rejoin"
	"github.com/entente-net/entente/node/witness"
	"github.com/entente-net/entente/protocol"
)

// Status is the node's state as GET /v1/status shows it.
type Status struct {
	PeerID       string `json:"peer_id"`
	Jurisdiction string `json:"jurisdiction"`
	Federation   string `json:"federation"`
	// FederationDigest is config.Federation.Digest of the federation
	// file the node read: the same on every node of a federation.
	FederationDigest string                 `json:"federation_digest"`
	Version          string                 `json:"version"` // Build.Version
	Addrs            []string               `json:"addrs"`
	Peers            []PeerStatus           `json:"peers"`
	Records          map[string]int64       `json:"records"`
	Log              LogStatus              `json:"log"`
	Sync             []reconcile.PeerStatus `json:"sync"`
	Witnessed        []witness.Status       `json:"witnessed"`
	Alerts           []witness.Alert        `json:"alerts"`
	UptimeMs         int64                  `json:"uptime_ms"`
	// Caller is who asked (set by the API; nil for the public).
	Caller *api.CallerView `json:"caller,omitempty"`
}

// PeerStatus is one connected peer.
type PeerStatus struct {
	PeerID       string `json:"peer_id"`
	Jurisdiction string `json:"jurisdiction,omitempty"`
	Founding     bool   `json:"founding"`
	Addr         string `json:"addr"`
	Direction    string `json:"direction"`
}

// LogStatus is the node's log: its size (records accepted), its root
// (base64; empty for the empty log), the size of the latest checkpoint
// the node signed (0 before the first) and, while signing is held after
// a restore, why (absent otherwise).
type LogStatus struct {
	Size           uint64 `json:"size"`
	Root           string `json:"root"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	// VerifierKey is the note verifier key of the node's checkpoints
	// (protocol.CheckpointVerifierKey), for an auditor's note.NewVerifier.
	VerifierKey string         `json:"verifier_key"`
	Held        *rejoin.Status `json:"held,omitempty"`
}

// Status reports the node's state, gathered from its services. With
// partial (any caller but the operator) the record counts leave out
// incidents and receipts: the public sees counts of the kinds every
// member node holds only (DESIGN.md §8), and another caller may see only
// some of those two kinds, so their counts would tell it when one it may
// not read arrives (a TLP:RED notice, another platform's decision).
func (n *Node) Status(partial bool) Status {
	st := Status{
		PeerID:           n.id.String(),
		Jurisdiction:     n.cfg.Jurisdiction,
		Federation:       n.cfg.Federation.Name,
		FederationDigest: n.fedDigest,
		Version:          n.build.Version,
		Addrs:            []string{}, // lists in JSON even when empty, never null
		Peers:            []PeerStatus{},
		Records:          map[string]int64{},
		Log:              LogStatus{Size: n.store.Len(), CheckpointSize: n.svc.Checkpoints.LatestSize(), VerifierKey: n.verifierKey},
		Sync:             n.svc.Sync.Status(),
		Witnessed:        n.svc.Witness.Witnessed(),
		Alerts:           n.svc.Witness.Alerts(),
		UptimeMs:         n.cfg.Now().Sub(n.started).Milliseconds(),
	}
	st.Sync = nonNil(st.Sync)
	st.Witnessed = nonNil(st.Witnessed)
	st.Alerts = nonNil(st.Alerts)
	if h := n.svc.Rejoin.Status(); h.Held {
		st.Log.Held = &h
	}
	if th, err := n.store.TreeHead(); err == nil {
		st.Log.Size = th.Size
		if th.Size > 0 {
			st.Log.Root = th.Root.String()
		}
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	for k, c := range n.store.Counts() {
		if partial && (k == protocol.KindIncident || k == protocol.KindReceipt) {
			continue
		}
		st.Records[string(k)] = c
	}
	now := n.cfg.Now().UnixMilli()
	seen := map[peer.ID]bool{}
	for _, c := range n.host.Network().Conns() {
		id := c.RemotePeer()
		if seen[id] {
			continue
		}
		seen[id] = true
		_, founding := n.trust.FoundingNode(id)
		dir := "inbound"
		if c.Stat().Direction == network.DirOutbound {
			dir = "outbound"
		}
		st.Peers = append(st.Peers, PeerStatus{PeerID: id.String(), Jurisdiction: n.trust.NodeJurisdiction(id, now),
			Founding: founding, Addr: c.RemoteMultiaddr().String(), Direction: dir})
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].PeerID < st.Peers[j].PeerID })
	return st
}

// nonNil is s, or an empty slice for nil: a list in JSON, never null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
