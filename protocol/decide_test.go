package protocol

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// decisionView is an in-memory DecisionView over a fakeView. With
// shuffle set, every list comes back in a random order, so that tests can
// check that no order of the view reaches a decision.
type decisionView struct {
	*fakeView
	shuffle *rand.Rand
}

func (v *decisionView) order(rs []*Record) []*Record {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b *Record) int { return bytes.Compare(a.CID().Bytes(), b.CID().Bytes()) })
	if v.shuffle != nil {
		v.shuffle.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

func (v *decisionView) filter(keep func(*Record) bool) ([]*Record, error) {
	if v.err != nil {
		return nil, v.err
	}
	var out []*Record
	for _, r := range v.records {
		if keep(r) {
			out = append(out, r)
		}
	}
	return v.order(out), nil
}

func (v *decisionView) RulesetsOf(j string) ([]*Record, error) {
	return v.filter(func(r *Record) bool { return r.Kind() == KindRuleset && r.Jurisdiction() == j })
}

func (v *decisionView) IncidentsAffecting(id peer.ID) ([]*Record, error) {
	return v.filter(func(r *Record) bool {
		n, ok := r.Incident()
		return ok && slices.Contains(n.Affected, id.String())
	})
}

func (v *decisionView) AccreditationsOf(id peer.ID) ([]*Record, error) {
	rs, err := v.fakeView.AccreditationsOf(id)
	return v.order(rs), err
}

func (v *decisionView) LinkedFrom(c cid.Cid, kinds ...Kind) ([]*Record, error) {
	rs, err := v.fakeView.LinkedFrom(c, kinds...)
	return v.order(rs), err
}

func (v *decisionView) DecisionBlock(c cid.Cid) (*DecisionBlock, error) {
	if v.err != nil {
		return nil, v.err
	}
	if b, ok := v.blocks[c]; ok {
		return b, nil
	}
	return nil, ErrNotHeld
}

// holdDecision adds a receipt and the decision blocks it signs.
func (v *decisionView) holdDecision(receipt *Record, blocks ...*DecisionBlock) {
	v.hold(receipt)
	for _, b := range blocks {
		_, c, err := b.Encode()
		if err != nil {
			panic(err)
		}
		v.blocks[c] = b
	}
}

// forget drops a record from the view (tests build a world, then take
// pieces away).
func (v *decisionView) forget(r *Record) {
	delete(v.records, r.CID())
	for k, rs := range v.backlinks {
		v.backlinks[k] = slices.DeleteFunc(slices.Clone(rs), func(x *Record) bool { return x == r })
	}
	for k, rs := range v.accs {
		v.accs[k] = slices.DeleteFunc(slices.Clone(rs), func(x *Record) bool { return x == r })
	}
}

var _ DecisionView = (*decisionView)(nil)

// The decision world: the federation of the authorisation tests plus a
// recognised BR; DE and FR rulesets in force since t0-30d; a consent by
// the DE controller, issued t0-day; a request at t0+2h from DE to the FR
// controller that every check allows.
var authBR = seedKey(0x30)

const atReq = 2 * hour // the request's at, after t0

type world struct {
	t      testing.TB
	v      *decisionView
	rsDE   *Record // DE ruleset v1
	rsFR   *Record // FR ruleset v1
	cons   *Record
	req    TransferRequest
	engine *RuleEngine
}

func testRules(conditions ...Condition) Rules {
	return Rules{
		MaxTier:            2,
		ProhibitedPurposes: []string{"law-enforcement", "mass-surveillance"},
		MaxRetentionDays:   365,
		BlockOnIncident:    SeverityHigh,
		Conditions:         conditions,
	}
}

var tierWithinConsent = Condition{ID: "tier-within-consent", Description: "The transfer's tier is within the consent's.", Expr: "transfer.tier <= consent.max_tier"}

func rulesetFor(t testing.TB, key crypto.PrivKey, j string, version, effective int64, mut func(*Ruleset)) *Record {
	t.Helper()
	b := &Ruleset{
		Jurisdiction:  j,
		Version:       version,
		EffectiveFrom: effective,
		Export:        ExportRules{Destinations: []string{"BR", "DE", "FR"}, Rules: testRules(tierWithinConsent)},
		Import:        ImportRules{Origins: []string{"*"}, Rules: testRules(tierWithinConsent)},
	}
	if mut != nil {
		mut(b)
	}
	issued := effective - day
	if issued < 0 {
		issued = 0
	}
	return mustSign(t, key, issued, b)
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, v: &decisionView{fakeView: federation(t)}, engine: NewRuleEngine(0)}
	w.v.authorities["BR"] = keyID(authBR)
	w.rsDE = rulesetFor(t, authDE, "DE", 1, t0-30*day, nil)
	w.rsFR = rulesetFor(t, authFR, "FR", 1, t0-30*day, nil)
	w.cons = consentBy(t, ctrlDE, t0-day, nil)
	w.v.hold(w.rsDE, w.rsFR, w.cons)
	w.req = baseRequest()
	w.req.Consent = LinkTo(w.cons.CID())
	w.req.At = t0 + atReq
	return w
}

func (w *world) hold(rs ...*Record) { w.v.hold(rs...) }

// replaceConsent makes the request rely on a new consent by ctrlDE.
func (w *world) replaceConsent(issued int64, mut func(*Consent)) *Record {
	w.t.Helper()
	w.cons = consentBy(w.t, ctrlDE, issued, mut)
	w.hold(w.cons)
	w.req.Consent = LinkTo(w.cons.CID())
	return w.cons
}

func (w *world) acc(key crypto.PrivKey) *Record { return w.v.accs[keyID(key)][0] }

func (w *world) decide() *Decision {
	w.t.Helper()
	d, err := Decide(&w.req, w.v, w.engine)
	if err != nil {
		w.t.Fatalf("Decide: %v", err)
	}
	checkDecisionShape(w.t, &w.req, d)
	return d
}

// notice signs an incident notice of DE by key.
func notice(t testing.TB, key crypto.PrivKey, issued int64, status string, sev Severity, affected []crypto.PrivKey, follows *Record) *Record {
	t.Helper()
	var ids []string
	for _, k := range affected {
		ids = append(ids, keyID(k).String())
	}
	slices.Sort(ids)
	return incidentBy(t, key, issued, func(b *Incident) {
		b.Status, b.Severity, b.Affected = status, sev, ids
		if follows != nil {
			b.Follows = LinkPtr(follows.CID())
		}
	})
}

