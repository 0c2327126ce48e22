package protocol

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeView is an in-memory TrustView.
type fakeView struct {
	authorities map[string]peer.ID
	founding    map[peer.ID]string
	records     map[cid.Cid]*Record
	accs        map[peer.ID][]*Record // accreditations by subject
	backlinks   map[cid.Cid][]*Record // records by the CIDs they link to
	blocks      map[cid.Cid]*DecisionBlock
	err         error // when set, every lookup fails with it
}

func newFakeView() *fakeView {
	return &fakeView{
		authorities: map[string]peer.ID{},
		founding:    map[peer.ID]string{},
		records:     map[cid.Cid]*Record{},
		accs:        map[peer.ID][]*Record{},
		backlinks:   map[cid.Cid][]*Record{},
		blocks:      map[cid.Cid]*DecisionBlock{},
	}
}

// hold adds records to the view, indexing them as a store would.
func (v *fakeView) hold(rs ...*Record) {
	for _, r := range rs {
		v.records[r.CID()] = r
		if a, ok := r.Accreditation(); ok {
			id, err := peer.Decode(a.Subject)
			if err != nil {
				panic(err)
			}
			v.accs[id] = append(v.accs[id], r)
		}
		for _, l := range r.Links() {
			v.backlinks[l] = append(v.backlinks[l], r)
		}
	}
}

func (v *fakeView) Authority(j string) (peer.ID, bool) {
	id, ok := v.authorities[j]
	return id, ok
}

func (v *fakeView) FoundingNode(id peer.ID) (string, bool) {
	j, ok := v.founding[id]
	return j, ok
}

func (v *fakeView) Record(c cid.Cid) (*Record, error) {
	if v.err != nil {
		return nil, v.err
	}
	r, ok := v.records[c]
	if !ok {
		return nil, ErrNotHeld
	}
	return r, nil
}

func (v *fakeView) AccreditationsOf(id peer.ID) ([]*Record, error) {
	if v.err != nil {
		return nil, v.err
	}
	return v.accs[id], nil
}

func (v *fakeView) LinkedFrom(c cid.Cid, kinds ...Kind) ([]*Record, error) {
	if v.err != nil {
		return nil, v.err
	}
	if len(kinds) == 0 {
		return v.backlinks[c], nil
	}
	var out []*Record
	for _, r := range v.backlinks[c] {
		if slices.Contains(kinds, r.Kind()) {
			out = append(out, r)
		}
	}
	return out, nil
}

var _ TrustView = (*fakeView)(nil)

// The federation of the authorisation tests: DE and FR are recognised; a
// founding node of DE; live accreditations of a DE node, controller and
// regulator and of an FR controller. Further keys for single cases:
var (
	authDE, authFR               = seedKey(seedAuthorityDE), seedKey(seedAuthorityFR)
	nodeDE, ctrlDE, regDE        = seedKey(seedNodeDE), seedKey(seedControllerDE), seedKey(seedRegulatorDE)
	ctrlFR, stranger, foundingDE = seedKey(seedControllerFR), seedKey(seedStranger), seedKey(seedFoundingDE)
	otherCtrlDE, foundingUS      = seedKey(0x10), seedKey(0x11)
	windowFrom, windowUntil      = t0 - 30*day, t0 + 365*day
)

func accredit(t testing.TB, auth, subject crypto.PrivKey, j string, role Role, from, until int64) *Record {
	t.Helper()
	b := &Accreditation{
		Subject:      keyID(subject).String(),
		Jurisdiction: j,
		Roles:        []Role{role},
		Name:         "test " + string(role),
		ValidFrom:    from,
		ValidUntil:   until,
	}
	return mustSign(t, auth, from, b)
}

func revoke(t testing.TB, by crypto.PrivKey, target *Record, effective int64) *Record {
	t.Helper()
	return mustSign(t, by, effective, &Revocation{Target: LinkTo(target.CID()), Reason: "withdrawn", EffectiveAt: effective})
}

