package protocol

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The checks of the transfer decision (DESIGN.md §5), by stable ID.
const (
	CheckConsentKnown        = "consent.known"
	CheckConsentIssuer       = "consent.issuer"
	CheckConsentLive         = "consent.live"
	CheckConsentScope        = "consent.scope"
	CheckExportRules         = "export.rules"
	CheckImportRules         = "import.rules"
	CheckSenderAccredited    = "sender.accredited"
	CheckRecipientAccredited = "recipient.accredited"
	CheckLineageParent       = "lineage.parent"
	CheckIncidentClear       = "incident.clear"
)

// CheckIDs lists the checks in the order Decide evaluates and reports
// them.
var CheckIDs = []string{
	CheckConsentKnown, CheckConsentIssuer, CheckConsentLive, CheckConsentScope,
	CheckExportRules, CheckImportRules, CheckSenderAccredited, CheckRecipientAccredited,
	CheckLineageParent, CheckIncidentClear,
}

// Reasons of failing checks (DESIGN.md §5): a stable code from a closed
// list per check (CheckReasons). A failing check carries the first that
// applies, in the order of the list.
const (
	ReasonNotHeld              = "not_held"                // consent.known: no such record is held
	ReasonNotConsent           = "not_consent"             // consent.known: the record is not a consent
	ReasonConsentNotHeld       = "consent_not_held"        // a check that needs the consent, which is not held
	ReasonNotAccreditedAtIssue = "not_accredited_at_issue" // consent.issuer: no live controller role at the consent's issued_at
	ReasonNotAccreditedAtAt    = "not_accredited_at_at"    // consent.issuer: none at the decision time
	ReasonRevoked              = "revoked"                 // consent.live
	ReasonSuperseded           = "superseded"              // consent.live
	ReasonExpired              = "expired"                 // consent.live
	ReasonNotYet               = "not_yet"                 // consent.live: issued after the decision time
	ReasonPurpose              = "purpose"                 // consent.scope, rules checks
	ReasonCategory             = "category"                // consent.scope
	ReasonTier                 = "tier"                    // consent.scope, rules checks
	ReasonDestination          = "destination"             // consent.scope, export.rules
	ReasonRetention            = "retention"               // consent.scope, rules checks
	ReasonNoRuleset            = "no_ruleset"              // rules checks: no ruleset in force
	ReasonOrigin               = "origin"                  // import.rules
	// ReasonCondition, followed by a condition's id, is a rules check's
	// condition that is false, errs or cannot be evaluated.
	ReasonCondition     = "condition:"
	ReasonNotAccredited = "not_accredited" // sender.accredited, recipient.accredited
	// lineage.parent, tiers 0 and 1 (and ReasonConsentNotHeld, ReasonOrigin).
	ReasonUnexpectedParent = "unexpected_parent" // a parent is named
	ReasonSenderNotIssuer  = "sender_not_issuer" // the sender is not the consent's issuer
	ReasonTier0Recipient   = "tier0_recipient"   // tier 0: the recipient is not the sender
	// lineage.parent, tier 2 and above (and ReasonTier, ReasonPurpose,
	// ReasonCategory, ReasonRetention, ReasonConsentNotHeld).
	ReasonMissingParent = "missing_parent"  // no parent is named
	ReasonParentNotHeld = "parent_not_held" // the parent receipt or its decision is not held
	ReasonParentItem    = "parent_item"     // the receipt has no such decision
	ReasonParentIssuer  = "parent_issuer"   // the receipt's issuer is no node of the federation
	ReasonParentDenied  = "parent_denied"   // the parent decision denied
	ReasonConsent       = "consent"         // the parent's consent is neither this one nor one it amends
	ReasonRecipient     = "recipient"       // the parent's recipient is not this sender
	ReasonRoute         = "route"           // the parent's to is not this from
	ReasonTime          = "time"            // the parent's at is after this at
	ReasonBlocked       = "blocked"         // incident.clear: an incident blocks a party
)