// checkDecisionShape: every check once, in order; the verdict follows;
// evidence sorted, unique and covering every check's evidence; the
// receipt body is valid.
func checkDecisionShape(t testing.TB, req *TransferRequest, d *Decision) {
	t.Helper()
	if len(d.Checks) != len(CheckIDs) {
		t.Fatalf("%d checks, want %d", len(d.Checks), len(CheckIDs))
	}
	allOK := true
	for i, c := range d.Checks {
		if c.ID != CheckIDs[i] {
			t.Errorf("check %d is %q, want %q", i, c.ID, CheckIDs[i])
		}
		if c.Detail == "" {
			t.Errorf("%s: empty detail", c.ID)
		}
		if c.OK != (c.Reason == "") || (!c.OK && !validReason(c.ID, c.Reason)) {
			t.Errorf("%s: ok %v with reason %q", c.ID, c.OK, c.Reason)
		}
		allOK = allOK && c.OK
		if c.Evidence != nil && !slices.ContainsFunc(d.Evidence, func(l Link) bool { return l.Equals(c.Evidence.Cid) }) {
			t.Errorf("%s: evidence %s is not in the decision's evidence", c.ID, c.Evidence)
		}
	}
	if want := map[bool]string{true: VerdictAllow, false: VerdictDeny}[allOK]; d.Verdict != want || d.Allowed() != allOK {
		t.Errorf("verdict %q, want %q", d.Verdict, want)
	}
	for i := 1; i < len(d.Evidence); i++ {
		if bytes.Compare(d.Evidence[i-1].Bytes(), d.Evidence[i].Bytes()) >= 0 {
			t.Fatalf("evidence not sorted and unique at %d: %v", i, d.Evidence)
		}
	}
	if _, _, err := d.Block(*req).Encode(); err != nil {
		t.Errorf("the decision's block is invalid: %v", err)
	}
}

func checkOf(d *Decision, id string) Check {
	for _, c := range d.Checks {
		if c.ID == id {
			return c
		}
	}
	return Check{}
}

type decideCase struct {
	name     string
	setup    func(w *world)
	ok       bool
	reason   string                 // the reason of a failing check; "" not checked
	detail   string                 // substring of the detail; "" not checked
	noDetail string                 // not in the detail; "" not checked
	ev       func(w *world) *Record // the check's evidence; nil: not checked
	noEv     bool                   // the check has no evidence
}

func runDecideCases(t *testing.T, check string, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.setup != nil {
				tc.setup(w)
			}
			d := w.decide()
			c := checkOf(d, check)
			if c.OK != tc.ok {
				t.Errorf("%s ok = %v, want %v: %s", check, c.OK, tc.ok, c.Detail)
			}
			if tc.reason != "" && c.Reason != tc.reason {
				t.Errorf("%s reason %q, want %q: %s", check, c.Reason, tc.reason, c.Detail)
			}
			if !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("%s detail\n%s\ndoes not contain\n%s", check, c.Detail, tc.detail)
			}
			if tc.noDetail != "" && strings.Contains(c.Detail, tc.noDetail) {
				t.Errorf("%s detail\n%s\ncontains\n%s", check, c.Detail, tc.noDetail)
			}
			switch {
			case tc.ev != nil:
				want := tc.ev(w)
				if c.Evidence == nil || !c.Evidence.Equals(want.CID()) {
					t.Errorf("%s evidence %v, want %s (%s)", check, c.Evidence, want.CID(), want.Kind())
				}
			case tc.noEv:
				if c.Evidence != nil {
					t.Errorf("%s evidence %s, want none", check, c.Evidence)
				}
			}
		})
	}
}

func TestDecideAllows(t *testing.T) {
	w := newWorld(t)
	d := w.decide()
	if !d.Allowed() {
		for _, c := range d.Failed() {
			t.Errorf("%s: %s", c.ID, c.Detail)
		}
		t.FailNow()
	}
	// The evidence: the consent, the two controller accreditations and
	// the two rulesets.
	want := []cid.Cid{w.cons.CID(), w.acc(ctrlDE).CID(), w.acc(ctrlFR).CID(), w.rsDE.CID(), w.rsFR.CID()}
	if len(d.Evidence) != len(want) {
		t.Fatalf("evidence %v, want %v", d.Evidence, want)
	}
	for _, c := range want {
		if !slices.ContainsFunc(d.Evidence, func(l Link) bool { return l.Equals(c) }) {
			t.Errorf("evidence lacks %s", c)
		}
	}
	for _, c := range d.Checks {
		t.Logf("%-22s %-5v %s", c.ID, c.OK, c.Detail)
	}
}

func TestDecideConsentKnown(t *testing.T) {
	runDecideCases(t, CheckConsentKnown, []decideCase{
		{name: "held", ok: true, detail: "consent of DE issued by " + keyID(ctrlDE).String(), ev: func(w *world) *Record { return w.cons }},
		{name: "not held", setup: func(w *world) { w.req.Consent = LinkTo(fakeCID("unknown consent")) },
			ok: false, detail: "is not held", noEv: true},
		{name: "not a consent", setup: func(w *world) { w.req.Consent = LinkTo(w.rsDE.CID()) },
			ok: false, detail: "is a ruleset, not a consent", noEv: true},
	})
}

// When the consent is not held, the checks that need it fail, still
// listed, with "consent not held".
func TestDecideConsentNotHeld(t *testing.T) {
	w := newWorld(t)
	w.req.Consent = LinkTo(fakeCID("unknown consent"))
	d := w.decide()
	for _, id := range []string{CheckConsentIssuer, CheckConsentLive, CheckConsentScope, CheckIncidentClear} {
		if c := checkOf(d, id); c.OK || c.Detail != "consent not held" {
			t.Errorf("%s = %v %q, want a failure \"consent not held\"", id, c.OK, c.Detail)
		}
	}
	for _, id := range []string{CheckExportRules, CheckImportRules} {
		if c := checkOf(d, id); c.OK || !strings.Contains(c.Detail, "conditions [tier-within-consent] cannot be evaluated: consent not held") {
			t.Errorf("%s = %v %q", id, c.OK, c.Detail)
		}
	}
	if c := checkOf(d, CheckRecipientAccredited); !c.OK {
		t.Errorf("recipient.accredited does not need the consent: %s", c.Detail)
	}
	if d.Allowed() {
		t.Fatal("allowed without a consent")
	}
	// A ruleset without conditions does not need the consent.
	w.v.forget(w.rsDE)
	w.hold(rulesetFor(t, authDE, "DE", 1, t0-30*day, func(r *Ruleset) { r.Export.Conditions = nil }))
	if c := checkOf(w.decide(), CheckExportRules); !c.OK {
		t.Errorf("export.rules without conditions: %s", c.Detail)
	}
}