// federation returns the base view of the authorisation tests.
func federation(t testing.TB) *fakeView {
	v := newFakeView()
	v.authorities["DE"] = keyID(authDE)
	v.authorities["FR"] = keyID(authFR)
	v.founding[keyID(foundingDE)] = "DE"
	v.founding[keyID(foundingUS)] = "US" // a jurisdiction the view does not recognise
	v.hold(
		accredit(t, authDE, nodeDE, "DE", RoleNode, windowFrom, windowUntil),
		accredit(t, authDE, ctrlDE, "DE", RoleController, windowFrom, windowUntil),
		accredit(t, authDE, otherCtrlDE, "DE", RoleController, windowFrom, windowUntil),
		accredit(t, authDE, regDE, "DE", RoleRegulator, windowFrom, windowUntil),
		accredit(t, authFR, ctrlFR, "FR", RoleController, windowFrom, windowUntil),
	)
	return v
}

func consentBy(t testing.TB, key crypto.PrivKey, at int64, mut func(*Consent)) *Record {
	t.Helper()
	b := baseConsent()
	if mut != nil {
		mut(b)
	}
	return mustSign(t, key, at, b)
}

func incidentBy(t testing.TB, key crypto.PrivKey, at int64, mut func(*Incident)) *Record {
	t.Helper()
	b := baseIncident()
	b.Follows = nil
	if mut != nil {
		mut(b)
	}
	return mustSign(t, key, at, b)
}

func rulesetBy(t testing.TB, key crypto.PrivKey, j string, version int64, supersedes *Record) *Record {
	t.Helper()
	b := baseRuleset()
	b.Jurisdiction, b.Version, b.Supersedes = j, version, nil
	if supersedes != nil {
		b.Supersedes = LinkPtr(supersedes.CID())
	}
	return mustSign(t, key, t0-day+version, b)
}

func receiptBy(t testing.TB, key crypto.PrivKey, at int64) *Record {
	t.Helper()
	return mustSign(t, key, at, baseReceipt())
}

type authCase struct {
	name string
	// setup may add records to v and returns the record to authorise.
	setup func(t *testing.T, v *fakeView) *Record
	code  Code
	field string
}

func runAuthCases(t *testing.T, cases []authCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := federation(t)
			r := tc.setup(t, v)
			err := Authorize(r, v)
			checkErr(t, "Authorize", err, tc.code, tc.field)
			if tc.code == CodeUnknownReference {
				if e := err.(*Error); e.Ref == "" {
					t.Errorf("unknown_reference without Ref: %v", err)
				}
			}
		})
	}
}