// CheckReasons are the reasons each check may fail with, in the order it
// looks for them; the rules checks also fail with ReasonCondition and a
// condition's id.
var CheckReasons = map[string][]string{
	CheckConsentKnown:        {ReasonNotHeld, ReasonNotConsent},
	CheckConsentIssuer:       {ReasonConsentNotHeld, ReasonNotAccreditedAtIssue, ReasonNotAccreditedAtAt},
	CheckConsentLive:         {ReasonConsentNotHeld, ReasonRevoked, ReasonSuperseded, ReasonExpired, ReasonNotYet},
	CheckConsentScope:        {ReasonConsentNotHeld, ReasonPurpose, ReasonCategory, ReasonTier, ReasonDestination, ReasonRetention},
	CheckExportRules:         {ReasonNoRuleset, ReasonDestination, ReasonTier, ReasonPurpose, ReasonRetention},
	CheckImportRules:         {ReasonNoRuleset, ReasonOrigin, ReasonTier, ReasonPurpose, ReasonRetention},
	CheckSenderAccredited:    {ReasonNotAccredited},
	CheckRecipientAccredited: {ReasonNotAccredited},
	CheckLineageParent: {ReasonUnexpectedParent, ReasonConsentNotHeld, ReasonSenderNotIssuer, ReasonOrigin, ReasonTier0Recipient,
		ReasonMissingParent, ReasonParentNotHeld, ReasonParentItem, ReasonParentIssuer, ReasonParentDenied,
		ReasonConsent, ReasonRecipient, ReasonRoute, ReasonTier, ReasonTime, ReasonPurpose, ReasonCategory, ReasonRetention},
	CheckIncidentClear: {ReasonConsentNotHeld, ReasonBlocked},
}

// validReason reports whether reason is one check id may fail with.
// Reasons of checks this version does not know are tokens.
func validReason(id, reason string) bool {
	list, known := CheckReasons[id]
	if !known {
		return checkToken("", reason) == nil
	}
	if slices.Contains(list, reason) {
		return true
	}
	cond, ok := strings.CutPrefix(reason, ReasonCondition)
	return ok && (id == CheckExportRules || id == CheckImportRules) && checkToken("", cond) == nil
}

// DecisionView is what a decision reads: a TrustView, and the two
// indexes only decisions need. Lists may come in any order; Decide sorts
// what it reads. Errors other than ErrNotHeld abort the decision.
type DecisionView interface {
	TrustView
	// RulesetsOf returns the held rulesets of a jurisdiction.
	RulesetsOf(jurisdiction string) ([]*Record, error)
	// IncidentsAffecting returns the held incident notices whose affected
	// list names id.
	IncidentsAffecting(id peer.ID) ([]*Record, error)
	// DecisionBlock returns the held decision block with CID c (of a
	// held receipt), or ErrNotHeld.
	DecisionBlock(c cid.Cid) (*DecisionBlock, error)
}

// Decision is the outcome of Decide: the verdict, every check in the
// order of CheckIDs, and the records the checks relied on, sorted by
// binary CID and without duplicates (as a receipt's evidence must be).
type Decision struct {
	Verdict  string
	Checks   []Check
	Evidence []Link
}

// Allowed reports whether the verdict is allow.
func (d *Decision) Allowed() bool { return d.Verdict == VerdictAllow }