func TestDecideConsentIssuer(t *testing.T) {
	at := t0 + atReq
	runDecideCases(t, CheckConsentIssuer, []decideCase{
		{name: "live then and now", ok: true, detail: "holds a live controller accreditation of DE",
			ev: func(w *world) *Record { return w.acc(ctrlDE) }},
		{name: "accreditation revoked before at", setup: func(w *world) {
			w.hold(revoke(t, authDE, w.acc(ctrlDE), t0))
		}, ok: false, detail: "no longer holds a live controller accreditation of DE", ev: func(w *world) *Record {
			return w.v.backlinks[w.acc(ctrlDE).CID()][0]
		}},
		{name: "accreditation revoked exactly at at", setup: func(w *world) {
			w.hold(revoke(t, authDE, w.acc(ctrlDE), at))
		}, ok: false, detail: "was revoked by"},
		{name: "accreditation revoked after at", setup: func(w *world) {
			w.hold(revoke(t, authDE, w.acc(ctrlDE), at+1))
		}, ok: true},
		{name: "accreditation revoked by a stranger", setup: func(w *world) {
			w.hold(revoke(t, stranger, w.acc(ctrlDE), t0))
		}, ok: true},
		{name: "consent issued before valid_from", setup: func(w *world) {
			w.replaceConsent(windowFrom-1, nil)
		}, ok: false, detail: "held no live controller accreditation of DE when it issued the consent at", noEv: true},
		{name: "consent issued at valid_from", setup: func(w *world) {
			w.replaceConsent(windowFrom, nil)
		}, ok: true},
		{name: "at one ms before valid_until", setup: func(w *world) {
			w.req.At = windowUntil - 1
		}, ok: true},
		{name: "at valid_until", setup: func(w *world) {
			w.req.At = windowUntil
		}, ok: false, detail: "is valid from " + fmtTime(windowFrom) + " until " + fmtTime(windowUntil)},
		{name: "a controller of another jurisdiction", setup: func(w *world) {
			w.cons = consentBy(t, ctrlFR, t0-day, nil)
			w.hold(w.cons)
			w.req.Consent = LinkTo(w.cons.CID())
		}, ok: false, detail: "DE's authority has granted it no controller role"},
		{name: "accredited by the wrong authority", setup: func(w *world) {
			k := seedKey(0x31)
			w.hold(accredit(t, authFR, k, "DE", RoleController, windowFrom, windowUntil))
			w.cons = consentBy(t, k, t0-day, nil)
			w.hold(w.cons)
			w.req.Consent = LinkTo(w.cons.CID())
		}, ok: false, detail: "granted it no controller role"},
		{name: "a second accreditation takes over", setup: func(w *world) {
			w.hold(revoke(t, authDE, w.acc(ctrlDE), t0))
			w.hold(accredit(t, authDE, ctrlDE, "DE", RoleController, t0, windowUntil))
		}, ok: true, ev: func(w *world) *Record { return w.v.accs[keyID(ctrlDE)][1] }},
	})
}

func TestDecideConsentLive(t *testing.T) {
	at := t0 + atReq
	amend := func(w *world, by crypto.PrivKey, issued int64) *Record {
		a := consentBy(t, by, issued, func(c *Consent) {
			c.Supersedes = LinkPtr(w.cons.CID())
			c.Purposes = []string{"research"}
		})
		w.hold(a)
		return a
	}
	var held *Record
	runDecideCases(t, CheckConsentLive, []decideCase{
		{name: "live", ok: true, detail: "not revoked, not superseded, expires at", ev: func(w *world) *Record { return w.cons }},
		{name: "revoked by its issuer before at", setup: func(w *world) {
			held = revoke(t, ctrlDE, w.cons, t0)
			w.hold(held)
		}, ok: false, detail: "revoked by", ev: func(*world) *Record { return held }},
		{name: "revoked exactly at at", setup: func(w *world) { w.hold(revoke(t, ctrlDE, w.cons, at)) },
			ok: false, detail: "effective " + fmtTime(at) + " (withdrawn)"},
		{name: "two revocations: the earlier is named", setup: func(w *world) {
			held = revoke(t, authDE, w.cons, t0-hour)
			w.hold(revoke(t, ctrlDE, w.cons, t0), held)
		}, ok: false, detail: "effective " + fmtTime(t0-hour), ev: func(*world) *Record { return held }},
		{name: "revocation effective after at", setup: func(w *world) { w.hold(revoke(t, ctrlDE, w.cons, at+1)) }, ok: true},
		{name: "revoked by the authority", setup: func(w *world) { w.hold(revoke(t, authDE, w.cons, t0)) }, ok: false, detail: "revoked by"},
		{name: "revoked by a stranger", setup: func(w *world) { w.hold(revoke(t, stranger, w.cons, t0)) }, ok: true},
		{name: "revoked by another controller", setup: func(w *world) { w.hold(revoke(t, otherCtrlDE, w.cons, t0)) }, ok: true},
		{name: "superseded by an amendment before at", setup: func(w *world) { held = amend(w, ctrlDE, t0) },
			ok: false, detail: "superseded by the amendment", ev: func(*world) *Record { return held }},
		{name: "amendment issued exactly at at", setup: func(w *world) { amend(w, ctrlDE, at) }, ok: false, detail: "superseded"},
		{name: "amendment issued after at does not supersede yet", setup: func(w *world) { amend(w, ctrlDE, at+1) }, ok: true},
		{name: "amendment by another controller", setup: func(w *world) { amend(w, otherCtrlDE, t0) }, ok: true},
		{name: "amendment for another subject", setup: func(w *world) {
			w.hold(consentBy(t, ctrlDE, t0, func(c *Consent) {
				c.Supersedes, c.Subject = LinkPtr(w.cons.CID()), sha("someone else")
			}))
		}, ok: true},
		{name: "expires exactly at at", setup: func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.ExpiresAt = at })
		}, ok: false, detail: "expired at " + fmtTime(at), ev: func(w *world) *Record { return w.cons }},
		{name: "expires one ms after at", setup: func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.ExpiresAt = at + 1 })
		}, ok: true},
		{name: "revoked, superseded and expired", setup: func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.ExpiresAt = t0 })
			held = revoke(t, ctrlDE, w.cons, t0)
			w.hold(held)
			amend(w, ctrlDE, t0)
		}, ok: false, detail: "; superseded by the amendment", ev: func(*world) *Record { return held }},
	})
}

func TestDecideConsentScope(t *testing.T) {
	runDecideCases(t, CheckConsentScope, []decideCase{
		{name: "within", ok: true, detail: "are within the consent", ev: func(w *world) *Record { return w.cons }},
		{name: "purpose", setup: func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.Purposes = []string{"research", "security"} })
			w.req.Purpose = "marketing"
		}, ok: false, detail: `purpose "marketing" is not among the consented purposes [research security]`},
		{name: "categories", setup: func(w *world) { w.req.Categories = []string{"face", "iris", "voice"} },
			ok: false, detail: "categories [iris voice] are not among the consented categories [face fingerprint]"},
		{name: "all consented categories", setup: func(w *world) { w.req.Categories = []string{"face", "fingerprint"} }, ok: true},
		{name: "tier", setup: func(w *world) { w.req.Tier = 2 }, ok: false, detail: "tier 2 is above the consented max_tier 1"},
		{name: "tier 0", setup: func(w *world) { w.req.Tier = 0 }, ok: true},
		{name: "destination", setup: func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.Destinations = []string{"FR"} })
			w.req.To = "BR"
		}, ok: false, detail: "destination BR is not among the consented destinations [FR]"},
		{name: "wildcard destination", setup: func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.Destinations = []string{"*"} })
			w.req.To = "BR"
		}, ok: true},
		{name: "no destinations", setup: func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.Destinations = nil })
		}, ok: false, detail: "destination FR is not among the consented destinations []"},
		{name: "retention at the limit", setup: func(w *world) { w.req.RetentionDays = 90 }, ok: true},
		{name: "retention over", setup: func(w *world) { w.req.RetentionDays = 91 }, ok: false, detail: "retention of 91 days is over the consented 90 days"},
		{name: "several at once", setup: func(w *world) { w.req.Tier, w.req.RetentionDays = 3, 100 },
			ok: false, detail: "tier 3 is above the consented max_tier 1; retention of 100 days"},
	})
}