func TestAuthorizeAuthorityKinds(t *testing.T) {
	acc := func(key crypto.PrivKey, j string) func(*testing.T, *fakeView) *Record {
		return func(t *testing.T, v *fakeView) *Record {
			return accredit(t, key, stranger, j, RoleAuditor, t0, t0+day)
		}
	}
	runAuthCases(t, []authCase{
		{"accreditation by the authority", acc(authDE, "DE"), "", ""},
		{"accreditation by another authority", acc(authFR, "DE"), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation by a controller", acc(ctrlDE, "DE"), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation by a regulator", acc(regDE, "DE"), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation for an unknown jurisdiction", acc(authDE, "US"), CodeUnauthorizedIssuer, "body.jurisdiction"},
		{"ruleset by the authority", func(t *testing.T, v *fakeView) *Record {
			return rulesetBy(t, authDE, "DE", 1, nil)
		}, "", ""},
		{"ruleset by a regulator", func(t *testing.T, v *fakeView) *Record {
			return rulesetBy(t, regDE, "DE", 1, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"ruleset by a founding node", func(t *testing.T, v *fakeView) *Record {
			return rulesetBy(t, foundingDE, "DE", 1, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"ruleset for an unknown jurisdiction", func(t *testing.T, v *fakeView) *Record {
			return rulesetBy(t, authDE, "US", 1, nil)
		}, CodeUnauthorizedIssuer, "body.jurisdiction"},
		{"ruleset superseding its predecessor", func(t *testing.T, v *fakeView) *Record {
			v1 := rulesetBy(t, authDE, "DE", 1, nil)
			v.hold(v1)
			return rulesetBy(t, authDE, "DE", 2, v1)
		}, "", ""},
		{"ruleset superseding an unheld one", func(t *testing.T, v *fakeView) *Record {
			return rulesetBy(t, authDE, "DE", 2, rulesetBy(t, authDE, "DE", 1, nil))
		}, CodeUnknownReference, "body.supersedes"},
		{"ruleset superseding a later version", func(t *testing.T, v *fakeView) *Record {
			v3 := rulesetBy(t, authDE, "DE", 3, nil)
			v.hold(v3)
			return rulesetBy(t, authDE, "DE", 2, v3)
		}, CodeInvalidBody, "body.supersedes"},
		{"ruleset superseding the same version", func(t *testing.T, v *fakeView) *Record {
			v2 := rulesetBy(t, authDE, "DE", 2, nil)
			v.hold(v2)
			return rulesetBy(t, authDE, "DE", 2, v2)
		}, CodeInvalidBody, "body.supersedes"},
		{"ruleset superseding another jurisdiction's", func(t *testing.T, v *fakeView) *Record {
			fr := rulesetBy(t, authFR, "FR", 1, nil)
			v.hold(fr)
			return rulesetBy(t, authDE, "DE", 2, fr)
		}, CodeInvalidBody, "body.supersedes"},
		{"ruleset superseding a consent", func(t *testing.T, v *fakeView) *Record {
			c := consentBy(t, ctrlDE, t0, nil)
			v.hold(c)
			return rulesetBy(t, authDE, "DE", 2, c)
		}, CodeInvalidBody, "body.supersedes"},
	})
}

func TestAuthorizeConsent(t *testing.T) {
	// withAccreditation accredits a fresh controller key of DE for
	// [from, until), holds the extra records extra returns, and has the
	// key sign a consent at t0.
	k := seedKey(0x20)
	withAccreditation := func(from, until int64, extra func(t *testing.T, acc *Record) []*Record) func(*testing.T, *fakeView) *Record {
		return func(t *testing.T, v *fakeView) *Record {
			acc := accredit(t, authDE, k, "DE", RoleController, from, until)
			v.hold(acc)
			if extra != nil {
				v.hold(extra(t, acc)...)
			}
			return consentBy(t, k, t0, nil)
		}
	}
	revokedBy := func(by crypto.PrivKey, effective int64) func(*testing.T, *Record) []*Record {
		return func(t *testing.T, acc *Record) []*Record { return []*Record{revoke(t, by, acc, effective)} }
	}
	runAuthCases(t, []authCase{
		{"live controller", func(t *testing.T, v *fakeView) *Record { return consentBy(t, ctrlDE, t0, nil) }, "", ""},
		{"accreditation starting at issued_at", withAccreditation(t0, t0+day, nil), "", ""},
		{"accreditation expired", withAccreditation(t0-60*day, t0-day, nil), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation ending at issued_at", withAccreditation(t0-day, t0, nil), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation not yet valid", withAccreditation(t0+1, t0+day, nil), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation revoked before issued_at", withAccreditation(windowFrom, windowUntil, revokedBy(authDE, t0-hour)), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation revoked at issued_at", withAccreditation(windowFrom, windowUntil, revokedBy(authDE, t0)), CodeUnauthorizedIssuer, "issuer"},
		{"accreditation revoked after issued_at", withAccreditation(windowFrom, windowUntil, revokedBy(authDE, t0+1)), "", ""},
		{"revocation by a stranger ignored", withAccreditation(windowFrom, windowUntil, revokedBy(stranger, t0-hour)), "", ""},
		{"revocation by another authority ignored", withAccreditation(windowFrom, windowUntil, revokedBy(authFR, t0-hour)), "", ""},
		{"accreditation by another authority", func(t *testing.T, v *fakeView) *Record {
			v.hold(accredit(t, authFR, k, "DE", RoleController, windowFrom, windowUntil))
			return consentBy(t, k, t0, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"controller of another jurisdiction", func(t *testing.T, v *fakeView) *Record {
			return consentBy(t, ctrlFR, t0, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"node, not controller", func(t *testing.T, v *fakeView) *Record { return consentBy(t, nodeDE, t0, nil) }, CodeUnauthorizedIssuer, "issuer"},
		{"the authority itself", func(t *testing.T, v *fakeView) *Record { return consentBy(t, authDE, t0, nil) }, CodeUnauthorizedIssuer, "issuer"},
		{"stranger", func(t *testing.T, v *fakeView) *Record { return consentBy(t, stranger, t0, nil) }, CodeUnauthorizedIssuer, "issuer"},
		{"unknown jurisdiction", func(t *testing.T, v *fakeView) *Record {
			return consentBy(t, ctrlDE, t0, func(b *Consent) { b.Jurisdiction = "US" })
		}, CodeUnauthorizedIssuer, "body.jurisdiction"},
		{"amendment by the same issuer", func(t *testing.T, v *fakeView) *Record {
			first := consentBy(t, ctrlDE, t0-day, nil)
			v.hold(first)
			return consentBy(t, ctrlDE, t0, func(b *Consent) { b.Supersedes, b.MaxTier = LinkPtr(first.CID()), 0 })
		}, "", ""},
		{"amendment by another issuer", func(t *testing.T, v *fakeView) *Record {
			first := consentBy(t, ctrlDE, t0-day, nil)
			v.hold(first)
			return consentBy(t, otherCtrlDE, t0, func(b *Consent) { b.Supersedes = LinkPtr(first.CID()) })
		}, CodeInvalidBody, "body.supersedes"},
		{"amendment for another subject", func(t *testing.T, v *fakeView) *Record {
			first := consentBy(t, ctrlDE, t0-day, nil)
			v.hold(first)
			return consentBy(t, ctrlDE, t0, func(b *Consent) { b.Supersedes, b.Subject = LinkPtr(first.CID()), sha("person 2") })
		}, CodeInvalidBody, "body.supersedes"},
		{"amendment of an unheld consent", func(t *testing.T, v *fakeView) *Record {
			return consentBy(t, ctrlDE, t0, func(b *Consent) { b.Supersedes = LinkPtr(fakeCID("never seen")) })
		}, CodeUnknownReference, "body.supersedes"},
		{"amendment of an accreditation", func(t *testing.T, v *fakeView) *Record {
			acc := v.accs[keyID(ctrlDE)][0]
			return consentBy(t, ctrlDE, t0, func(b *Consent) { b.Supersedes = LinkPtr(acc.CID()) })
		}, CodeInvalidBody, "body.supersedes"},
	})
}

func TestAuthorizeRevocation(t *testing.T) {
	heldConsent := func(t *testing.T, v *fakeView) *Record {
		c := consentBy(t, ctrlDE, t0-day, nil)
		v.hold(c)
		return c
	}
	runAuthCases(t, []authCase{
		{"by the target's issuer", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, ctrlDE, heldConsent(t, v), t0)
		}, "", ""},
		{"by the authority of the target's jurisdiction", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, authDE, heldConsent(t, v), t0)
		}, "", ""},
		{"by the authority of another jurisdiction", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, authFR, heldConsent(t, v), t0)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"by another controller of the jurisdiction", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, otherCtrlDE, heldConsent(t, v), t0)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"by a regulator", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, regDE, heldConsent(t, v), t0)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"by a stranger", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, stranger, heldConsent(t, v), t0)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"of an accreditation by its authority", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, authDE, v.accs[keyID(ctrlDE)][0], t0)
		}, "", ""},
		{"of an accreditation by its subject", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, ctrlDE, v.accs[keyID(ctrlDE)][0], t0)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"of a receipt by its node", func(t *testing.T, v *fakeView) *Record {
			r := receiptBy(t, nodeDE, t0)
			v.hold(r)
			return revoke(t, nodeDE, r, t0+hour)
		}, "", ""},
		{"of a receipt by an authority", func(t *testing.T, v *fakeView) *Record {
			r := receiptBy(t, nodeDE, t0)
			v.hold(r)
			return revoke(t, authDE, r, t0+hour)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"of an unheld target", func(t *testing.T, v *fakeView) *Record {
			return revoke(t, ctrlDE, consentBy(t, ctrlDE, t0-day, nil), t0)
		}, CodeUnknownReference, "body.target"},
		{"of a revocation", func(t *testing.T, v *fakeView) *Record {
			first := revoke(t, ctrlDE, heldConsent(t, v), t0)
			v.hold(first)
			return revoke(t, ctrlDE, first, t0+hour)
		}, CodeInvalidBody, "body.target"},
	})
}