// Failed returns the checks that did not pass, in order.
func (d *Decision) Failed() []Check {
	var out []Check
	for _, c := range d.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Decide answers a transfer request (DESIGN.md §5) from the records v
// holds, as they stand at req.At: it evaluates every check of CheckIDs,
// in that order, and allows the transfer iff all pass. Each check names
// the record that decided it (Check.Evidence) and says why in words.
//
// The decision is deterministic: the same request and the same held
// records give the same Decision, byte for byte, whatever order v lists
// them in. It is pure apart from rules, the cache of compiled conditions
// (nil compiles them on every call).
//
// The error is an *Error (CodeInvalidBody) for an invalid request, or an
// error of v; a record that is missing, or that does not hold, fails a
// check instead.
func Decide(req *TransferRequest, v DecisionView, rules *RuleEngine) (*Decision, error) {
	if req == nil || v == nil {
		return nil, errors.New("decide: no request or no view")
	}
	if err := req.Validate("request"); err != nil {
		return nil, err
	}
	recipient, err := ParsePeerID(req.Recipient)
	if err != nil { // cannot happen after Validate
		return nil, invalid("request.recipient", "%v", err)
	}
	sender, err := ParsePeerID(req.Sender)
	if err != nil { // cannot happen after Validate
		return nil, invalid("request.sender", "%v", err)
	}
	d := &decider{
		req:       req,
		v:         sortedView{v},
		rules:     rules,
		at:        req.At,
		recipient: recipient,
		sender:    sender,
		inForce:   map[string]*rulesetInForce{},
		chains:    map[string]*incidentChain{},
		relied:    map[string]cid.Cid{},
	}
	steps := []func() (Check, error){
		d.consentKnown, d.consentIssuer, d.consentLive, d.consentScope,
		d.exportRules, d.importRules, d.senderAccredited, d.recipientAccredited,
		d.lineageParent, d.incidentClear,
	}
	out := &Decision{Verdict: VerdictAllow, Checks: make([]Check, 0, len(steps))}
	for i, step := range steps {
		c, err := step()
		if err != nil {
			return nil, fmt.Errorf("decide: %s: %w", CheckIDs[i], err)
		}
		c.ID = CheckIDs[i]
		c.Detail = clipDetail(c.Detail)
		if c.Evidence != nil {
			d.rely(c.Evidence.Cid)
		}
		if !c.OK {
			out.Verdict = VerdictDeny
		}
		out.Checks = append(out.Checks, c)
	}
	keys := make([]string, 0, len(d.relied))
	for k := range d.relied {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a CID's key string is its binary form
	out.Evidence = make([]Link, len(keys))
	for i, k := range keys {
		out.Evidence[i] = LinkTo(d.relied[k])
	}
	return out, nil
}

// detailConsentNotHeld is the detail of the checks that need the consent
// when it is not held.
const detailConsentNotHeld = "consent not held"

// decider holds one decision's state.
type decider struct {
	req       *TransferRequest
	v         sortedView
	rules     *RuleEngine
	at        int64
	recipient peer.ID
	sender    peer.ID

	consentRec *Record  // nil when not held
	consent    *Consent // its body
	vars       *RuleVars

	inForce map[string]*rulesetInForce // by jurisdiction
	chains  map[string]*incidentChain  // by root CID key
	relied  map[string]cid.Cid         // by CID key
}

// str is id's string form, through the package's memo: base58-encoding
// it costs more than the rest of a check.
func (d *decider) str(id peer.ID) string { return idString(id) }

func (d *decider) rely(cs ...cid.Cid) {
	for _, c := range cs {
		d.relied[c.KeyString()] = c
	}
}

func pass(ev *Record, format string, args ...any) Check {
	return Check{OK: true, Evidence: evidenceOf(ev), Detail: fmt.Sprintf(format, args...)}
}

func fail(ev *Record, reason, format string, args ...any) Check {
	return Check{OK: false, Reason: reason, Evidence: evidenceOf(ev), Detail: fmt.Sprintf(format, args...)}
}

// faults gathers the failed conditions of one check in the order the
// table of DESIGN.md §5 states them; the first names the reason.
type faults struct {
	reason string
	parts  []string
}

func (f *faults) add(reason, format string, args ...any) {
	if f.reason == "" {
		f.reason = reason
	}
	f.parts = append(f.parts, fmt.Sprintf(format, args...))
}

func (f *faults) failed() bool { return len(f.parts) > 0 }

func (f *faults) detail() string { return strings.Join(f.parts, "; ") }

func evidenceOf(r *Record) *Link {
	if r == nil {
		return nil
	}
	return LinkPtr(r.CID())
}

// consent.known: the consent record is held.
func (d *decider) consentKnown() (Check, error) {
	c := d.req.Consent.Cid
	r, err := d.v.Record(c)
	if errors.Is(err, ErrNotHeld) {
		return fail(nil, ReasonNotHeld, "consent %s is not held", c), nil
	}
	if err != nil {
		return Check{}, err
	}
	body, ok := r.Consent()
	if !ok {
		return fail(nil, ReasonNotConsent, "%s is a %s, not a consent", c, r.Kind()), nil
	}
	d.consentRec, d.consent = r, body
	return pass(r, "consent of %s issued by %s at %s", body.Jurisdiction, d.str(r.Issuer()), fmtTime(r.IssuedAt())), nil
}

// consent.issuer: a live controller of the consent's jurisdiction when it
// issued the consent, and still at the decision time.
func (d *decider) consentIssuer() (Check, error) {
	if d.consent == nil {
		return fail(nil, ReasonConsentNotHeld, detailConsentNotHeld), nil
	}
	issuer, j, issued := d.consentRec.Issuer(), d.consent.Jurisdiction, d.consentRec.IssuedAt()
	then, ok, err := HasRole(d.v, issuer, j, RoleController, issued)
	if err != nil {
		return Check{}, err
	}
	if !ok {
		why, ev, err := d.whyNoRole(issuer, j, RoleController, issued)
		if err != nil {
			return Check{}, err
		}
		return fail(ev, ReasonNotAccreditedAtIssue, "issuer %s held no live controller accreditation of %s when it issued the consent at %s: %s",
			d.str(issuer), j, fmtTime(issued), why), nil
	}
	now, ok, err := HasRole(d.v, issuer, j, RoleController, d.at)
	if err != nil {
		return Check{}, err
	}
	if !ok {
		if then.Accreditation != nil {
			d.rely(then.Accreditation.CID())
		}
		why, ev, err := d.whyNoRole(issuer, j, RoleController, d.at)
		if err != nil {
			return Check{}, err
		}
		return fail(ev, ReasonNotAccreditedAtAt, "issuer %s no longer holds a live controller accreditation of %s at %s: %s",
			d.str(issuer), j, fmtTime(d.at), why), nil
	}
	if then.Accreditation != nil {
		d.rely(then.Accreditation.CID())
	}
	return pass(now.Accreditation, "issuer %s holds a live controller accreditation of %s, as it did when it issued the consent at %s",
		d.str(issuer), j, fmtTime(issued)), nil
}

// whyNoRole explains why id holds no live role in j at at, naming the
// revocation that withdrew it when there is one.
func (d *decider) whyNoRole(id peer.ID, j string, role Role, at int64) (string, *Record, error) {
	auth, ok := d.v.Authority(j)
	if !ok {
		return fmt.Sprintf("%s is not a jurisdiction this node recognises", j), nil, nil
	}
	accs, err := d.v.AccreditationsOf(id)
	if err != nil {
		return "", nil, err
	}
	var windows []string
	for _, r := range accs {
		a, ok := r.Accreditation()
		if !ok || r.Issuer() != auth || a.Subject != d.str(id) || a.Jurisdiction != j || !slices.Contains(a.Roles, role) {
			continue
		}
		if at >= a.ValidFrom && at < a.ValidUntil {
			rev, err := d.revokedAt(r, at)
			if err != nil {
				return "", nil, err
			}
			if rev != nil {
				rv, _ := rev.Revocation()
				return fmt.Sprintf("accreditation %s was revoked by %s, effective %s", r.CID(), rev.CID(), fmtTime(rv.EffectiveAt)), rev, nil
			}
			continue
		}
		windows = append(windows, fmt.Sprintf("accreditation %s is valid from %s until %s", r.CID(), fmtTime(a.ValidFrom), fmtTime(a.ValidUntil)))
	}
	if len(windows) > 0 {
		return strings.Join(windows, "; "), nil, nil
	}
	return fmt.Sprintf("%s's authority has granted it no %s role", j, role), nil, nil
}

// revokedAt is RevokedAt, choosing among several revocations the one
// that took effect first (then the lowest CID), so that a detail names
// the revocation that decided.
func (d *decider) revokedAt(target *Record, at int64) (*Record, error) {
	links, err := d.v.LinkedFrom(target.CID(), KindRevocation)
	if err != nil {
		return nil, err
	}
	var first *Record
	var firstAt int64
	for _, r := range links {
		rv, ok := r.Revocation()
		if !ok || !rv.Target.Equals(target.CID()) || rv.EffectiveAt > at || (first != nil && rv.EffectiveAt >= firstAt) {
			continue
		}
		if mayRevoke(d.v, r.Issuer(), target) {
			first, firstAt = r, rv.EffectiveAt
		}
	}
	return first, nil
}

// consent.live: not revoked, not superseded, not expired at the decision
// time.
func (d *decider) consentLive() (Check, error) {
	if d.consent == nil {
		return fail(nil, ReasonConsentNotHeld, detailConsentNotHeld), nil
	}
	rev, err := d.revokedAt(d.consentRec, d.at)
	if err != nil {
		return Check{}, err
	}
	sup, err := d.supersededAt()
	if err != nil {
		return Check{}, err
	}
	var f faults
	var ev *Record
	if rev != nil {
		rv, _ := rev.Revocation()
		f.add(ReasonRevoked, "revoked by %s, effective %s (%s)", rev.CID(), fmtTime(rv.EffectiveAt), clipText(rv.Reason, 200))
		ev = rev
	}
	if sup != nil {
		f.add(ReasonSuperseded, "superseded by the amendment %s issued at %s", sup.CID(), fmtTime(sup.IssuedAt()))
		if ev == nil {
			ev = sup
		} else {
			d.rely(sup.CID())
		}
	}
	if d.consent.ExpiresAt <= d.at {
		f.add(ReasonExpired, "expired at %s", fmtTime(d.consent.ExpiresAt))
		if ev == nil {
			ev = d.consentRec
		}
	}
	if d.consentRec.IssuedAt() > d.at {
		f.add(ReasonNotYet, "issued at %s, after the decision time %s", fmtTime(d.consentRec.IssuedAt()), fmtTime(d.at))
		if ev == nil {
			ev = d.consentRec
		}
	}
	if f.failed() {
		return fail(ev, f.reason, "%s", f.detail()), nil
	}
	return pass(d.consentRec, "not revoked, not superseded, expires at %s", fmtTime(d.consent.ExpiresAt)), nil
}

// supersededAt returns the earliest held amendment of the consent, by its
// issuer, for the same subject and jurisdiction, issued at or before the
// decision time.
func (d *decider) supersededAt() (*Record, error) {
	links, err := d.v.LinkedFrom(d.consentRec.CID(), KindConsent)
	if err != nil {
		return nil, err
	}
	var best *Record
	for _, r := range links {
		c, ok := r.Consent()
		if !ok || c.Supersedes == nil || !c.Supersedes.Equals(d.consentRec.CID()) || r.Issuer() != d.consentRec.Issuer() ||
			c.Jurisdiction != d.consent.Jurisdiction || string(c.Subject) != string(d.consent.Subject) || r.IssuedAt() > d.at {
			continue
		}
		if best == nil || r.IssuedAt() < best.IssuedAt() { // links are sorted: ties keep the lower CID
			best = r
		}
	}
	return best, nil
}

// consent.scope: the transfer is within what was consented to.
func (d *decider) consentScope() (Check, error) {
	if d.consent == nil {
		return fail(nil, ReasonConsentNotHeld, detailConsentNotHeld), nil
	}
	c, req := d.consent, d.req
	var f faults
	if !slices.Contains(c.Purposes, req.Purpose) {
		f.add(ReasonPurpose, "purpose %q is not among the consented purposes %v", req.Purpose, c.Purposes)
	}
	if outside := notIn(req.Categories, c.Categories); len(outside) > 0 {
		f.add(ReasonCategory, "categories %v are not among the consented categories %v", outside, c.Categories)
	}
	if req.Tier > c.MaxTier {
		f.add(ReasonTier, "tier %d is above the consented max_tier %d", req.Tier, c.MaxTier)
	}
	if !coversJurisdiction(c.Destinations, req.To) {
		f.add(ReasonDestination, "destination %s is not among the consented destinations %v", req.To, c.Destinations)
	}
	if req.RetentionDays > c.RetentionDays {
		f.add(ReasonRetention, "retention of %d days is over the consented %d days", req.RetentionDays, c.RetentionDays)
	}
	if f.failed() {
		return fail(d.consentRec, f.reason, "%s", f.detail()), nil
	}
	return pass(d.consentRec, "purpose %q, categories %v, tier %d, destination %s and retention of %d days are within the consent",
		req.Purpose, req.Categories, req.Tier, req.To, req.RetentionDays), nil
}

// notIn lists the items of xs that are not in set, in order.
func notIn(xs, set []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(set, x) {
			out = append(out, x)
		}
	}
	return out
}

// coversJurisdiction: j is in list, or list holds the wildcard.
func coversJurisdiction(list []string, j string) bool {
	return slices.Contains(list, j) || slices.Contains(list, Wildcard)
}

// rulesetInForce is a jurisdiction's ruleset at the decision time: rec,
// or nil and why there is none.
type rulesetInForce struct {
	rec *Record
	rs  *Ruleset
	why string
}

// rulesetOf returns j's ruleset in force at the decision time: of the
// held rulesets its authority issued with effective_from <= at and not
// revoked at at, the highest version (then the latest effective_from,
// then the lowest CID).
func (d *decider) rulesetOf(j string) (*rulesetInForce, error) {
	if f, ok := d.inForce[j]; ok {
		return f, nil
	}
	f := &rulesetInForce{}
	auth, ok := d.v.Authority(j)
	if !ok {
		f.why = fmt.Sprintf("%s is not a jurisdiction this node recognises", j)
		d.inForce[j] = f
		return f, nil
	}
	all, err := d.v.RulesetsOf(j)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		rs, ok := r.Ruleset()
		if !ok || rs.Jurisdiction != j || r.Issuer() != auth || rs.EffectiveFrom > d.at {
			continue
		}
		if f.rs != nil && (rs.Version < f.rs.Version || rs.Version == f.rs.Version && rs.EffectiveFrom <= f.rs.EffectiveFrom) {
			continue
		}
		rev, err := d.revokedAt(r, d.at)
		if err != nil {
			return nil, err
		}
		if rev == nil {
			f.rec, f.rs = r, rs
		}
	}
	if f.rec == nil {
		f.why = fmt.Sprintf("no ruleset of %s in force at %s", j, fmtTime(d.at))
	}
	d.inForce[j] = f
	return f, nil
}

