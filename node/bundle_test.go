package node_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// bundleWorld is one DE node that decides transfers from DE to BR: both
// rule sets (with a condition), a DE platform and its consent, a BR
// recipient, and a low-severity incident naming the recipient that
// blocks nothing but which the decision weighs.
type bundleWorld struct {
	tn        *testnet.Net
	m         *testnet.Member
	api       *apiClient
	platform  *testnet.Party
	recipient *testnet.Party
	consent   *protocol.Record
	incident  *protocol.Record
	req       protocol.TransferRequest
}

func newBundleWorld(t *testing.T) *bundleWorld {
	t.Helper()
	tn := startNet(t, 1)
	w := &bundleWorld{tn: tn, m: tn.Nodes[0], api: newAPIClient(t, tn.Nodes[0])}
	ctx := testCtx(t, 20*time.Second)
	var err error
	if w.platform, err = tn.NewParty(ctx, "DE", "platform", protocol.RoleController); err != nil {
		t.Fatal(err)
	}
	if w.recipient, err = tn.NewParty(ctx, "BR", "recipient", protocol.RoleController); err != nil {
		t.Fatal(err)
	}
	rules := protocol.Rules{MaxTier: 2, ProhibitedPurposes: []string{"marketing"}, MaxRetentionDays: 365, BlockOnIncident: protocol.SeverityHigh,
		Conditions: []protocol.Condition{{ID: "no-iris-resale", Description: "iris data is not resold", Expr: `!("iris" in transfer.categories) || transfer.tier <= 1`}}}
	for _, j := range []string{"DE", "BR"} {
		w.api.submit(mustSign(t, tn.Authorities[j], &protocol.Ruleset{Jurisdiction: j, Version: 1, EffectiveFrom: time.Now().Add(-time.Hour).UnixMilli(),
			Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules}, Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules}}))
	}
	subject := make([]byte, 32)
	rand.Read(subject)
	w.consent = mustSign(t, w.platform.Key, &protocol.Consent{Subject: subject, Jurisdiction: "DE", Categories: []string{"face"}, Purposes: []string{"research"},
		MaxTier: 1, Destinations: []string{"BR"}, RetentionDays: 90, ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "opt-in"})
	w.api.submit(w.consent)
	w.incident = mustSign(t, tn.Authorities["BR"], &protocol.Incident{Ref: "BR-1", Jurisdiction: "BR", Severity: protocol.SeverityLow, Status: protocol.StatusOpen,
		TLP: protocol.TLPGreen, Affected: []string{w.recipient.ID.String()}, Categories: []string{"face"}, DetectedAt: time.Now().Add(-time.Minute).UnixMilli(),
		Summary: "a misdirected export, contained to one batch"})
	w.api.submit(w.incident)
	w.api.submit(freshAccreditation(t, tn, "DE", "filler"))
	w.req = protocol.TransferRequest{Consent: protocol.LinkTo(w.consent.CID()), From: "DE", To: "BR", Sender: w.platform.ID.String(), Recipient: w.recipient.ID.String(),
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30}
	return w
}

