package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// TestDecisionsSeeNewEvidence: decisions share their store reads while
// no evidence arrives (receipts do not count), and the first decision
// after a record that changes the answer sees it — an incident naming the
// recipient, the notice that resolves it, a stricter rule set, a
// revocation — however warm the shared answers were.
func TestDecisionsSeeNewEvidence(t *testing.T) {
	f := newVerifyFixture(t)
	ctx := testCtx(t, 30*time.Second)
	n := f.m.Node
	req := protocol.TransferRequest{Consent: protocol.LinkTo(f.consent.CID()), From: "DE", To: "DE", Sender: f.consent.Issuer().String(), Recipient: f.recipient,
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30}
	regulator, err := f.tn.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}

	var latest int64 // the latest issued_at of the records submitted
	// decide decides req three times (the second and third from the
	// shared answers) and returns the failed checks, which must agree.
	decide := func(what string) []string {
		t.Helper()
		var failed []string
		req.At = max(time.Now().UnixMilli(), latest) // not before the records it should see
		for i := 0; i < 3; i++ {
			d, err := n.Services().Verify.Decide(req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			var ids []string
			for _, c := range d.Failed() {
				ids = append(ids, c.ID)
			}
			if i > 0 && !equalStrings(ids, failed) {
				t.Fatalf("%s: decision %d failed %v, the one before %v", what, i+1, ids, failed)
			}
			failed = ids
		}
		return failed
	}
	want := func(what string, got []string, checks ...string) {
		t.Helper()
		if !equalStrings(got, checks) {
			t.Fatalf("%s: failed checks %v, want %v", what, got, checks)
		}
	}
	submit := func(r *protocol.Record) {
		t.Helper()
		before := n.Store().EvidenceEpoch()
		if _, err := n.Services().Ingest.SubmitRecord(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if n.Store().EvidenceEpoch() == before {
			t.Fatalf("accepting a %s left the evidence epoch at %d", r.Kind(), before)
		}
		latest = max(latest, r.IssuedAt())
	}

	want("at first", decide("at first"))

	// Receipts are not evidence: verifying (which stores one) keeps the
	// shared answers.
	epoch := n.Store().EvidenceEpoch()
	req.At = 0 // now
	if v, err := n.Services().Verify.Verify(ctx, req); err != nil || !v.Decision.Allowed() {
		t.Fatalf("Verify: %v %+v", err, v)
	}
	if got := n.Store().EvidenceEpoch(); got != epoch {
		t.Fatalf("storing a receipt moved the evidence epoch from %d to %d", epoch, got)
	}

	inc := incident("DE", protocol.TLPGreen)
	inc.Affected = []string{f.recipient}
	open := mustSign(t, regulator.Key, inc)
	submit(open)
	want("after an open incident naming the recipient", decide("incident"), "incident.clear")

	resolved := *inc
	resolved.Status = protocol.StatusResolved
	resolved.Follows = protocol.LinkPtr(open.CID())
	// A millisecond later than the open notice: of two notices issued in
	// the same millisecond, the decision takes the lower CID's status.
	follow, err := protocol.Sign(regulator.Key, open.IssuedAt()+1, &resolved)
	if err != nil {
		t.Fatal(err)
	}
	submit(follow)
	want("after the incident is resolved", decide("resolved"))

	rules := protocol.Rules{MaxTier: 3, ProhibitedPurposes: []string{"research"}, MaxRetentionDays: 365, BlockOnIncident: protocol.SeverityHigh, Conditions: []protocol.Condition{}}
	submit(mustSign(t, f.tn.Authorities["DE"], &protocol.Ruleset{Jurisdiction: "DE", Version: 2, EffectiveFrom: time.Now().Add(-time.Minute).UnixMilli(),
		Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules}, Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules}}))
	want("after a rule set that prohibits the purpose", decide("ruleset"), "export.rules", "import.rules")

	submit(mustSign(t, f.tn.Authorities["DE"], &protocol.Revocation{Target: protocol.LinkTo(f.consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().Add(-time.Second).UnixMilli()}))
	want("after the consent is revoked", decide("revocation"), "consent.live", "export.rules", "import.rules")
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