// export.rules: from's ruleset in force allows the data out.
func (d *decider) exportRules() (Check, error) {
	return d.rulesCheck(SideExport, d.req.From)
}

// import.rules: to's ruleset in force lets the data in.
func (d *decider) importRules() (Check, error) {
	return d.rulesCheck(SideImport, d.req.To)
}

func (d *decider) rulesCheck(side Side, j string) (Check, error) {
	f, err := d.rulesetOf(j)
	if err != nil {
		return Check{}, err
	}
	if f.rec == nil {
		return fail(nil, ReasonNoRuleset, "%s", f.why), nil
	}
	req := d.req
	rules, _ := f.rs.rules(side)
	var ff faults
	if side == SideExport {
		if !coversJurisdiction(f.rs.Export.Destinations, req.To) {
			ff.add(ReasonDestination, "destination %s is not among %s's export destinations %v", req.To, j, f.rs.Export.Destinations)
		}
	} else if !coversJurisdiction(f.rs.Import.Origins, req.From) {
		ff.add(ReasonOrigin, "origin %s is not among %s's import origins %v", req.From, j, f.rs.Import.Origins)
	}
	if req.Tier > rules.MaxTier {
		ff.add(ReasonTier, "tier %d is above %s's %s max_tier %d", req.Tier, j, side, rules.MaxTier)
	}
	if slices.Contains(rules.ProhibitedPurposes, req.Purpose) {
		ff.add(ReasonPurpose, "purpose %q is prohibited for %s by %s", req.Purpose, side, j)
	}
	if req.RetentionDays > rules.MaxRetentionDays {
		ff.add(ReasonRetention, "retention of %d days is over %s's %s max_retention_days %d", req.RetentionDays, j, side, rules.MaxRetentionDays)
	}
	if len(rules.Conditions) > 0 && d.consent == nil {
		ids := make([]string, len(rules.Conditions))
		for i, c := range rules.Conditions {
			ids[i] = c.ID
		}
		ff.add(ReasonCondition+ids[0], "conditions %v cannot be evaluated: %s", ids, detailConsentNotHeld)
	} else {
		for i, c := range rules.Conditions {
			if d.vars == nil {
				d.vars = newRuleVars(d.req, d.consentRec, d.str(d.consentRec.Issuer()))
			}
			ok, err := d.rules.Eval(f.rec, side, i, d.vars)
			switch {
			case err != nil:
				ff.add(ReasonCondition+c.ID, "condition %q (%s) failed: %v", c.ID, clipText(c.Description, 200), err)
			case !ok:
				ff.add(ReasonCondition+c.ID, "condition %q (%s) is false", c.ID, clipText(c.Description, 200))
			}
		}
	}
	head := fmt.Sprintf("%s ruleset v%d (in force since %s)", j, f.rs.Version, fmtTime(f.rs.EffectiveFrom))
	if ff.failed() {
		return fail(f.rec, ff.reason, "%s: %s", head, ff.detail()), nil
	}
	n := len(rules.Conditions)
	return pass(f.rec, "%s allows this %s (%d %s)", head, side, n, plural(n, "condition holds", "conditions hold")), nil
}