// verify has the node decide req and returns its receipt.
func (w *bundleWorld) verify(t *testing.T, req protocol.TransferRequest) *service.Verdict {
	t.Helper()
	v, err := w.m.Services().Verify.Verify(testCtx(t, 10*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// bundle GETs the bundle of receipt c and checks the answer's headers.
func (w *bundleWorld) bundle(t *testing.T, r *protocol.Record) []byte {
	t.Helper()
	resp := w.api.get("/v1/receipts/"+r.CID().String()+"/bundle", "")
	if resp.status != http.StatusOK {
		t.Fatalf("GET bundle: %d %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != api.MediaCAR {
		t.Errorf("Content-Type %q, want %s", ct, api.MediaCAR)
	}
	if cd := resp.header.Get("Content-Disposition"); !strings.Contains(cd, r.CID().String()+".car") {
		t.Errorf("Content-Disposition %q", cd)
	}
	return resp.body
}

func (w *bundleWorld) trust() protocol.BundleTrust {
	return protocol.NewBundleTrust(w.tn.Federation.Name, w.tn.Federation.Authorities(), w.tn.Federation.FoundingNodes())
}

func wantHolds(t *testing.T, rep *protocol.BundleReport) {
	t.Helper()
	for _, s := range rep.Steps {
		if !s.OK {
			t.Errorf("%s: skipped %v: %s", s.ID, s.Skipped, s.Detail)
		}
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
}

// blockCIDs lists a bundle's block CIDs.
func blockCIDs(t *testing.T, car []byte) []string {
	t.Helper()
	b, err := protocol.ReadBundle(car)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, blk := range b.Blocks {
		out = append(out, blk.CID.String())
	}
	return out
}

// TestReceiptBundleChecks: the bundles of an allow and a deny receipt,
// from the API, pass every step of the offline check; records accepted
// after a receipt, even one that would change its verdict, stay out of
// its bundle.
func TestReceiptBundleChecks(t *testing.T) {
	w := newBundleWorld(t)
	allow := w.verify(t, w.req)
	if !allow.Decision.Allowed() {
		t.Fatalf("the world's transfer is denied: %+v", allow.Decision.Failed())
	}
	deny := w.req
	deny.Purpose = "marketing"
	denied := w.verify(t, deny)
	if denied.Decision.Allowed() {
		t.Fatal("marketing is allowed")
	}

	car := w.bundle(t, allow.Receipt)
	rep := protocol.CheckBundleCAR(car, w.trust())
	wantHolds(t, rep)
	if rep.Decision == nil || rep.Decision.Verdict != protocol.VerdictAllow {
		t.Fatalf("recomputed %+v", rep.Decision)
	}
	blocks := blockCIDs(t, car)
	for _, r := range []*protocol.Record{allow.Receipt, w.consent, w.platform.Accreditation, w.recipient.Accreditation, w.incident} {
		if !slices.Contains(blocks, r.CID().String()) {
			t.Errorf("the bundle lacks %s", r)
		}
	}
	t.Logf("bundle of a receipt: %d bytes, %d blocks", len(car), len(blocks))

	wantHolds(t, protocol.CheckBundleCAR(w.bundle(t, denied.Receipt), w.trust()))

	// The platform revokes the consent afterwards, effective before the
	// transfer: deciding again now denies, but the receipt's bundle is
	// made of what the node held before it, and still checks.
	rev := mustSign(t, w.platform.Key, &protocol.Revocation{Target: protocol.LinkTo(w.consent.CID()), Reason: "the person withdrew", EffectiveAt: allow.Receipt.IssuedAt() - 1000})
	w.api.submit(rev)
	req := w.req
	req.At = allow.Receipt.IssuedAt()
	if d, err := w.m.Services().Verify.Decide(req); err != nil || d.Allowed() {
		t.Fatalf("deciding again after the revocation: %v %v", d, err)
	}
	later := w.bundle(t, allow.Receipt)
	wantHolds(t, protocol.CheckBundleCAR(later, w.trust()))
	if slices.Contains(blockCIDs(t, later), rev.CID().String()) {
		t.Error("the bundle holds a revocation accepted after the receipt")
	}
}

// rebuild reads a bundle, lets edit change its blocks and manifest, and
// writes it again with the manifest block re-hashed.
func rebuild(t *testing.T, car []byte, edit func(b *protocol.Bundle, m *protocol.BundleManifest)) []byte {
	t.Helper()
	b, err := protocol.ReadBundle(car)
	if err != nil {
		t.Fatal(err)
	}
	m, err := protocol.DecodeBundleManifest(b.Blocks[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	edit(b, m)
	mb, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b.Blocks[1] = protocol.BundleBlock{CID: protocol.RecordCID(mb), Data: mb}
	out, err := b.MarshalCAR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReceiptBundleTampered: a bundle changed in any of these ways fails,
// and the first failing step says why.
func TestReceiptBundleTampered(t *testing.T) {
	w := newBundleWorld(t)
	v := w.verify(t, w.req)
	good := w.bundle(t, v.Receipt)
	wantHolds(t, protocol.CheckBundleCAR(good, w.trust()))

	consentAt := bytes.Index(good, w.consent.Bytes())
	if consentAt < 0 {
		t.Fatal("the consent is not in the bundle")
	}
	flipped := slices.Clone(good)
	flipped[consentAt+len(w.consent.Bytes())-10] ^= 0x01 // in its signature

	removed := rebuild(t, good, func(b *protocol.Bundle, m *protocol.BundleManifest) {
		for i := 3; i < len(b.Blocks); i++ { // after the receipt, manifest and decision
			if b.Blocks[i].CID.Equals(w.platform.Accreditation.CID()) {
				b.Blocks = slices.Delete(b.Blocks, i, i+1)
				m.Proofs = slices.Delete(m.Proofs, i-2, i-1)
				return
			}
		}
		t.Fatal("the platform's accreditation is not in the bundle")
	})

	noteEdited := rebuild(t, good, func(b *protocol.Bundle, m *protocol.BundleManifest) {
		lines := strings.SplitN(string(m.Checkpoint), "\n", 3)
		m.Checkpoint = []byte(lines[0] + "\n" + lines[1] + "0\n" + lines[2]) // ten times the size
	})

	proofEdited := rebuild(t, good, func(b *protocol.Bundle, m *protocol.BundleManifest) {
		m.Proofs[len(m.Proofs)-1].Hashes[0][0] ^= 0x80
	})

	// A decision block with the other verdict, and a receipt of it signed
	// by a key that is no node, in place of the node's.
	stranger, _ := newKey(t)
	fb := *v.Block
	fb.Verdict = protocol.VerdictDeny
	fb.Checks = slices.Clone(fb.Checks)
	fb.Checks[0].OK, fb.Checks[0].Reason = false, protocol.CheckReasons[fb.Checks[0].ID][0]
	forgedBlock, forgedID, err := fb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := v.Receipt.Receipt()
	forged := signReceipt(t, stranger, protocol.NewReceipt([]cid.Cid{forgedID}, body.Checkpoint))
	forgedCAR := rebuild(t, good, func(b *protocol.Bundle, m *protocol.BundleManifest) {
		b.Root = forged.CID()
		b.Blocks[0] = protocol.BundleBlock{CID: forged.CID(), Data: forged.Bytes()}
		b.Blocks[2] = protocol.BundleBlock{CID: forgedID, Data: forgedBlock}
		m.Receipt, m.Item = protocol.LinkTo(forged.CID()), 0
		m.Proofs[0].CID = protocol.LinkTo(forged.CID())
	})

	// Another federation's file: other authorities, no founding nodes.
	other := &config.Federation{Name: "another-federation"}
	for _, j := range w.tn.Federation.Jurisdictions {
		_, id := newKey(t)
		other.Jurisdictions = append(other.Jurisdictions, config.Jurisdiction{Code: j.Code, Name: j.Name, Authority: id.String()})
	}
	// The same name and founding nodes, other authorities.
	sameName := *w.tn.Federation
	sameName.Jurisdictions = slices.Clone(sameName.Jurisdictions)
	for i := range sameName.Jurisdictions {
		_, id := newKey(t)
		sameName.Jurisdictions[i].Authority = id.String()
	}

	for _, c := range []struct {
		name  string
		car   []byte
		trust protocol.BundleTrust
		step  string
		want  []string
	}{
		{"a byte flipped in a record", flipped, w.trust(), protocol.StepBlocks, []string{"hash to", w.consent.CID().String()}},
		{"a record removed", removed, w.trust(), protocol.StepEvidenceHeld, []string{"not in the bundle", w.platform.Accreditation.CID().String()}},
		{"the checkpoint note altered", noteEdited, w.trust(), protocol.StepCheckpoint, []string{"signature"}},
		{"a proof hash altered", proofEdited, w.trust(), protocol.StepInclusion, []string{"is not leaf"}},
		{"the receipt re-signed by a key that is no node", forgedCAR, w.trust(), protocol.StepReceiptIssuer, []string{"unauthorized_issuer"}},
		{"another federation's file", good, protocol.NewBundleTrust(other.Name, other.Authorities(), other.FoundingNodes()), protocol.StepReceiptIssuer, []string{"unauthorized_issuer"}},
		{"another federation's authorities", good, protocol.NewBundleTrust(sameName.Name, sameName.Authorities(), sameName.FoundingNodes()), protocol.StepEvidenceAuthorized, []string{"unauthorized_issuer"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := protocol.CheckBundleCAR(c.car, c.trust)
			for _, s := range rep.Steps {
				t.Logf("%-20s ok=%-5v %s", s.ID, s.OK, s.Detail)
			}
			first, failed := rep.FirstFailure()
			if !failed {
				t.Fatal("the bundle holds")
			}
			if first.ID != c.step {
				t.Fatalf("first failure %s (%s), want %s", first.ID, first.Detail, c.step)
			}
			for _, want := range c.want {
				if !strings.Contains(first.Detail, want) {
					t.Errorf("%q does not mention %q", first.Detail, want)
				}
			}
		})
	}
	// A record removed changes the recomputed decision as well.
	rep := protocol.CheckBundleCAR(removed, w.trust())
	for _, s := range rep.Steps {
		if s.ID == protocol.StepDecision && (s.OK || !strings.Contains(s.Detail, protocol.CheckConsentIssuer)) {
			t.Errorf("decision without the platform's accreditation: %+v", s)
		}
	}
}

// TestReceiptBundleNotFound: the endpoint's refusals.
func TestReceiptBundleNotFound(t *testing.T) {
	w := newBundleWorld(t)
	wantAPIError(t, w.api.get("/v1/receipts/not-a-cid/bundle", ""), http.StatusBadRequest, string(protocol.CodeBadCID))
	wantAPIError(t, w.api.get("/v1/receipts/"+protocol.RecordCID([]byte("nothing")).String()+"/bundle", ""), http.StatusNotFound, api.CodeNotFound)
	msg := wantAPIError(t, w.api.get("/v1/receipts/"+w.consent.CID().String()+"/bundle", ""), http.StatusNotFound, api.CodeNotFound)
	if !strings.Contains(msg, "is a consent, not a receipt") {
		t.Errorf("message %q", msg)
	}

	// A receipt of another node, held here: only its issuer can prove it.
	otherKey, otherID := newKey(t)
	acc, err := w.tn.Accredit(testCtx(t, 10*time.Second), "DE", otherID, "another node", protocol.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	_ = acc
	v := w.verify(t, w.req)
	body, _ := v.Receipt.Receipt()
	theirs := signReceipt(t, otherKey, body)
	w.api.submit(theirs)
	msg = wantAPIError(t, w.api.get("/v1/receipts/"+theirs.CID().String()+"/bundle", ""), http.StatusNotFound, api.CodeNotFound)
	if !strings.Contains(msg, "issued by node "+otherID.String()) {
		t.Errorf("message %q", msg)
	}
}

func signReceipt(t *testing.T, key crypto.PrivKey, body *protocol.Receipt) *protocol.Record {
	t.Helper()
	r, err := protocol.Sign(key, time.Now().UnixMilli(), body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
