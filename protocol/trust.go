package protocol

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrNotHeld is returned by a TrustView for a record it does not hold.
var ErrNotHeld = errors.New("record not held")

// TrustView is what authorisation reads: the federation file's authorities
// and founding nodes, and the records a node holds. Implementations are
// read-only views; errors other than ErrNotHeld abort authorisation.
type TrustView interface {
	// Authority returns the authority key of a jurisdiction this node
	// recognises.
	Authority(jurisdiction string) (peer.ID, bool)
	// FoundingNode returns the jurisdiction whose bootstrap list names id.
	// Founding nodes act as accredited nodes of that jurisdiction.
	FoundingNode(id peer.ID) (jurisdiction string, ok bool)
	// Record returns a held record, or ErrNotHeld.
	Record(c cid.Cid) (*Record, error)
	// AccreditationsOf returns the held accreditations whose subject is id.
	AccreditationsOf(id peer.ID) ([]*Record, error)
	// LinkedFrom returns the held records of the given kinds that link
	// to c (every kind when none is given). Callers name the kinds they
	// look for: a consent is linked to by a few revocations and
	// amendments, and by every receipt given for it.
	LinkedFrom(c cid.Cid, kinds ...Kind) ([]*Record, error)
}

// RevokedAt reports whether a held revocation of target, by an issuer
// entitled to revoke it, is effective at or before at (Unix ms), and
// returns that revocation.
func RevokedAt(v TrustView, target *Record, at int64) (*Record, error) {
	links, err := v.LinkedFrom(target.CID(), KindRevocation)
	if err != nil {
		return nil, err
	}
	for _, r := range links {
		rv, ok := r.Revocation()
		if !ok || !rv.Target.Equals(target.CID()) || rv.EffectiveAt > at {
			continue
		}
		if mayRevoke(v, r.Issuer(), target) {
			return r, nil
		}
	}
	return nil, nil
}

// mayRevoke: the target's issuer, or the authority of the target's
// jurisdiction.
func mayRevoke(v TrustView, issuer peer.ID, target *Record) bool {
	if issuer == target.Issuer() {
		return true
	}
	if j := target.Jurisdiction(); j != "" {
		if auth, ok := v.Authority(j); ok && auth == issuer {
			return true
		}
	}
	return false
}

// Grant is a role held by a key: the accreditation that grants it, or
// none for a founding node.
type Grant struct {
	Accreditation *Record // nil for a founding node's implicit node role
}

// HasRole reports whether id holds a live role in jurisdiction at time at
// (Unix ms): granted by an accreditation issued by that jurisdiction's
// authority, within its validity window, not revoked at at. Founding nodes
// of the federation file hold the node role of their jurisdiction without
// one.
func HasRole(v TrustView, id peer.ID, jurisdiction string, role Role, at int64) (Grant, bool, error) {
	auth, ok := v.Authority(jurisdiction)
	if !ok {
		return Grant{}, false, nil
	}
	subject := idString(id)
	if role == RoleNode {
		if j, ok := v.FoundingNode(id); ok && j == jurisdiction {
			return Grant{}, true, nil
		}
	}
	accs, err := v.AccreditationsOf(id)
	if err != nil {
		return Grant{}, false, err
	}
	for _, r := range accs {
		a, ok := r.Accreditation()
		if !ok || r.Issuer() != auth || a.Subject != subject || a.Jurisdiction != jurisdiction ||
			!slices.Contains(a.Roles, role) || at < a.ValidFrom || at >= a.ValidUntil {
			continue
		}
		rev, err := RevokedAt(v, r, at)
		if err != nil {
			return Grant{}, false, err
		}
		if rev == nil {
			return Grant{Accreditation: r}, true, nil
		}
	}
	return Grant{}, false, nil
}

