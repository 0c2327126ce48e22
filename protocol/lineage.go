package protocol

import (
	"errors"
	"fmt"
	"math"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The parties and the lineage of a transfer (DESIGN.md §5): who sends the
// data, and, for a resale (tier 2 and above), the decision that let the
// sender receive it.

// MaxLineage bounds the ancestors a node follows and a bundle carries
// for one decision: a resale chain of tiers 2 to MaxLineage+1.
const MaxLineage = 32

// maxSupersedes bounds the amendments lineage.parent walks back from the
// request's consent to its parent's.
const maxSupersedes = 64

const dayMillis = 24 * 60 * 60 * 1000

// sender.accredited: the sender is a live controller of from.
func (d *decider) senderAccredited() (Check, error) {
	return d.controllerCheck(d.sender, "sender", d.req.Sender, d.req.From)
}

// recipient.accredited: the recipient is a live controller of to.
func (d *decider) recipientAccredited() (Check, error) {
	return d.controllerCheck(d.recipient, "recipient", d.req.Recipient, d.req.To)
}

// controllerCheck passes when id (who, written s) holds a live controller
// accreditation of j at the decision time.
func (d *decider) controllerCheck(id peer.ID, who, s, j string) (Check, error) {
	g, ok, err := HasRole(d.v, id, j, RoleController, d.at)
	if err != nil {
		return Check{}, err
	}
	if ok {
		return pass(g.Accreditation, "%s %s holds a live controller accreditation of %s", who, s, j), nil
	}
	why, ev, err := d.whyNoRole(id, j, RoleController, d.at)
	if err != nil {
		return Check{}, err
	}
	return fail(ev, ReasonNotAccredited, "%s %s holds no live controller accreditation of %s at %s: %s", who, s, j, fmtTime(d.at), why), nil
}

// lineage.parent: tiers 0 and 1 come from the consent's issuer, in the
// consent's jurisdiction, with no parent; a resale names the allowed
// decision through which its sender received the data, and stays within
// it.
func (d *decider) lineageParent() (Check, error) {
	if d.req.Tier <= 1 {
		return d.firstHand(), nil
	}
	return d.resale()
}

// firstHand is lineage.parent for tiers 0 and 1.
func (d *decider) firstHand() Check {
	req := d.req
	var f faults
	if p := req.Parent; p != nil {
		f.add(ReasonUnexpectedParent, "a tier-%d transfer has no parent, and this one names decision %d of %s", req.Tier, p.Item, p.Receipt)
	}
	if d.consent == nil {
		f.add(ReasonConsentNotHeld, "%s, so its issuer and jurisdiction are unknown", detailConsentNotHeld)
	} else {
		if d.sender != d.consentRec.Issuer() {
			f.add(ReasonSenderNotIssuer, "at tier %d the sender is the consent's issuer %s, not %s", req.Tier, d.str(d.consentRec.Issuer()), req.Sender)
		}
		if req.From != d.consent.Jurisdiction {
			f.add(ReasonOrigin, "at tier %d the data leaves from the consent's jurisdiction %s, not from %s", req.Tier, d.consent.Jurisdiction, req.From)
		}
	}
	if req.Tier == 0 && d.recipient != d.sender {
		f.add(ReasonTier0Recipient, "at tier 0 the data stays with the collecting platform, but the recipient %s is not the sender %s", req.Recipient, req.Sender)
	}
	if f.failed() {
		return fail(nil, f.reason, "%s", f.detail())
	}
	if req.Tier == 0 {
		return pass(nil, "tier 0: the consent's issuer keeps the data in %s", req.From)
	}
	return pass(nil, "tier 1: sent by the consent's issuer from %s, no parent", req.From)
}

// resale is lineage.parent for tier 2 and above.
func (d *decider) resale() (Check, error) {
	req := d.req
	p := req.Parent
	if p == nil {
		return fail(nil, ReasonMissingParent, "a tier-%d transfer names the decision through which its sender received the data; this one names none", req.Tier), nil
	}
	rec, err := d.v.Record(p.Receipt.Cid)
	if errors.Is(err, ErrNotHeld) {
		return fail(nil, ReasonParentNotHeld, "the parent receipt %s is not held and no member node gave it", p.Receipt), nil
	}
	if err != nil {
		return Check{}, err
	}
	receipt, ok := rec.Receipt()
	if !ok {
		return fail(nil, ReasonParentNotHeld, "the parent %s is a %s, not a receipt", p.Receipt, rec.Kind()), nil
	}
	if p.Item >= int64(len(receipt.Decisions)) {
		return fail(rec, ReasonParentItem, "the parent receipt %s signs %d %s; there is no item %d",
			p.Receipt, len(receipt.Decisions), plural(len(receipt.Decisions), "decision", "decisions"), p.Item), nil
	}
	blockID := receipt.Decisions[p.Item].Cid
	parent, err := d.v.DecisionBlock(blockID)
	if errors.Is(err, ErrNotHeld) {
		return fail(rec, ReasonParentNotHeld, "decision %d of the parent receipt %s (block %s) is not held and no member node gave it", p.Item, p.Receipt, blockID), nil
	}
	if err != nil {
		return Check{}, err
	}
	node := fmt.Sprintf("decision %d of receipt %s by node %s", p.Item, p.Receipt, d.str(rec.Issuer()))
	why, err := d.parentIssuer(rec)
	if err != nil {
		return Check{}, err
	}
	if why != "" {
		return fail(rec, ReasonParentIssuer, "%s: %s", node, why), nil
	}
	if parent.Verdict != VerdictAllow {
		return fail(rec, ReasonParentDenied, "%s denied that transfer", node), nil
	}
	pr := &parent.Request
	var f faults
	if why, err := d.sameConsent(pr.Consent); err != nil {
		return Check{}, err
	} else if why != "" {
		f.add(why, "%s", d.consentMismatch(why, pr))
	}
	if pr.Recipient != req.Sender {
		f.add(ReasonRecipient, "the parent's recipient %s is not this sender %s", pr.Recipient, req.Sender)
	}
	if pr.To != req.From {
		f.add(ReasonRoute, "the parent took the data to %s; this transfer leaves from %s", pr.To, req.From)
	}
	if pr.Tier != req.Tier-1 {
		f.add(ReasonTier, "the parent is of tier %d; a tier-%d transfer follows one of tier %d", pr.Tier, req.Tier, req.Tier-1)
	}
	if pr.At > req.At {
		f.add(ReasonTime, "the parent was decided for %s, after this transfer's time %s", fmtTime(pr.At), fmtTime(req.At))
	}
	if req.Purpose != pr.Purpose {
		f.add(ReasonPurpose, "purpose %q is not the parent's purpose %q", req.Purpose, pr.Purpose)
	}
	if outside := notIn(req.Categories, pr.Categories); len(outside) > 0 {
		f.add(ReasonCategory, "categories %v are not among the parent's categories %v", outside, pr.Categories)
	}
	if end, parentEnd := retentionEnd(req), retentionEnd(pr); end > parentEnd {
		f.add(ReasonRetention, "kept until %s, after the parent's retention ends at %s", fmtTime(end), fmtTime(parentEnd))
	}
	if f.failed() {
		return fail(rec, f.reason, "%s: %s", node, f.detail()), nil
	}
	return pass(rec, "%s allowed tier %d from %s to %s for the sender; this transfer stays within its consent, purpose, categories and retention",
		node, pr.Tier, pr.From, pr.To), nil
}

// retentionEnd is when a transfer's retention ends: its time plus its
// retention days.
// It saturates instead of overflowing, whatever a block says.
func retentionEnd(r *TransferRequest) int64 {
	span := min(max(r.RetentionDays, 0), math.MaxInt64/dayMillis) * dayMillis
	if r.At > math.MaxInt64-span {
		return math.MaxInt64
	}
	return r.At + span
}

// parentIssuer says why the parent receipt's issuer is no node of the
// federation ("" when it is one): a founding node of a recognised
// jurisdiction, or holding a node accreditation live at the receipt's
// issued_at and not revoked at the decision time. The accreditation is
// relied on.
func (d *decider) parentIssuer(rec *Record) (string, error) {
	issuer := rec.Issuer()
	if j, ok := d.v.FoundingNode(issuer); ok {
		if _, recognised := d.v.Authority(j); recognised {
			return "", nil
		}
	}
	accs, err := d.v.AccreditationsOf(issuer)
	if err != nil {
		return "", err
	}
	revoked := ""
	for _, a := range accs {
		body, _ := a.Accreditation()
		g, ok, err := HasRole(d.v, issuer, body.Jurisdiction, RoleNode, rec.IssuedAt())
		if err != nil {
			return "", err
		}
		if !ok || g.Accreditation == nil {
			continue
		}
		rev, err := d.revokedAt(g.Accreditation, d.at)
		if err != nil {
			return "", err
		}
		if rev == nil {
			d.rely(g.Accreditation.CID())
			return "", nil
		}
		if revoked == "" {
			d.rely(rev.CID())
			revoked = fmt.Sprintf("its node accreditation %s was revoked by %s", g.Accreditation.CID(), rev.CID())
		}
	}
	if revoked != "" {
		return revoked, nil
	}
	return fmt.Sprintf("the issuer held no live node accreditation when it signed at %s", fmtTime(rec.IssuedAt())), nil
}

// sameConsent returns "" when the parent's consent is this request's, or
// one it supersedes (transitively, by the same issuer for the same
// subject); otherwise the reason.
func (d *decider) sameConsent(parent Link) (string, error) {
	if d.consent == nil {
		return ReasonConsentNotHeld, nil
	}
	r, c := d.consentRec, d.consent
	for range maxSupersedes {
		if r.CID().Equals(parent.Cid) {
			return "", nil
		}
		if c.Supersedes == nil {
			break
		}
		prev, err := d.v.Record(c.Supersedes.Cid)
		if errors.Is(err, ErrNotHeld) {
			break
		}
		if err != nil {
			return "", err
		}
		pc, ok := prev.Consent()
		if !ok || prev.Issuer() != d.consentRec.Issuer() || string(pc.Subject) != string(d.consent.Subject) {
			break
		}
		r, c = prev, pc
	}
	return ReasonConsent, nil
}

func (d *decider) consentMismatch(reason string, pr *TransferRequest) string {
	if reason == ReasonConsentNotHeld {
		return detailConsentNotHeld + ", so it cannot be matched to the parent's consent " + pr.Consent.String()
	}
	return fmt.Sprintf("the parent's consent %s is neither this consent %s nor one it amends", pr.Consent, d.req.Consent)
}