// incidentChain is one incident's notices, linked by follows, as they
// stand at the decision time: latest is the notice of greatest issued_at
// at or before it (ties: the lowest CID), leaving out revoked notices and
// notices their issuer could not issue; nil when there is none.
type incidentChain struct {
	root   cid.Cid
	latest *Record
	body   *Incident // latest's
	path   []cid.Cid // latest and the notices it follows, back to the root
}

// maxChainNotices bounds the notices of one incident a decision reads.
const maxChainNotices = 1024

// party is someone incident.clear looks for in affected lists.
type party struct {
	id   peer.ID
	role string
}

// incident.clear: no incident open or contained at the decision time,
// at or above either ruleset's block_on_incident, names the consent's
// issuer, the sender or the recipient.
func (d *decider) incidentClear() (Check, error) {
	if d.consent == nil {
		return fail(nil, ReasonConsentNotHeld, detailConsentNotHeld), nil
	}
	threshold, thresholds, err := d.incidentThreshold()
	if err != nil {
		return Check{}, err
	}
	if threshold == 0 {
		return pass(nil, "no ruleset in force blocks on incidents (%s)", thresholds), nil
	}
	parties := d.parties()
	var chains []*incidentChain
	named := map[string][]string{} // root key → roles of the parties the chain's state names
	for _, p := range parties {
		notices, err := d.v.IncidentsAffecting(p.id)
		if err != nil {
			return Check{}, err
		}
		for _, n := range notices {
			if _, ok := n.Incident(); !ok {
				continue
			}
			ch, fresh, err := d.chainOf(n)
			if err != nil {
				return Check{}, err
			}
			if fresh {
				chains = append(chains, ch)
			}
			if ch.latest != nil && slices.Contains(ch.body.Affected, d.str(p.id)) && !slices.Contains(named[ch.root.KeyString()], p.role) {
				named[ch.root.KeyString()] = append(named[ch.root.KeyString()], p.role)
			}
		}
	}
	slices.SortFunc(chains, func(a, b *incidentChain) int { return strings.Compare(a.root.KeyString(), b.root.KeyString()) })
	var blocking []string
	var ev *Record
	for _, ch := range chains {
		if ch.latest == nil {
			continue
		}
		d.rely(ch.path...)
		b := ch.body
		roles := named[ch.root.KeyString()]
		active := b.Status == StatusOpen || b.Status == StatusContained
		if active && len(roles) > 0 && b.Severity.Rank() >= threshold {
			// Named by CID only, nothing of its body: a detail reaches
			// callers who may not see the incident (DESIGN.md §5, §6),
			// and incidents that do not block are not named at all.
			blocking = append(blocking, fmt.Sprintf("incident %s (notice %s) names %s", ch.root, ch.latest.CID(), strings.Join(roles, " and ")))
			if ev == nil {
				ev = ch.latest
			}
		}
	}
	if len(blocking) > 0 {
		return fail(ev, ReasonBlocked, "%s; %s", strings.Join(blocking, "; "), thresholds), nil
	}
	return pass(nil, "no open or contained incident of severity %s or above names %s (%s)",
		severityOfRank(threshold), d.describeParties(parties), thresholds), nil
}

