package protocol

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Who receives what (DESIGN.md §6). This is the one rule: gossip, sync,
// fetch, delivery and the store's sync set ask it, and nothing else
// decides (API callers: callers.go).
//
//	record                                   audience            how
//	accreditation, ruleset, consent,         every member node   gossip; sync and fetch
//	revocation, incident (clear .. amber+strict)
//	incident, TLP red                        the nodes of the    direct delivery;
//	                                         issuer's            fetch between them
//	                                         jurisdiction (the
//	                                         notice's) and of
//	                                         its recipients
//	receipt, and its decision blocks         the nodes of its    direct delivery, each
//	                                         decisions' from     with the blocks of its
//	                                         and to (Receipt-    jurisdiction; fetch
//	                                         Audience); any      by CID
//	                                         member node that
//	                                         asks
//
// (Direct delivery of receipts, and sync between the nodes of an
// audience, come with DESIGN.md revision 2.)

// Audience is who may receive a record.
type Audience struct {
	// Members: every member node; the record is gossiped and is in every
	// node's sync set.
	Members bool
	// Jurisdictions: otherwise, the nodes of these jurisdictions (a
	// sorted set) may receive it, and direct delivery pushes it to them.
	Jurisdictions []string
	// OnRequest: any member node may have it by asking for its CID
	// (receipts, which a decision downstream needs for its lineage).
	OnRequest bool
}

// AudienceOf is the audience of r.
func AudienceOf(r *Record) Audience {
	switch b := r.Body().(type) {
	case *Incident:
		if b.TLP == TLPRed {
			return Audience{Jurisdictions: redAudience(b)}
		}
	case *Receipt:
		return Audience{OnRequest: true}
	}
	return Audience{Members: true}
}

// ReceiptAudience is the audience of a receipt whose decision blocks are
// blocks (those of them one holds): the nodes of each decision's from and
// to jurisdictions, to which it is delivered, and any member node that
// asks for it by CID (DESIGN.md §6).
func ReceiptAudience(blocks []*DecisionBlock) Audience {
	var js []string
	for _, b := range blocks {
		js = append(js, b.Request.From, b.Request.To)
	}
	slices.Sort(js)
	return Audience{Jurisdictions: slices.Compact(js), OnRequest: true}
}

// Concerns reports whether jurisdiction j is the decision's origin or
// destination: whether j's nodes keep it (ReceiptAudience).
func (b *DecisionBlock) Concerns(j string) bool { return b.Request.From == j || b.Request.To == j }

// redAudience is the jurisdictions of a TLP:RED notice's audience: its
// own (the issuer's) and its recipients', as a sorted set.
func redAudience(b *Incident) []string {
	js := append([]string{b.Jurisdiction}, b.Recipients...)
	slices.Sort(js)
	return slices.Compact(js)
}

// Delivered reports whether the record is pushed to the nodes of its
// audience by direct delivery (/entente/deliver/1.0.0): what only the
// nodes of some jurisdictions may receive.
func (a Audience) Delivered() bool { return !a.Members && len(a.Jurisdictions) > 0 }

// Gossiped reports whether the record travels on the gossip topic: only
// what every member may receive does.
func (a Audience) Gossiped() bool { return a.Members }

// Synced reports whether the record is in the set nodes reconcile with
// every peer (sync and sync-all).
func (a Audience) Synced() bool { return a.Members }

// MayReceive reports whether node, a member of the federation, may
// receive r when it asks for it by CID (fetch): r's audience holds every
// member, or r is to be had on request, or node is a node (founding, or
// holding a live node accreditation at at) of one of the audience's
// jurisdictions.
func MayReceive(v TrustView, r *Record, node peer.ID, at int64) (bool, error) {
	return AudienceOf(r).mayReceive(v, node, at)
}

// DecisionBlockAudience is the audience of a decision block: its
// receipt's, per decision: any member node may have it by asking for its
// CID (a decision downstream needs it for its lineage).
func DecisionBlockAudience() Audience { return Audience{OnRequest: true} }

// MayReceiveBlock reports whether node, a member of the federation, may
// receive a decision block it asks for by CID, as MayReceive does for a
// record.
func MayReceiveBlock(v TrustView, node peer.ID, at int64) (bool, error) {
	return DecisionBlockAudience().mayReceive(v, node, at)
}

func (a Audience) mayReceive(v TrustView, node peer.ID, at int64) (bool, error) {
	if a.Members || a.OnRequest {
		return true, nil
	}
	for _, j := range a.Jurisdictions {
		if _, ok, err := HasRole(v, node, j, RoleNode, at); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}