// IsMemberNode reports whether id holds a live node role, at at, in one
// of jurisdictions: the membership test of the connection gate.
func IsMemberNode(v TrustView, id peer.ID, jurisdictions []string, at int64) (bool, error) {
	for _, j := range jurisdictions {
		_, ok, err := HasRole(v, id, j, RoleNode, at)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func unauthorized(format string, args ...any) *Error {
	return errf(CodeUnauthorizedIssuer, "issuer", format, args...)
}

func unknownRef(field string, c cid.Cid) *Error {
	e := errf(CodeUnknownReference, field, "%s is not held", c)
	e.Ref = c.String()
	return e
}

// referenced returns the held record c links to, or an unknown_reference
// error naming field.
func referenced(v TrustView, field string, c cid.Cid) (*Record, error) {
	r, err := v.Record(c)
	if errors.Is(err, ErrNotHeld) {
		return nil, unknownRef(field, c)
	}
	return r, err
}

// Authorize checks that r's issuer may issue it (DESIGN.md §3–§4) given
// what v holds, at r's issued_at:
//
//   - accreditation, ruleset: the authority of the body's jurisdiction;
//   - consent: a live controller of the consent's jurisdiction; an
//     amendment (supersedes) must come from the superseded consent's
//     issuer, for the same subject and jurisdiction;
//   - revocation: the target's issuer, or the authority of the target's
//     jurisdiction;
//   - incident: the jurisdiction's authority, or a live regulator,
//     controller or node of it; a follow-up must be of the same incident
//     (same jurisdiction and ref, tlp and recipients), not issued before
//     the notice it follows, and from the chain's first issuer or the
//     authority or a regulator;
//   - receipt: a live node of any recognised jurisdiction, or a founding
//     node.
//
// Jurisdictions the view does not recognise are refused. Errors are *Error
// with CodeUnauthorizedIssuer or CodeUnknownReference, CodeInvalidBody for
// a supersedes, follows or target link to an unfit record, or an error of v.
func Authorize(r *Record, v TrustView) error {
	switch b := r.Body().(type) {
	case *Accreditation:
		return byAuthority(v, r, b.Jurisdiction)
	case *Ruleset:
		return authorizeRuleset(v, r, b)
	case *Consent:
		return authorizeConsent(v, r, b)
	case *Revocation:
		return authorizeRevocation(v, r, b)
	case *Incident:
		return authorizeIncident(v, r, b)
	case *Receipt:
		return authorizeReceipt(v, r)
	}
	return fmt.Errorf("authorize: unexpected body %T", r.Body())
}

// authorizeRuleset: the authority; a successor of a held ruleset of the
// same jurisdiction.
func authorizeRuleset(v TrustView, r *Record, b *Ruleset) error {
	if err := byAuthority(v, r, b.Jurisdiction); err != nil {
		return err
	}
	if b.Supersedes == nil {
		return nil
	}
	prev, err := referenced(v, "body.supersedes", b.Supersedes.Cid)
	if err != nil {
		return err
	}
	p, ok := prev.Ruleset()
	if !ok || p.Jurisdiction != b.Jurisdiction || p.Version >= b.Version {
		return invalid("body.supersedes", "must name an earlier version of this jurisdiction's ruleset")
	}
	return nil
}

// authorizeConsent: a live controller; an amendment of a held consent of
// the same issuer, subject and jurisdiction.
func authorizeConsent(v TrustView, r *Record, b *Consent) error {
	if err := recognised(v, b.Jurisdiction); err != nil {
		return err
	}
	if _, ok, err := HasRole(v, r.Issuer(), b.Jurisdiction, RoleController, r.IssuedAt()); err != nil || !ok {
		return firstErr(err, unauthorized("%s holds no live controller accreditation of %s at issued_at", r.Issuer(), b.Jurisdiction))
	}
	if b.Supersedes == nil {
		return nil
	}
	prev, err := referenced(v, "body.supersedes", b.Supersedes.Cid)
	if err != nil {
		return err
	}
	p, ok := prev.Consent()
	if !ok || prev.Issuer() != r.Issuer() || p.Jurisdiction != b.Jurisdiction || string(p.Subject) != string(b.Subject) {
		return invalid("body.supersedes", "an amendment must replace a consent of the same issuer, subject and jurisdiction")
	}
	return nil
}

// authorizeRevocation: the target's issuer or its jurisdiction's
// authority; a held target that is not itself a revocation.
func authorizeRevocation(v TrustView, r *Record, b *Revocation) error {
	target, err := referenced(v, "body.target", b.Target.Cid)
	if err != nil {
		return err
	}
	if target.Kind() == KindRevocation {
		return invalid("body.target", "a revocation cannot be revoked")
	}
	if !mayRevoke(v, r.Issuer(), target) {
		return unauthorized("only the target's issuer or its jurisdiction's authority may revoke it")
	}
	return nil
}

// authorizeIncident: the authority, or a live regulator, controller or
// node; a follow-up of a held notice of the same incident, by the chain's
// first issuer or an overseer of the jurisdiction.
func authorizeIncident(v TrustView, r *Record, b *Incident) error {
	if err := recognised(v, b.Jurisdiction); err != nil {
		return err
	}
	auth, _ := v.Authority(b.Jurisdiction)
	overseer := auth == r.Issuer() // the authority, or (below) a regulator
	if !overseer {
		ok := false
		for _, role := range []Role{RoleRegulator, RoleController, RoleNode} {
			_, has, err := HasRole(v, r.Issuer(), b.Jurisdiction, role, r.IssuedAt())
			if err != nil {
				return err
			}
			if ok = has; ok {
				overseer = role == RoleRegulator
				break
			}
		}
		if !ok {
			return unauthorized("%s is neither the authority nor a live regulator, controller or node of %s", r.Issuer(), b.Jurisdiction)
		}
	}
	if b.Follows == nil {
		return nil
	}
	prev, err := referenced(v, "body.follows", b.Follows.Cid)
	if err != nil {
		return err
	}
	p, ok := prev.Incident()
	if !ok || p.Jurisdiction != b.Jurisdiction || p.Ref != b.Ref {
		return invalid("body.follows", "must name an earlier notice of the same incident (jurisdiction and ref)")
	}
	if p.TLP != b.TLP || !slices.Equal(p.Recipients, b.Recipients) {
		return invalid("body.tlp", "tlp and recipients are fixed along an incident's follows chain (%s, %v before)", p.TLP, p.Recipients)
	}
	if r.IssuedAt() < prev.IssuedAt() {
		return invalid("issued_at", "a follow-up is not issued before the notice it follows")
	}
	if overseer {
		return nil
	}
	first, err := chainFirst(v, prev)
	if err != nil {
		return err
	}
	if first.Issuer() != r.Issuer() {
		return unauthorized("a follow-up of incident %s comes from its first issuer, or the authority or a regulator of %s", first.CID(), b.Jurisdiction)
	}
	return nil
}

// maxIncidentChain bounds the walk to an incident's first notice.
const maxIncidentChain = 10000

// chainFirst walks an incident notice's follows links back to the first
// notice of its chain (all held: each was authorised with its
// predecessor held).
func chainFirst(v TrustView, r *Record) (*Record, error) {
	for range maxIncidentChain {
		inc, ok := r.Incident()
		if !ok {
			return nil, invalid("body.follows", "must name an earlier notice of the same incident")
		}
		if inc.Follows == nil {
			return r, nil
		}
		prev, err := referenced(v, "body.follows", inc.Follows.Cid)
		if err != nil {
			return nil, err
		}
		r = prev
	}
	return nil, invalid("body.follows", "an incident's follows chain is longer than %d notices", maxIncidentChain)
}

// authorizeReceipt: a founding node of a recognised jurisdiction, or a
// live node of any.
func authorizeReceipt(v TrustView, r *Record) error {
	if j, ok := v.FoundingNode(r.Issuer()); ok {
		if _, rec := v.Authority(j); rec {
			return nil
		}
	}
	accs, err := v.AccreditationsOf(r.Issuer())
	if err != nil {
		return err
	}
	for _, a := range accs {
		body, _ := a.Accreditation()
		if _, ok, err := HasRole(v, r.Issuer(), body.Jurisdiction, RoleNode, r.IssuedAt()); err != nil || ok {
			return err
		}
	}
	return unauthorized("%s holds no live node accreditation", r.Issuer())
}

func recognised(v TrustView, jurisdiction string) error {
	if _, ok := v.Authority(jurisdiction); !ok {
		return errf(CodeUnauthorizedIssuer, "body.jurisdiction", "%s is not a jurisdiction this node recognises", jurisdiction)
	}
	return nil
}

func byAuthority(v TrustView, r *Record, jurisdiction string) error {
	auth, ok := v.Authority(jurisdiction)
	if !ok {
		return errf(CodeUnauthorizedIssuer, "body.jurisdiction", "%s is not a jurisdiction this node recognises", jurisdiction)
	}
	if r.Issuer() != auth {
		return unauthorized("only the authority of %s (%s) may issue a %s", jurisdiction, auth, r.Kind())
	}
	return nil
}