// parties are the consent issuer, the sender and the recipient, each
// once, with every role it has.
func (d *decider) parties() []party {
	var ps []party
	for _, p := range []party{{d.consentRec.Issuer(), "the consent issuer"}, {d.sender, "the sender"}, {d.recipient, "the recipient"}} {
		i := slices.IndexFunc(ps, func(q party) bool { return q.id == p.id })
		if i < 0 {
			ps = append(ps, p)
			continue
		}
		ps[i].role += " and " + strings.TrimPrefix(p.role, "the ")
	}
	return ps
}

func (d *decider) describeParties(ps []party) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.role + " " + d.str(p.id)
	}
	return strings.Join(out, " or ")
}

// incidentThreshold is the lowest non-none block_on_incident rank of the
// rulesets in force (from's export, to's import), 0 when none blocks,
// with a description of each.
func (d *decider) incidentThreshold() (int, string, error) {
	threshold := 0
	var desc []string
	for _, s := range []struct {
		side Side
		j    string
	}{{SideExport, d.req.From}, {SideImport, d.req.To}} {
		f, err := d.rulesetOf(s.j)
		if err != nil {
			return 0, "", err
		}
		if f.rec == nil {
			desc = append(desc, fmt.Sprintf("%s has no ruleset in force", s.j))
			continue
		}
		rules, _ := f.rs.rules(s.side)
		sev := rules.BlockOnIncident
		if sev == SeverityNone {
			desc = append(desc, fmt.Sprintf("%s %s rules never block", s.j, s.side))
			continue
		}
		desc = append(desc, fmt.Sprintf("%s %s rules block at %s", s.j, s.side, sev))
		if r := sev.Rank(); r > 0 && (threshold == 0 || r < threshold) {
			threshold = r
		}
	}
	return threshold, strings.Join(desc, ", "), nil
}