func TestAuthorizeIncident(t *testing.T) {
	first := func(t *testing.T, v *fakeView) *Record {
		r := incidentBy(t, regDE, t0-hour, nil)
		v.hold(r)
		return r
	}
	runAuthCases(t, []authCase{
		{"by a regulator", func(t *testing.T, v *fakeView) *Record { return incidentBy(t, regDE, t0, nil) }, "", ""},
		{"by the authority", func(t *testing.T, v *fakeView) *Record { return incidentBy(t, authDE, t0, nil) }, "", ""},
		{"by a controller", func(t *testing.T, v *fakeView) *Record { return incidentBy(t, ctrlDE, t0, nil) }, "", ""},
		{"by a node", func(t *testing.T, v *fakeView) *Record { return incidentBy(t, nodeDE, t0, nil) }, "", ""},
		{"by a founding node", func(t *testing.T, v *fakeView) *Record { return incidentBy(t, foundingDE, t0, nil) }, "", ""},
		{"by a stranger", func(t *testing.T, v *fakeView) *Record { return incidentBy(t, stranger, t0, nil) }, CodeUnauthorizedIssuer, "issuer"},
		{"by another jurisdiction's controller", func(t *testing.T, v *fakeView) *Record {
			return incidentBy(t, ctrlFR, t0, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"by another jurisdiction's authority", func(t *testing.T, v *fakeView) *Record {
			return incidentBy(t, authFR, t0, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"by a regulator whose accreditation is revoked", func(t *testing.T, v *fakeView) *Record {
			v.hold(revoke(t, authDE, v.accs[keyID(regDE)][0], t0-day))
			return incidentBy(t, regDE, t0, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"by a regulator before its accreditation", func(t *testing.T, v *fakeView) *Record {
			return incidentBy(t, regDE, windowFrom-1, nil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"unknown jurisdiction", func(t *testing.T, v *fakeView) *Record {
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Jurisdiction = "US" })
		}, CodeUnauthorizedIssuer, "body.jurisdiction"},
		{"follow-up of the same incident", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v)
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Follows, b.Status = LinkPtr(prev.CID()), StatusResolved })
		}, "", ""},
		{"follow-up by the authority", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v)
			return incidentBy(t, authDE, t0, func(b *Incident) { b.Follows = LinkPtr(prev.CID()) })
		}, "", ""},
		{"follows another incident", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v)
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Follows, b.Ref = LinkPtr(prev.CID()), "DE-2026-0043" })
		}, CodeInvalidBody, "body.follows"},
		{"follows another jurisdiction's notice", func(t *testing.T, v *fakeView) *Record {
			fr := incidentBy(t, authFR, t0-hour, func(b *Incident) { b.Jurisdiction = "FR" })
			v.hold(fr)
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Follows = LinkPtr(fr.CID()) })
		}, CodeInvalidBody, "body.follows"},
		{"follows a consent", func(t *testing.T, v *fakeView) *Record {
			c := consentBy(t, ctrlDE, t0-day, nil)
			v.hold(c)
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Follows = LinkPtr(c.CID()) })
		}, CodeInvalidBody, "body.follows"},
		{"follows an unheld notice", func(t *testing.T, v *fakeView) *Record {
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Follows = LinkPtr(fakeCID("earlier notice")) })
		}, CodeUnknownReference, "body.follows"},
		// DESIGN.md §4: a follow-up comes from the chain's first issuer, or
		// the authority or a regulator of the incident's jurisdiction.
		{"follow-up by its first issuer, a controller", func(t *testing.T, v *fakeView) *Record {
			prev := incidentBy(t, ctrlDE, t0-hour, nil)
			v.hold(prev)
			return incidentBy(t, ctrlDE, t0, func(b *Incident) { b.Follows = LinkPtr(prev.CID()) })
		}, "", ""},
		{"follow-up by a controller that did not open the incident", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v)
			return incidentBy(t, ctrlDE, t0, func(b *Incident) { b.Follows, b.Status = LinkPtr(prev.CID()), StatusResolved })
		}, CodeUnauthorizedIssuer, "issuer"},
		{"follow-up by a node that did not open the incident", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v)
			return incidentBy(t, nodeDE, t0, func(b *Incident) { b.Follows = LinkPtr(prev.CID()) })
		}, CodeUnauthorizedIssuer, "issuer"},
		{"third notice by the first issuer, after a regulator's", func(t *testing.T, v *fakeView) *Record {
			one := incidentBy(t, ctrlDE, t0-2*hour, nil)
			two := incidentBy(t, regDE, t0-hour, func(b *Incident) { b.Follows = LinkPtr(one.CID()) })
			v.hold(one)
			v.hold(two)
			return incidentBy(t, ctrlDE, t0, func(b *Incident) { b.Follows = LinkPtr(two.CID()) })
		}, "", ""},
		{"follow-up changes the tlp", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v)
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Follows, b.TLP, b.Recipients = LinkPtr(prev.CID()), TLPAmber, nil })
		}, CodeInvalidBody, "body.tlp"},
		{"follow-up changes the recipients", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v) // to DE and FR
			return incidentBy(t, regDE, t0, func(b *Incident) { b.Follows, b.Recipients = LinkPtr(prev.CID()), []string{"DE"} })
		}, CodeInvalidBody, "body.tlp"},
		{"follow-up issued before its predecessor", func(t *testing.T, v *fakeView) *Record {
			prev := first(t, v)
			return incidentBy(t, regDE, t0-2*hour, func(b *Incident) { b.Follows = LinkPtr(prev.CID()) })
		}, CodeInvalidBody, "issued_at"},
	})
}