func TestDecideExportRules(t *testing.T) {
	at := t0 + atReq
	// replaceDE swaps DE's ruleset v1 for one made by mut.
	replaceDE := func(w *world, mut func(*Ruleset)) *Record {
		w.v.forget(w.rsDE)
		w.rsDE = rulesetFor(t, authDE, "DE", 1, t0-30*day, mut)
		w.hold(w.rsDE)
		return w.rsDE
	}
	withCondition := func(id, expr string) func(*world) {
		return func(w *world) {
			replaceDE(w, func(r *Ruleset) {
				r.Export.Conditions = append(r.Export.Conditions, Condition{ID: id, Description: "Described\nover two lines.", Expr: expr})
			})
		}
	}
	var v2, v3 *Record
	runDecideCases(t, CheckExportRules, []decideCase{
		{name: "allowed", ok: true, detail: "DE ruleset v1 (in force since " + fmtTime(t0-30*day) + ") allows this export (1 condition holds)",
			ev: func(w *world) *Record { return w.rsDE }},
		{name: "destination", setup: func(w *world) {
			replaceDE(w, func(r *Ruleset) { r.Export.Destinations = []string{"BR"} })
		}, ok: false, detail: "destination FR is not among DE's export destinations [BR]", ev: func(w *world) *Record { return w.rsDE }},
		{name: "wildcard destination", setup: func(w *world) {
			replaceDE(w, func(r *Ruleset) { r.Export.Destinations = []string{"*"} })
		}, ok: true},
		{name: "tier", setup: func(w *world) { replaceDE(w, func(r *Ruleset) { r.Export.MaxTier = 0 }) },
			ok: false, detail: "tier 1 is above DE's export max_tier 0"},
		{name: "prohibited purpose", setup: func(w *world) {
			replaceDE(w, func(r *Ruleset) { r.Export.ProhibitedPurposes = []string{"research"} })
		}, ok: false, detail: `purpose "research" is prohibited for export by DE`},
		{name: "retention", setup: func(w *world) { replaceDE(w, func(r *Ruleset) { r.Export.MaxRetentionDays = 29 }) },
			ok: false, detail: "retention of 30 days is over DE's export max_retention_days 29"},
		{name: "retention at the limit", setup: func(w *world) { replaceDE(w, func(r *Ruleset) { r.Export.MaxRetentionDays = 30 }) }, ok: true},
		{name: "condition true", setup: withCondition("research-or-low-tier", `transfer.tier <= 1 || transfer.purpose == "research"`), ok: true,
			detail: "(2 conditions hold)"},
		{name: "condition false", setup: withCondition("short-retention", "transfer.retention_days <= 14"),
			ok: false, detail: `condition "short-retention" (Described over two lines.) is false`},
		{name: "condition reading the consent", setup: func(w *world) { w.req.Tier = 2 },
			ok: false, detail: `condition "tier-within-consent" (The transfer's tier is within the consent's.) is false`},
		{name: "condition erroring", setup: withCondition("ratio", "transfer.retention_days / (transfer.tier - 1) < 100"),
			ok: false, detail: `condition "ratio" (Described over two lines.) failed: evaluation failed: division by zero`},
		{name: "condition over the cost limit", setup: withCondition("costly", longList(120)+".all(x, "+longList(120)+".all(y, x != y || x >= 0))"),
			ok: false, detail: `condition "costly" (Described over two lines.) failed: cost limit exceeded (10000)`},
		{name: "condition on time", setup: withCondition("before-2027", `now < timestamp("2027-01-01T00:00:00Z")`), ok: true},
		{name: "no ruleset", setup: func(w *world) { w.v.forget(w.rsDE) },
			ok: false, detail: "no ruleset of DE in force at " + fmtTime(at), noEv: true},
		{name: "not yet in force", setup: func(w *world) {
			w.v.forget(w.rsDE)
			w.hold(rulesetFor(t, authDE, "DE", 1, at+1, nil))
		}, ok: false, detail: "no ruleset of DE in force at"},
		{name: "in force exactly at at", setup: func(w *world) {
			w.v.forget(w.rsDE)
			w.rsDE = rulesetFor(t, authDE, "DE", 1, at, nil)
			w.hold(w.rsDE)
		}, ok: true, ev: func(w *world) *Record { return w.rsDE }},
		{name: "v2 in force before at replaces v1", setup: func(w *world) {
			v2 = rulesetFor(t, authDE, "DE", 2, t0, func(r *Ruleset) { r.Export.Destinations = []string{"BR"} })
			w.hold(v2)
		}, ok: false, detail: "DE ruleset v2", ev: func(*world) *Record { return v2 }},
		{name: "v2 effective after at leaves v1 in force", setup: func(w *world) {
			w.hold(rulesetFor(t, authDE, "DE", 2, at+1, func(r *Ruleset) { r.Export.Destinations = []string{"BR"} }))
		}, ok: true, detail: "DE ruleset v1", ev: func(w *world) *Record { return w.rsDE }},
		{name: "the highest version wins, not the latest effective_from", setup: func(w *world) {
			v3 = rulesetFor(t, authDE, "DE", 3, t0-20*day, nil)
			w.hold(v3, rulesetFor(t, authDE, "DE", 2, t0-day, func(r *Ruleset) { r.Export.Destinations = []string{"BR"} }))
		}, ok: true, detail: "DE ruleset v3", ev: func(*world) *Record { return v3 }},
		{name: "v2 revoked before at: v1 again", setup: func(w *world) {
			v2 := rulesetFor(t, authDE, "DE", 2, t0-day, func(r *Ruleset) { r.Export.Destinations = []string{"BR"} })
			w.hold(v2, revoke(t, authDE, v2, t0))
		}, ok: true, detail: "DE ruleset v1"},
		{name: "v2 revoked after at", setup: func(w *world) {
			v2 := rulesetFor(t, authDE, "DE", 2, t0-day, func(r *Ruleset) { r.Export.Destinations = []string{"BR"} })
			w.hold(v2, revoke(t, authDE, v2, at+1))
		}, ok: false, detail: "DE ruleset v2"},
		{name: "the only ruleset revoked", setup: func(w *world) { w.hold(revoke(t, authDE, w.rsDE, t0)) },
			ok: false, detail: "no ruleset of DE in force"},
		{name: "a ruleset not by the authority is ignored", setup: func(w *world) {
			w.hold(rulesetFor(t, stranger, "DE", 9, t0-day, func(r *Ruleset) { r.Export.Destinations = []string{"BR"} }))
		}, ok: true, detail: "DE ruleset v1"},
		{name: "every failure listed", setup: func(w *world) {
			replaceDE(w, func(r *Ruleset) {
				r.Export.Destinations, r.Export.MaxTier, r.Export.MaxRetentionDays = []string{"BR"}, 0, 1
				r.Export.Conditions = append(r.Export.Conditions, Condition{ID: "never", Description: "d", Expr: "false"})
			})
		}, ok: false, detail: "destination FR is not among DE's export destinations [BR]; tier 1 is above DE's export max_tier 0; " +
			`retention of 30 days is over DE's export max_retention_days 1; condition "never" (d) is false`},
	})
}