func severityOfRank(r int) Severity {
	for _, s := range []Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical} {
		if s.Rank() == r {
			return s
		}
	}
	return SeverityNone
}

// chainOf returns the chain notice n belongs to, and whether this is the
// first time the decision meets it.
func (d *decider) chainOf(n *Record) (*incidentChain, bool, error) {
	root := n
	for range maxChainNotices {
		b, _ := root.Incident()
		if b.Follows == nil {
			break
		}
		prev, err := d.v.Record(b.Follows.Cid)
		if errors.Is(err, ErrNotHeld) {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if _, ok := prev.Incident(); !ok {
			break
		}
		root = prev
	}
	key := root.CID().KeyString()
	if ch, ok := d.chains[key]; ok {
		return ch, false, nil
	}
	ch := &incidentChain{root: root.CID()}
	d.chains[key] = ch
	parent := map[string]*Record{} // follow-up key → the notice it follows
	// follows reports whether a follows b, directly or through others.
	follows := func(a, b *Record) bool {
		for p := parent[a.CID().KeyString()]; p != nil; p = parent[p.CID().KeyString()] {
			if p.CID().Equals(b.CID()) {
				return true
			}
		}
		return false
	}
	// later reports whether r supersedes l as the chain's state: the
	// greatest issued_at; on a tie a notice beats the notices it follows,
	// then the lowest binary CID.
	later := func(r, l *Record) bool { return l == nil || LaterNotice(r, l, follows) }
	queue := []*Record{root}
	seen := map[string]bool{key: true}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if r.IssuedAt() <= d.at && later(r, ch.latest) {
			ok, err := d.noticeStands(r)
			if err != nil {
				return nil, false, err
			}
			if ok {
				ch.latest = r
			}
		}
		next, err := d.v.LinkedFrom(r.CID(), KindIncident)
		if err != nil {
			return nil, false, err
		}
		for _, f := range next {
			b, ok := f.Incident()
			k := f.CID().KeyString()
			if !ok || b.Follows == nil || !b.Follows.Equals(r.CID()) || seen[k] || len(seen) >= maxChainNotices {
				continue
			}
			seen[k] = true
			parent[k] = r
			queue = append(queue, f)
		}
	}
	if ch.latest != nil {
		ch.body, _ = ch.latest.Incident()
		for r := ch.latest; r != nil; r = parent[r.CID().KeyString()] {
			ch.path = append(ch.path, r.CID())
		}
	}
	return ch, true, nil
}