func TestAuthorizeReceipt(t *testing.T) {
	by := func(key crypto.PrivKey) func(*testing.T, *fakeView) *Record {
		return func(t *testing.T, v *fakeView) *Record { return receiptBy(t, key, t0) }
	}
	runAuthCases(t, []authCase{
		{"by a founding node", by(foundingDE), "", ""},
		{"by an accredited node", by(nodeDE), "", ""},
		{"by a node of another jurisdiction", func(t *testing.T, v *fakeView) *Record {
			k := seedKey(0x21)
			v.hold(accredit(t, authFR, k, "FR", RoleNode, windowFrom, windowUntil))
			return receiptBy(t, k, t0)
		}, "", ""},
		{"by a controller", by(ctrlDE), CodeUnauthorizedIssuer, "issuer"},
		{"by a regulator", by(regDE), CodeUnauthorizedIssuer, "issuer"},
		{"by an authority", by(authDE), CodeUnauthorizedIssuer, "issuer"},
		{"by a stranger", by(stranger), CodeUnauthorizedIssuer, "issuer"},
		{"by a founding node of an unrecognised jurisdiction", by(foundingUS), CodeUnauthorizedIssuer, "issuer"},
		{"by a node whose accreditation expired", func(t *testing.T, v *fakeView) *Record {
			return receiptBy(t, nodeDE, windowUntil)
		}, CodeUnauthorizedIssuer, "issuer"},
		{"by a node whose accreditation is revoked", func(t *testing.T, v *fakeView) *Record {
			v.hold(revoke(t, authDE, v.accs[keyID(nodeDE)][0], t0-hour))
			return receiptBy(t, nodeDE, t0)
		}, CodeUnauthorizedIssuer, "issuer"},
	})
}