func TestDecideImportRules(t *testing.T) {
	replaceFR := func(w *world, mut func(*Ruleset)) {
		w.v.forget(w.rsFR)
		w.rsFR = rulesetFor(t, authFR, "FR", 1, t0-30*day, mut)
		w.hold(w.rsFR)
	}
	runDecideCases(t, CheckImportRules, []decideCase{
		{name: "allowed", ok: true, detail: "FR ruleset v1 (in force since " + fmtTime(t0-30*day) + ") allows this import", ev: func(w *world) *Record { return w.rsFR }},
		{name: "origin", setup: func(w *world) { replaceFR(w, func(r *Ruleset) { r.Import.Origins = []string{"BR"} }) },
			ok: false, detail: "origin DE is not among FR's import origins [BR]", ev: func(w *world) *Record { return w.rsFR }},
		{name: "listed origin", setup: func(w *world) { replaceFR(w, func(r *Ruleset) { r.Import.Origins = []string{"BR", "DE"} }) }, ok: true},
		{name: "export limits do not apply", setup: func(w *world) {
			replaceFR(w, func(r *Ruleset) { r.Export.MaxTier, r.Export.Destinations = 0, nil })
		}, ok: true},
		{name: "tier", setup: func(w *world) { replaceFR(w, func(r *Ruleset) { r.Import.MaxTier = 0 }) },
			ok: false, detail: "tier 1 is above FR's import max_tier 0"},
		{name: "prohibited purpose", setup: func(w *world) {
			replaceFR(w, func(r *Ruleset) { r.Import.ProhibitedPurposes = []string{"research"} })
		}, ok: false, detail: `purpose "research" is prohibited for import by FR`},
		{name: "retention", setup: func(w *world) { replaceFR(w, func(r *Ruleset) { r.Import.MaxRetentionDays = 7 }) },
			ok: false, detail: "retention of 30 days is over FR's import max_retention_days 7"},
		{name: "condition", setup: func(w *world) {
			replaceFR(w, func(r *Ruleset) {
				r.Import.Conditions = []Condition{{ID: "eu-only", Description: "EU origins", Expr: `transfer.from in ["DE", "FR"] && consent.jurisdiction == "BR"`}}
			})
		}, ok: false, detail: `condition "eu-only" (EU origins) is false`},
		{name: "no ruleset", setup: func(w *world) { w.v.forget(w.rsFR) }, ok: false, detail: "no ruleset of FR in force"},
		{name: "recognised jurisdiction without a ruleset", setup: func(w *world) {
			w.req.To = "BR"
		}, ok: false, detail: "no ruleset of BR in force at " + fmtTime(t0+atReq)},
		{name: "unrecognised jurisdiction", setup: func(w *world) { w.req.To = "US" },
			ok: false, detail: "US is not a jurisdiction this node recognises"},
	})
}

func TestDecideRecipientAccredited(t *testing.T) {
	var rev *Record
	runDecideCases(t, CheckRecipientAccredited, []decideCase{
		{name: "accredited", ok: true, detail: "recipient " + keyID(ctrlFR).String() + " holds a live controller accreditation of FR",
			ev: func(w *world) *Record { return w.acc(ctrlFR) }},
		{name: "a stranger", setup: func(w *world) { w.req.Recipient = keyID(stranger).String() },
			ok: false, detail: "FR's authority has granted it no controller role", noEv: true},
		{name: "a controller of another jurisdiction", setup: func(w *world) { w.req.Recipient = keyID(ctrlDE).String() },
			ok: false, detail: "holds no live controller accreditation of FR"},
		{name: "a regulator, not a controller", setup: func(w *world) {
			w.hold(accredit(t, authFR, regDE, "FR", RoleRegulator, windowFrom, windowUntil))
			w.req.Recipient = keyID(regDE).String()
		}, ok: false, detail: "granted it no controller role"},
		{name: "revoked before at", setup: func(w *world) {
			rev = revoke(t, authFR, w.acc(ctrlFR), t0)
			w.hold(rev)
		}, ok: false, detail: "was revoked by", ev: func(*world) *Record { return rev }},
		{name: "revoked after at", setup: func(w *world) { w.hold(revoke(t, authFR, w.acc(ctrlFR), t0+atReq+1)) }, ok: true},
		{name: "at valid_until", setup: func(w *world) {
			w.req.At = windowUntil
			w.replaceConsent(t0, func(c *Consent) { c.ExpiresAt = windowUntil + day })
		}, ok: false, detail: "is valid from"},
		{name: "before valid_from", setup: func(w *world) {
			k := seedKey(0x32)
			w.hold(accredit(t, authFR, k, "FR", RoleController, t0+atReq+1, windowUntil))
			w.req.Recipient = keyID(k).String()
		}, ok: false, detail: "is valid from " + fmtTime(t0+atReq+1)},
		{name: "at valid_from", setup: func(w *world) {
			k := seedKey(0x32)
			w.hold(accredit(t, authFR, k, "FR", RoleController, t0+atReq, windowUntil))
			w.req.Recipient = keyID(k).String()
		}, ok: true},
	})
}

