package protocol

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Who of the API's callers reads what (DESIGN.md §8, "Callers and what
// they may do"). This is the rule of §6 applied to callers: every read
// path of the API — get, list, proofs, bundles, incidents, streams — asks
// MayRead or MayReadDecision, and nothing else decides.
//
//	record                     public  controller       regulator           auditor          operator
//	accreditation, ruleset,    no      yes              yes                 yes              yes
//	consent, revocation
//	incident, TLP clear        yes     yes              yes                 yes              yes
//	incident, TLP green        no      yes              yes                 yes              yes
//	incident, TLP amber        no      if affected      yes                 yes              yes
//	incident, TLP amber+strict no      no               yes                 no               yes
//	incident, TLP red          no      no               if of its           no               yes
//	                                                    jurisdiction or
//	                                                    a recipient
//	decision                   no      if sender or     if from or to       if from or to    yes
//	                                   recipient        its jurisdiction    its jurisdiction
//	receipt                    as the most readable of its decisions
//
// A caller's role is checked against its live accreditation when its
// request arrives (the API's business); these functions take the role as
// given.

// Caller is who makes an API request: the public (no token, Role ""), a
// granted caller with a role, bound to a peer ID, or the node's operator.
type Caller struct {
	Operator bool
	// Role is RoleController, RoleRegulator or RoleAuditor for a granted
	// caller, "" for the public and the operator.
	Role Role
	Peer peer.ID
	// Jurisdiction is the node's jurisdiction, where a regulator or an
	// auditor holds its role.
	Jurisdiction string
}

// Public reports whether c made the request without a token.
func (c Caller) Public() bool { return !c.Operator && c.Role == "" }

// tlpRank orders TLP labels from the widest audience to the narrowest.
var tlpRank = map[string]int{TLPClear: 0, TLPGreen: 1, TLPAmber: 2, TLPAmberStrict: 3, TLPRed: 4}

// MayRead reports whether c may read r. A receipt is readable when one
// of its decisions is (MayReadDecision); block returns a decision block
// of the receipt by its link, or an error when it is not held — such a
// decision counts as not readable.
func MayRead(c Caller, r *Record, block func(Link) (*DecisionBlock, error)) bool {
	if c.Operator {
		return true
	}
	switch b := r.Body().(type) {
	case *Incident:
		return c.mayReadIncident(b)
	case *Receipt:
		for _, l := range b.Decisions {
			if blk, err := block(l); err == nil && MayReadDecision(c, blk) {
				return true
			}
		}
		return false
	}
	return !c.Public()
}

func (c Caller) mayReadIncident(b *Incident) bool {
	rank, ok := tlpRank[b.TLP]
	if !ok {
		return false
	}
	switch c.Role {
	case "":
		return rank == tlpRank[TLPClear]
	case RoleController:
		return rank <= tlpRank[TLPGreen] ||
			rank == tlpRank[TLPAmber] && slices.Contains(b.Affected, c.Peer.String())
	case RoleRegulator:
		return rank < tlpRank[TLPRed] ||
			b.Jurisdiction == c.Jurisdiction || slices.Contains(b.Recipients, c.Jurisdiction)
	case RoleAuditor:
		return rank <= tlpRank[TLPAmber]
	}
	return false
}

// MayReadKind reports whether c may read some record of kind k: it is
// false only where MayRead refuses c every record of that kind (the
// public, every kind but incident), so a list may skip such kinds unread.
func MayReadKind(c Caller, k Kind) bool { return !c.Public() || k == KindIncident }

// MayReadDecision reports whether c may read the decision blk: its
// parties, the regulators and auditors of its two jurisdictions, and the
// operator. (A controller also reads the ancestors of its decisions, in
// their bundles: a bundle carries the lineage of a decision its caller
// may read.)
func MayReadDecision(c Caller, blk *DecisionBlock) bool {
	if c.Operator {
		return true
	}
	req := &blk.Request
	switch c.Role {
	case RoleController:
		return c.Peer != "" && (req.Sender == c.Peer.String() || req.Recipient == c.Peer.String())
	case RoleRegulator, RoleAuditor:
		return c.Jurisdiction != "" && (req.From == c.Jurisdiction || req.To == c.Jurisdiction)
	}
	return false
}

// MayWrite reports whether c may submit r (DESIGN.md §8): the operator
// anything, a controller or a regulator the records it issues, nobody
// else anything.
func MayWrite(c Caller, r *Record) bool {
	switch {
	case c.Operator:
		return true
	case c.Role == RoleController, c.Role == RoleRegulator:
		return c.Peer != "" && r.Issuer() == c.Peer
	}
	return false
}

// MayVerify reports whether c may ask for a transfer decision with sender
// sender: the operator for anyone, a controller for itself.
func MayVerify(c Caller, sender string) bool {
	return c.Operator || c.Role == RoleController && c.Peer != "" && sender == c.Peer.String()
}