func TestAuthorizeViewError(t *testing.T) {
	boom := errors.New("store closed")
	v := federation(t)
	v.err = boom
	for _, r := range []*Record{
		consentBy(t, ctrlDE, t0, nil),
		receiptBy(t, nodeDE, t0),
		incidentBy(t, regDE, t0, nil),
		revoke(t, ctrlDE, consentBy(t, ctrlDE, t0-day, nil), t0),
	} {
		if err := Authorize(r, v); !errors.Is(err, boom) || CodeOf(err) != "" {
			t.Errorf("%s: Authorize = %v, want the view's error", r.Kind(), err)
		}
	}
}

func TestHasRole(t *testing.T) {
	v := federation(t)
	founding, node := keyID(foundingDE), keyID(nodeDE)
	for _, tc := range []struct {
		name string
		id   peer.ID
		j    string
		role Role
		at   int64
		want bool
		acc  bool // the grant names an accreditation
	}{
		{"founding node", founding, "DE", RoleNode, t0, true, false},
		{"founding node, other jurisdiction", founding, "FR", RoleNode, t0, false, false},
		{"founding node is no controller", founding, "DE", RoleController, t0, false, false},
		{"founding node of unrecognised jurisdiction", keyID(foundingUS), "US", RoleNode, t0, false, false},
		{"accredited node", node, "DE", RoleNode, t0, true, true},
		{"at valid_from", node, "DE", RoleNode, windowFrom, true, true},
		{"before valid_from", node, "DE", RoleNode, windowFrom - 1, false, false},
		{"at valid_until", node, "DE", RoleNode, windowUntil, false, false},
		{"other role", node, "DE", RoleController, t0, false, false},
		{"other jurisdiction", node, "FR", RoleNode, t0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ok, err := HasRole(v, tc.id, tc.j, tc.role, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.want || (g.Accreditation != nil) != tc.acc {
				t.Errorf("HasRole = %v (grant %v), want %v (accreditation %v)", ok, g.Accreditation, tc.want, tc.acc)
			}
		})
	}
	for _, tc := range []struct {
		id   peer.ID
		js   []string
		want bool
	}{
		{founding, []string{"FR", "DE"}, true},
		{node, []string{"DE"}, true},
		{node, []string{"FR"}, false},
		{keyID(ctrlDE), []string{"DE", "FR"}, false},
	} {
		if ok, err := IsMemberNode(v, tc.id, tc.js, t0); err != nil || ok != tc.want {
			t.Errorf("IsMemberNode(%s, %v) = %v, %v; want %v", tc.id, tc.js, ok, err, tc.want)
		}
	}
}