func TestDecideIncidentClear(t *testing.T) {
	at := t0 + atReq
	var blocking *Record
	open := func(issued int64, sev Severity, affected ...crypto.PrivKey) func(*world) {
		return func(w *world) {
			blocking = notice(t, regDE, issued, StatusOpen, sev, affected, nil)
			w.hold(blocking)
		}
	}
	setThresholds := func(w *world, de, fr Severity) {
		w.v.forget(w.rsDE)
		w.v.forget(w.rsFR)
		w.rsDE = rulesetFor(t, authDE, "DE", 1, t0-30*day, func(r *Ruleset) { r.Export.BlockOnIncident, r.Import.BlockOnIncident = de, SeverityLow })
		w.rsFR = rulesetFor(t, authFR, "FR", 1, t0-30*day, func(r *Ruleset) { r.Import.BlockOnIncident, r.Export.BlockOnIncident = fr, SeverityLow })
		w.hold(w.rsDE, w.rsFR)
	}
	runDecideCases(t, CheckIncidentClear, []decideCase{
		{name: "no incident", ok: true, detail: "no open or contained incident of severity high or above names the consent issuer and sender " +
			keyID(ctrlDE).String() + " or the recipient " + keyID(ctrlFR).String() + " (DE export rules block at high, FR import rules block at high)", noEv: true},
		{name: "open, naming the recipient", setup: open(t0, SeverityHigh, ctrlFR),
			ok: false, detail: "(notice ", noDetail: "(high", ev: func(*world) *Record { return blocking }},
		{name: "open, naming the consent issuer", setup: open(t0, SeverityCritical, ctrlDE),
			ok: false, detail: "names the consent issuer", ev: func(*world) *Record { return blocking }},
		{name: "open, naming both", setup: open(t0, SeverityHigh, ctrlDE, ctrlFR),
			ok: false, detail: "names the consent issuer and sender and the recipient"},
		{name: "open, naming a sender who is not the consent issuer", setup: func(w *world) {
			w.req.Sender = keyID(otherCtrlDE).String()
			open(t0, SeverityHigh, otherCtrlDE)(w)
		}, ok: false, detail: "names the sender;", ev: func(*world) *Record { return blocking }},
		{name: "contained", setup: func(w *world) {
			blocking = notice(t, regDE, t0, StatusContained, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			w.hold(blocking)
		}, ok: false, detail: "(notice ", noDetail: "(high"},
		{name: "resolved from the start", setup: func(w *world) {
			w.hold(notice(t, regDE, t0, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil))
		}, ok: true, noDetail: "bafy"},
		{name: "opened after at", setup: open(at+1, SeverityHigh, ctrlFR), ok: true},
		{name: "opened exactly at at", setup: open(at, SeverityHigh, ctrlFR), ok: false},
		{name: "naming someone else", setup: open(t0, SeverityHigh, stranger), ok: true},
		{name: "resolved by a follow-up before at", setup: func(w *world) {
			first := notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			w.hold(first, notice(t, regDE, t0+hour, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, first))
		}, ok: true, noDetail: "bafy"},
		{name: "resolved by a follow-up after at", setup: func(w *world) {
			blocking = notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			w.hold(blocking, notice(t, regDE, at+1, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, blocking))
		}, ok: false, detail: "(notice ", noDetail: "(high", ev: func(*world) *Record { return blocking }},
		{name: "follow-up resolves, a later one reopens", setup: func(w *world) {
			first := notice(t, regDE, t0-2*hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			second := notice(t, regDE, t0-hour, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, first)
			blocking = notice(t, regDE, t0, StatusOpen, SeverityCritical, []crypto.PrivKey{ctrlFR}, second)
			w.hold(first, second, blocking)
		}, ok: false, detail: "(notice ", noDetail: "(critical", ev: func(*world) *Record { return blocking }},
		{name: "resolved by a follow-up of the same millisecond", setup: func(w *world) {
			// Whichever CID is lower: the follow-up wins the tie.
			first := notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			w.hold(first, notice(t, regDE, t0, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, first))
		}, ok: true, noDetail: "bafy"},
		{name: "reopened by a follow-up of the same millisecond", setup: func(w *world) {
			first := notice(t, regDE, t0, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			blocking = notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, first)
			w.hold(first, blocking)
		}, ok: false, ev: func(*world) *Record { return blocking }},
		{name: "two follow-ups of the same millisecond", setup: func(w *world) {
			// Neither follows the other: the lower CID wins.
			first := notice(t, regDE, t0-hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			a := notice(t, regDE, t0, StatusOpen, SeverityCritical, []crypto.PrivKey{ctrlFR}, first)
			b := notice(t, regDE, t0, StatusContained, SeverityCritical, []crypto.PrivKey{ctrlFR}, first)
			w.hold(first, a, b)
			blocking = a
			if b.CID().KeyString() < a.CID().KeyString() {
				blocking = b
			}
		}, ok: false, ev: func(*world) *Record { return blocking }},
		{name: "follow-up no longer names the party", setup: func(w *world) {
			first := notice(t, regDE, t0-hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			w.hold(first, notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{stranger}, first))
		}, ok: true},
		{name: "follow-up names the party later", setup: func(w *world) {
			first := notice(t, regDE, t0-hour, StatusOpen, SeverityHigh, []crypto.PrivKey{stranger}, nil)
			blocking = notice(t, regDE, t0, StatusContained, SeverityHigh, []crypto.PrivKey{ctrlFR, stranger}, first)
			w.hold(first, blocking)
		}, ok: false, ev: func(*world) *Record { return blocking }},
		{name: "escalated by a follow-up", setup: func(w *world) {
			first := notice(t, regDE, t0-hour, StatusOpen, SeverityLow, []crypto.PrivKey{ctrlFR}, nil)
			blocking = notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, first)
			w.hold(first, blocking)
		}, ok: false, ev: func(*world) *Record { return blocking }},
		{name: "below both thresholds", setup: open(t0, SeverityMedium, ctrlFR), ok: true, noDetail: "bafy"},
		{name: "at the lower threshold of the import side", setup: func(w *world) {
			setThresholds(w, SeverityCritical, SeverityMedium)
			open(t0, SeverityMedium, ctrlFR)(w)
		}, ok: false, detail: "DE export rules block at critical, FR import rules block at medium"},
		{name: "at the lower threshold of the export side", setup: func(w *world) {
			setThresholds(w, SeverityLow, SeverityCritical)
			open(t0, SeverityLow, ctrlDE)(w)
		}, ok: false},
		{name: "below both custom thresholds", setup: func(w *world) {
			setThresholds(w, SeverityCritical, SeverityCritical)
			open(t0, SeverityHigh, ctrlFR)(w)
		}, ok: true},
		{name: "none never blocks", setup: func(w *world) {
			setThresholds(w, SeverityNone, SeverityNone)
			open(t0, SeverityCritical, ctrlDE, ctrlFR)(w)
		}, ok: true, detail: "no ruleset in force blocks on incidents (DE export rules never block, FR import rules never block)"},
		{name: "none on one side, the other blocks", setup: func(w *world) {
			setThresholds(w, SeverityNone, SeverityHigh)
			open(t0, SeverityCritical, ctrlDE)(w)
		}, ok: false},
		{name: "a missing ruleset contributes no threshold", setup: func(w *world) {
			w.v.forget(w.rsDE)
			open(t0, SeverityHigh, ctrlFR)(w)
		}, ok: false, detail: "DE has no ruleset in force, FR import rules block at high"},
		{name: "no ruleset at all", setup: func(w *world) {
			w.v.forget(w.rsDE)
			w.v.forget(w.rsFR)
			open(t0, SeverityCritical, ctrlFR)(w)
		}, ok: true, detail: "no ruleset in force blocks"},
		{name: "revoked notice ignored", setup: func(w *world) {
			open(t0, SeverityHigh, ctrlFR)(w)
			w.hold(revoke(t, regDE, blocking, t0+hour))
		}, ok: true},
		{name: "notice revoked after at still blocks", setup: func(w *world) {
			open(t0, SeverityHigh, ctrlFR)(w)
			w.hold(revoke(t, regDE, blocking, at+1))
		}, ok: false},
		{name: "a revoked resolution leaves it open", setup: func(w *world) {
			blocking = notice(t, regDE, t0-hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			res := notice(t, regDE, t0, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, blocking)
			w.hold(blocking, res, revoke(t, regDE, res, t0+hour))
		}, ok: false, ev: func(*world) *Record { return blocking }},
		{name: "a notice its issuer could not issue is ignored", setup: func(w *world) {
			w.hold(notice(t, stranger, t0, StatusOpen, SeverityCritical, []crypto.PrivKey{ctrlFR}, nil))
		}, ok: true},
		{name: "a resolution its issuer could not issue is ignored", setup: func(w *world) {
			blocking = notice(t, regDE, t0-hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
			w.hold(blocking, notice(t, stranger, t0, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, blocking))
		}, ok: false, ev: func(*world) *Record { return blocking }},
		{name: "the recipient is the consent issuer", setup: func(w *world) {
			w.req.To, w.req.Recipient = "DE", keyID(ctrlDE).String()
			open(t0, SeverityHigh, ctrlDE)(w)
		}, ok: false, detail: "names the consent issuer and sender and recipient;"},
		{name: "two incidents, both listed", setup: func(w *world) {
			w.hold(notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil))
			w.hold(incidentBy(t, regDE, t0, func(b *Incident) {
				b.Ref, b.Status, b.Severity, b.Affected = "DE-2026-0043", StatusOpen, SeverityCritical, []string{keyID(ctrlDE).String()}
			}))
		}, ok: false, detail: `names the consent issuer`},
	})
}

// The evidence of a blocking incident is its latest notice and the notices
// it follows, back to the first; a later notice is not relied on.
func TestDecideIncidentEvidence(t *testing.T) {
	w := newWorld(t)
	first := notice(t, regDE, t0-2*hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
	second := notice(t, regDE, t0-hour, StatusContained, SeverityHigh, []crypto.PrivKey{ctrlFR}, first)
	later := notice(t, regDE, t0+atReq+1, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, second)
	w.hold(first, second, later)
	d := w.decide()
	c := checkOf(d, CheckIncidentClear)
	if c.OK || c.Evidence == nil || !c.Evidence.Equals(second.CID()) {
		t.Fatalf("incident.clear = %v, evidence %v: %s", c.OK, c.Evidence, c.Detail)
	}
	in := func(r *Record) bool {
		return slices.ContainsFunc(d.Evidence, func(l Link) bool { return l.Equals(r.CID()) })
	}
	if !in(first) || !in(second) || in(later) {
		t.Errorf("evidence %v: want the first and second notices, not the later one", d.Evidence)
	}
}

// Two follow-ups of one notice issued at the same time: the one with the
// lower CID is the chain's state, whatever order the view lists them in.
func TestDecideIncidentTie(t *testing.T) {
	w := newWorld(t)
	first := notice(t, regDE, t0-hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
	a := notice(t, regDE, t0, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, first)
	b := notice(t, regDE, t0, StatusContained, SeverityHigh, []crypto.PrivKey{ctrlFR}, first)
	w.hold(first, a, b)
	wantBlock := bytes.Compare(b.CID().Bytes(), a.CID().Bytes()) < 0
	for seed := range uint64(10) {
		w.v.shuffle = rand.New(rand.NewPCG(seed, 1))
		c := checkOf(w.decide(), CheckIncidentClear)
		if c.OK == wantBlock {
			t.Fatalf("seed %d: ok = %v, want %v: %s", seed, c.OK, !wantBlock, c.Detail)
		}
	}
}

// richWorld holds records of every kind that bear on a decision, some of
// them several times over, so that the view's order has room to matter.
func richWorld(t *testing.T) *world {
	w := newWorld(t)
	w.hold(
		accredit(t, authDE, ctrlDE, "DE", RoleController, windowFrom+1, windowUntil),
		accredit(t, authDE, ctrlDE, "DE", RoleController, windowFrom+2, windowUntil),
		accredit(t, authFR, ctrlFR, "FR", RoleController, windowFrom+1, windowUntil),
		rulesetFor(t, authDE, "DE", 1, t0-30*day+1, nil), // same version, later effective_from
		rulesetFor(t, authDE, "DE", 2, t0-10*day, func(r *Ruleset) {
			r.Export.Conditions = append(r.Export.Conditions, Condition{ID: "short", Description: "d", Expr: "transfer.retention_days <= 14"})
		}),
		rulesetFor(t, authFR, "FR", 2, t0-day, func(r *Ruleset) { r.Import.BlockOnIncident = SeverityMedium }),
		revoke(t, ctrlDE, w.cons, t0+hour),
		revoke(t, authDE, w.cons, t0+hour),
		revoke(t, authDE, w.cons, t0),
		consentBy(t, ctrlDE, t0, func(c *Consent) { c.Supersedes = LinkPtr(w.cons.CID()) }),
		consentBy(t, ctrlDE, t0, func(c *Consent) { c.Supersedes, c.Method = LinkPtr(w.cons.CID()), "paper form" }),
	)
	first := notice(t, regDE, t0-3*hour, StatusOpen, SeverityMedium, []crypto.PrivKey{ctrlDE, ctrlFR}, nil)
	w.hold(first,
		notice(t, regDE, t0-2*hour, StatusContained, SeverityHigh, []crypto.PrivKey{ctrlFR}, first),
		notice(t, regDE, t0-2*hour, StatusOpen, SeverityMedium, []crypto.PrivKey{ctrlDE, ctrlFR}, first),
		notice(t, regDE, t0-hour, StatusResolved, SeverityLow, []crypto.PrivKey{ctrlDE}, nil),
	)
	return w
}

// The same request and the same records give byte-identical decisions,
// whatever order the view lists records in.
func TestDecideDeterministic(t *testing.T) {
	for _, name := range []string{"allow", "deny"} {
		t.Run(name, func(t *testing.T) {
			var w *world
			if name == "allow" {
				w = newWorld(t)
			} else {
				w = richWorld(t)
			}
			want := w.decide()
			wantBytes, err := encMode.Marshal(want.Block(w.req))
			if err != nil {
				t.Fatal(err)
			}
			if name == "deny" && want.Allowed() {
				t.Fatal("the rich world allows")
			}
			for seed := range uint64(25) {
				w.v.shuffle = rand.New(rand.NewPCG(seed, 7))
				engine := w.engine
				if seed%2 == 1 {
					engine = nil // a cold cache and none decide the same
				}
				got, err := Decide(&w.req, w.v, engine)
				if err != nil {
					t.Fatal(err)
				}
				gotBytes, err := encMode.Marshal(got.Block(w.req))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(gotBytes, wantBytes) {
					for i := range got.Checks {
						if got.Checks[i] != want.Checks[i] && got.Checks[i].Detail != want.Checks[i].Detail {
							t.Errorf("%s:\n got %s\nwant %s", got.Checks[i].ID, got.Checks[i].Detail, want.Checks[i].Detail)
						}
					}
					t.Fatalf("seed %d: the decision differs\n got evidence %v\nwant evidence %v", seed, got.Evidence, want.Evidence)
				}
			}
			for _, c := range want.Checks {
				t.Logf("%-22s %-5v %s", c.ID, c.OK, c.Detail)
			}
		})
	}
}

func TestDecideErrors(t *testing.T) {
	w := newWorld(t)
	bad := w.req
	bad.Tier = -1
	if _, err := Decide(&bad, w.v, nil); CodeOf(err) != CodeInvalidBody || err.(*Error).Field != "request.tier" {
		t.Errorf("invalid request: %v", err)
	}
	if _, err := Decide(nil, w.v, nil); err == nil {
		t.Error("nil request decided")
	}
	if _, err := Decide(&w.req, nil, nil); err == nil {
		t.Error("nil view decided")
	}
	boom := errors.New("store closed")
	w.v.err = boom
	if _, err := Decide(&w.req, w.v, nil); !errors.Is(err, boom) {
		t.Errorf("view error: %v", err)
	}
}

func TestClipDetail(t *testing.T) {
	long := strings.Repeat("é", maxTextLen) // 2 bytes each
	got := clipDetail(long)
	if len(got) > maxTextLen || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Errorf("clipDetail: %d bytes, suffix %q", len(got), got[len(got)-4:])
	}
	if clipDetail("short") != "short" {
		t.Error("clipDetail changed a short detail")
	}
	if got := clipText("a\nb\tc", 100); got != "a b c" {
		t.Errorf("clipText = %q", got)
	}
}

// BenchmarkDecide: decisions per second in process, with a warm
// RuleEngine, on the allowing request of the decision tests (every check
// runs; two rulesets with one condition each; no incidents).
func BenchmarkDecide(b *testing.B) {
	w := newWorld(b)
	if d, err := Decide(&w.req, w.v, w.engine); err != nil || !d.Allowed() {
		b.Fatalf("warm-up: %v %v", d, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(&w.req, w.v, w.engine); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "decisions/s")
}

// BenchmarkDecideIncidents: the same with an incident chain of three
// notices naming the recipient (authorised, walked and resolved).
func BenchmarkDecideIncidents(b *testing.B) {
	w := newWorld(b)
	first := notice(b, regDE, t0-3*hour, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil)
	second := notice(b, regDE, t0-2*hour, StatusContained, SeverityHigh, []crypto.PrivKey{ctrlFR}, first)
	w.hold(first, second, notice(b, regDE, t0-hour, StatusResolved, SeverityHigh, []crypto.PrivKey{ctrlFR}, second))
	if d, err := Decide(&w.req, w.v, w.engine); err != nil || !d.Allowed() {
		b.Fatalf("warm-up: %v %v", d, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(&w.req, w.v, w.engine); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "decisions/s")
}

// TestDecideReasons: each failing check names the first of its reasons
// that applies, in the order of CheckReasons; every other failing check
// names one of its own, and a passing check none (checkDecisionShape).
func TestDecideReasons(t *testing.T) {
	newer := func(w *world, j string, mut func(*Ruleset)) {
		key := map[string]crypto.PrivKey{"DE": authDE, "FR": authFR}[j]
		w.hold(rulesetFor(t, key, j, 2, t0-day, mut))
	}
	for _, tc := range []struct {
		name  string
		setup func(w *world)
		want  map[string]string // check → reason
	}{
		{"consent not held", func(w *world) { w.req.Consent = LinkTo(fakeCID("absent")) }, map[string]string{
			CheckConsentKnown: ReasonNotHeld, CheckConsentIssuer: ReasonConsentNotHeld, CheckConsentLive: ReasonConsentNotHeld,
			CheckConsentScope: ReasonConsentNotHeld, CheckIncidentClear: ReasonConsentNotHeld,
			CheckExportRules: ReasonCondition + tierWithinConsent.ID, CheckImportRules: ReasonCondition + tierWithinConsent.ID}},
		{"not a consent", func(w *world) { w.req.Consent = LinkTo(w.rsDE.CID()) }, map[string]string{CheckConsentKnown: ReasonNotConsent}},
		{"revoked and expired", func(w *world) {
			w.replaceConsent(t0-day, func(c *Consent) { c.ExpiresAt = t0 })
			w.hold(revoke(t, ctrlDE, w.cons, t0))
		}, map[string]string{CheckConsentLive: ReasonRevoked}},
		{"expired", func(w *world) { w.replaceConsent(t0-day, func(c *Consent) { c.ExpiresAt = t0 }) }, map[string]string{CheckConsentLive: ReasonExpired}},
		{"issued after at", func(w *world) { w.req.At = w.cons.IssuedAt() - 1 }, map[string]string{CheckConsentLive: ReasonNotYet}},
		{"purpose and destination", func(w *world) { w.req.Purpose, w.req.To = "advertising", "BR" }, map[string]string{CheckConsentScope: ReasonPurpose}},
		{"tier and retention", func(w *world) { w.req.Tier, w.req.RetentionDays = 3, 400 }, map[string]string{
			CheckConsentScope: ReasonTier, CheckExportRules: ReasonTier, CheckImportRules: ReasonTier}},
		{"no export ruleset", func(w *world) { w.req.From = "BR" }, map[string]string{CheckExportRules: ReasonNoRuleset}},
		{"export destination and purpose", func(w *world) {
			newer(w, "DE", func(r *Ruleset) {
				r.Export.Destinations, r.Export.ProhibitedPurposes = []string{"BR"}, []string{"research"}
			})
		}, map[string]string{CheckExportRules: ReasonDestination}},
		{"import origin", func(w *world) { newer(w, "FR", func(r *Ruleset) { r.Import.Origins = []string{"BR"} }) }, map[string]string{CheckImportRules: ReasonOrigin}},
		{"import condition", func(w *world) {
			newer(w, "FR", func(r *Ruleset) {
				r.Import.Conditions = []Condition{{ID: "never", Description: "no", Expr: "false"}}
			})
		}, map[string]string{CheckImportRules: ReasonCondition + "never"}},
		{"recipient not accredited", func(w *world) { w.req.Recipient = keyID(stranger).String() }, map[string]string{CheckRecipientAccredited: ReasonNotAccredited}},
		{"blocked", func(w *world) {
			w.hold(notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil))
		}, map[string]string{CheckIncidentClear: ReasonBlocked}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(w)
			d := w.decide()
			for id, reason := range tc.want {
				if c := checkOf(d, id); c.OK || c.Reason != reason {
					t.Errorf("%s: ok %v reason %q, want %q (%s)", id, c.OK, c.Reason, reason, c.Detail)
				}
			}
		})
	}
}