// noticeStands: the notice is not revoked at the decision time, and its
// issuer could issue it (a receipt bundle may carry records no node
// accepted).
func (d *decider) noticeStands(n *Record) (bool, error) {
	if rev, err := d.revokedAt(n, d.at); err != nil || rev != nil {
		return false, err
	}
	if err := Authorize(n, d.v); err != nil {
		if CodeOf(err) == "" {
			return false, err
		}
		return false, nil
	}
	return true, nil
}

// sortedView lists records in binary CID order, so that nothing of the
// view's own order reaches a decision.
type sortedView struct{ DecisionView }

func sortedRecords(rs []*Record, err error) ([]*Record, error) {
	if err != nil || len(rs) < 2 {
		return rs, err
	}
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b *Record) int { return strings.Compare(a.CID().KeyString(), b.CID().KeyString()) })
	return out, nil
}

func (s sortedView) AccreditationsOf(id peer.ID) ([]*Record, error) {
	return sortedRecords(s.DecisionView.AccreditationsOf(id))
}

func (s sortedView) LinkedFrom(c cid.Cid, kinds ...Kind) ([]*Record, error) {
	return sortedRecords(s.DecisionView.LinkedFrom(c, kinds...))
}

func (s sortedView) RulesetsOf(j string) ([]*Record, error) {
	return sortedRecords(s.DecisionView.RulesetsOf(j))
}

func (s sortedView) IncidentsAffecting(id peer.ID) ([]*Record, error) {
	return sortedRecords(s.DecisionView.IncidentsAffecting(id))
}

// fmtTime writes Unix ms as RFC 3339 in UTC, with milliseconds when there
// are any.
func fmtTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// clipText makes free text fit on one line of a detail: newlines and
// tabs become spaces, and it is cut to max bytes at a rune boundary.
func clipText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	return clipBytes(s, max)
}

// clipDetail keeps a detail within a receipt's limit.
func clipDetail(s string) string { return clipBytes(s, maxTextLen) }

func clipBytes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