func TestRevokedAt(t *testing.T) {
	v := federation(t)
	c := consentBy(t, ctrlDE, t0-day, nil)
	byStranger := revoke(t, stranger, c, t0-hour)
	byIssuer := revoke(t, ctrlDE, c, t0)
	v.hold(c, byStranger, byIssuer)
	for _, tc := range []struct {
		at   int64
		want *Record
	}{
		{t0 - 1, nil},
		{t0, byIssuer},
		{t0 + day, byIssuer},
	} {
		got, err := RevokedAt(v, c, tc.at)
		if err != nil || got != tc.want {
			t.Errorf("RevokedAt(%d) = %v, %v; want %v", tc.at, got, err, tc.want)
		}
	}
}

func TestCheckClock(t *testing.T) {
	now := time.UnixMilli(t0)
	for _, tc := range []struct {
		name  string
		ahead time.Duration
		code  Code
	}{
		{"past", -time.Hour, ""},
		{"now", 0, ""},
		{"4 minutes ahead", 4 * time.Minute, ""},
		{"exactly 5 minutes ahead", 5 * time.Minute, ""},
		{"5 minutes and 1 ms ahead", 5*time.Minute + time.Millisecond, CodeClockSkew},
		{"6 minutes ahead", 6 * time.Minute, CodeClockSkew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := consentBy(t, ctrlDE, now.Add(tc.ahead).UnixMilli(), nil)
			err := CheckClock(r, now)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkErr(t, "CheckClock", err, tc.code, "issued_at")
		})
	}
}

// TestCheckFresh holds CheckFresh to the window of the package doc's
// example: [now - max_age, now + 5 minutes], both ends included.
func TestCheckFresh(t *testing.T) {
	now := time.UnixMilli(1764000000000)
	const maxAge = 10 * time.Minute
	for _, tc := range []struct {
		issuedAt int64
		code     Code
	}{
		{1764000000000, ""},                       // now
		{1763999400000, ""},                       // exactly max_age old
		{1764000300000, ""},                       // exactly 5 minutes ahead
		{1763999399999, CodeClockSkew},            // 1 ms too old
		{1764000300001, CodeClockSkew},            // 1 ms too far ahead
		{1764000000000 - 30*60000, CodeClockSkew}, // the case: 30 minutes old
		{0, CodeClockSkew},
	} {
		r := consentBy(t, ctrlDE, tc.issuedAt, nil)
		err := CheckFresh(r, now, maxAge)
		if tc.code == "" {
			if err != nil {
				t.Errorf("issued_at %d: %v", tc.issuedAt, err)
			}
			continue
		}
		checkErr(t, "CheckFresh", err, tc.code, "issued_at")
	}
	old := consentBy(t, ctrlDE, 1764000000000-30*60000, nil)
	msg := CheckFresh(old, now, maxAge).Error()
	for _, want := range []string{"30m0s ago", "10m0s", "import"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
}
