package protocol

import (
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// The resale world: the decision world with a consent that allows tier 3
// and DE as a destination, and rulesets (v2) that allow tier 3. Its chain
// of parties: ctrlDE collects and sends to ctrlFR (tier 1, DE to FR, at
// t0+1h, for 30 days), who resells to otherCtrlDE (tier 2, FR to DE, at
// t0+2h, 29 days), who resells to ctrlFR again (tier 3, DE to FR, at
// t0+3h, 28 days).
var resaleChain = []struct {
	from, to          string
	sender, recipient crypto.PrivKey
}{
	{"DE", "FR", ctrlDE, ctrlFR},
	{"FR", "DE", ctrlFR, otherCtrlDE},
	{"DE", "FR", otherCtrlDE, ctrlFR},
}

func newResaleWorld(t testing.TB) *world {
	t.Helper()
	w := newWorld(t)
	w.replaceConsent(t0-day, func(c *Consent) { c.MaxTier, c.Destinations = 3, []string{"BR", "DE", "FR"} })
	tier3 := func(r *Ruleset) { r.Export.Rules.MaxTier, r.Import.Rules.MaxTier = 3, 3 }
	w.rsDE = rulesetFor(t, authDE, "DE", 2, t0-30*day, tier3)
	w.rsFR = rulesetFor(t, authFR, "FR", 2, t0-30*day, tier3)
	w.hold(w.rsDE, w.rsFR)
	return w
}

// requestAt is the request of the chain's tier (1 to 3), naming parent.
func (w *world) requestAt(tier int, parent *DecisionRef) TransferRequest {
	c := resaleChain[tier-1]
	req := w.req
	req.From, req.To, req.Sender, req.Recipient = c.from, c.to, keyID(c.sender).String(), keyID(c.recipient).String()
	// Each tier keeps the data a day less than the one before.
	req.Tier, req.At, req.RetentionDays, req.Parent = int64(tier), t0+int64(tier)*hour, int64(31-tier), parent
	return req
}

// signDecision decides req in the world, lets mut change the block, signs
// it as a receipt of one decision by key at req.At and holds both; it
// returns the receipt, the block and the block's encoding.
func (w *world) signDecision(req TransferRequest, key crypto.PrivKey, mut func(*DecisionBlock)) (*Record, *DecisionBlock, []byte) {
	w.t.Helper()
	d, err := Decide(&req, w.v, w.engine)
	if err != nil {
		w.t.Fatal(err)
	}
	blk := d.Block(req)
	blk.Checks = slices.Clone(blk.Checks)
	if mut != nil {
		mut(blk)
	}
	enc, c, err := blk.Encode()
	if err != nil {
		w.t.Fatal(err)
	}
	r := mustSign(w.t, key, req.At, NewReceipt([]cid.Cid{c}, Checkpoint{Size: 1, Root: make([]byte, 32)}))
	w.v.holdDecision(r, blk)
	return r, blk, enc
}

// chainTo signs the chain's decisions below tier by nodeDE and makes the
// world's request the decision of tier.
func (w *world) chainTo(tier int) []*Record {
	w.t.Helper()
	var receipts []*Record
	var parent *DecisionRef
	for k := 1; k < tier; k++ {
		r, blk, _ := w.signDecision(w.requestAt(k, parent), nodeDE, nil)
		if blk.Verdict != VerdictAllow {
			w.t.Fatalf("the tier-%d decision of the chain is denied: %+v", k, blk.Checks)
		}
		receipts = append(receipts, r)
		parent = &DecisionRef{Receipt: LinkTo(r.CID())}
	}
	w.req = w.requestAt(tier, parent)
	return receipts
}

// reparent makes the request's parent a decision signed by key whose
// block is the world's tier-1 decision changed by mut.
func (w *world) reparent(key crypto.PrivKey, mut func(*DecisionBlock)) *Record {
	w.t.Helper()
	r, _, _ := w.signDecision(w.requestAt(1, nil), key, mut)
	w.req.Parent = &DecisionRef{Receipt: LinkTo(r.CID())}
	return r
}

func TestDecideSenderAccredited(t *testing.T) {
	runDecideCases(t, CheckSenderAccredited, []decideCase{
		{name: "the consent issuer, a controller of from", ok: true, detail: "sender " + keyID(ctrlDE).String() + " holds a live controller accreditation of DE",
			ev: func(w *world) *Record { return w.acc(ctrlDE) }},
		{name: "a controller of another jurisdiction", setup: func(w *world) { w.req.Sender = keyID(ctrlFR).String() },
			ok: false, reason: ReasonNotAccredited, detail: "holds no live controller accreditation of DE"},
		{name: "a regulator", setup: func(w *world) { w.req.Sender = keyID(regDE).String() },
			ok: false, reason: ReasonNotAccredited, detail: "DE's authority has granted it no controller role"},
		{name: "revoked before the decision", setup: func(w *world) {
			w.hold(revoke(t, authDE, w.acc(ctrlDE), t0))
		}, ok: false, reason: ReasonNotAccredited, detail: "was revoked by"},
	})
}

func TestDecideLineageFirstHand(t *testing.T) {
	consentless := func(w *world) { w.v.forget(w.cons) }
	runDecideCases(t, CheckLineageParent, []decideCase{
		{name: "tier 1 from the consent's issuer", ok: true, detail: "tier 1: sent by the consent's issuer from DE", noEv: true},
		{name: "tier 0 kept by the issuer", setup: func(w *world) {
			w.req.Tier, w.req.To, w.req.Recipient = 0, "DE", keyID(ctrlDE).String()
		}, ok: true, detail: "tier 0: the consent's issuer keeps the data in DE"},
		{name: "tier 1 with a parent", setup: func(w *world) {
			w.req.Parent = &DecisionRef{Receipt: LinkTo(fakeCID("a receipt"))}
		}, ok: false, reason: ReasonUnexpectedParent, detail: "a tier-1 transfer has no parent"},
		{name: "a sender who is not the issuer", setup: func(w *world) { w.req.Sender = keyID(otherCtrlDE).String() },
			ok: false, reason: ReasonSenderNotIssuer, detail: "the sender is the consent's issuer " + keyID(ctrlDE).String()},
		{name: "from another jurisdiction than the consent's", setup: func(w *world) { w.req.From = "FR" },
			ok: false, reason: ReasonOrigin, detail: "leaves from the consent's jurisdiction DE, not from FR"},
		{name: "tier 0 to another platform", setup: func(w *world) { w.req.Tier = 0 },
			ok: false, reason: ReasonTier0Recipient, detail: "the recipient " + keyID(ctrlFR).String() + " is not the sender"},
		{name: "the consent not held", setup: consentless, ok: false, reason: ReasonConsentNotHeld},
		{name: "every fault is said, the first gives the reason", setup: func(w *world) {
			w.req.Tier, w.req.From, w.req.Sender = 0, "FR", keyID(otherCtrlDE).String()
			w.req.Parent = &DecisionRef{Receipt: LinkTo(fakeCID("a receipt"))}
		}, ok: false, reason: ReasonUnexpectedParent, detail: "not from FR; at tier 0"},
	})
}

func TestDecideLineageResale(t *testing.T) {
	var parent *Record
	resale := func(mut func(w *world)) func(w *world) {
		return func(w *world) {
			*w = *newResaleWorld(t)
			parent = w.chainTo(2)[0]
			if mut != nil {
				mut(w)
			}
		}
	}
	// reparented is a resale whose parent is the tier-1 decision changed
	// by mut, signed by nodeDE.
	reparented := func(mut func(*DecisionBlock)) func(w *world) {
		return resale(func(w *world) { parent = w.reparent(nodeDE, mut) })
	}
	parentEv := func(*world) *Record { return parent }
	runDecideCases(t, CheckLineageParent, []decideCase{
		{name: "allowed, within its parent", setup: resale(nil), ok: true, ev: parentEv,
			detail: "allowed tier 1 from DE to FR for the sender; this transfer stays within its consent, purpose, categories and retention"},
		{name: "no parent", setup: resale(func(w *world) { w.req.Parent = nil }), ok: false, reason: ReasonMissingParent, noEv: true},
		{name: "the parent receipt not held", setup: resale(func(w *world) { w.v.forget(parent) }), ok: false, reason: ReasonParentNotHeld,
			detail: "is not held and no member node gave it", noEv: true},
		{name: "the parent is not a receipt", setup: resale(func(w *world) { w.req.Parent.Receipt = LinkTo(w.cons.CID()) }),
			ok: false, reason: ReasonParentNotHeld, detail: "is a consent, not a receipt"},
		{name: "no such item", setup: resale(func(w *world) { w.req.Parent.Item = 1 }), ok: false, reason: ReasonParentItem,
			detail: "signs 1 decision; there is no item 1", ev: parentEv},
		{name: "the parent's decision not held", setup: resale(func(w *world) { clear(w.v.blocks) }), ok: false, reason: ReasonParentNotHeld,
			detail: "(block ", ev: parentEv},
		{name: "signed by a key that is no node", setup: resale(func(w *world) { parent = w.reparent(ctrlDE, nil) }),
			ok: false, reason: ReasonParentIssuer, detail: "the issuer held no live node accreditation", ev: parentEv},
		{name: "signed by a founding node", setup: resale(func(w *world) { parent = w.reparent(foundingDE, nil) }), ok: true},
		{name: "its node's accreditation revoked since", setup: resale(func(w *world) {
			w.hold(revoke(t, authDE, w.acc(nodeDE), t0+90*minute))
		}), ok: false, reason: ReasonParentIssuer, detail: "its node accreditation"},
		{name: "its node's accreditation revoked after this decision", setup: resale(func(w *world) {
			w.hold(revoke(t, authDE, w.acc(nodeDE), t0+3*hour))
		}), ok: true},
		{name: "the parent denied", setup: reparented(func(b *DecisionBlock) {
			b.Verdict, b.Checks[0].OK, b.Checks[0].Reason = VerdictDeny, false, ReasonNotHeld
		}), ok: false, reason: ReasonParentDenied, detail: "denied that transfer"},
		{name: "the parent on another consent", setup: reparented(func(b *DecisionBlock) { b.Request.Consent = LinkTo(fakeCID("another")) }),
			ok: false, reason: ReasonConsent, detail: "is neither this consent"},
		{name: "the parent on the consent this one amends", setup: resale(func(w *world) {
			old := w.cons
			w.replaceConsent(t0+150*minute, func(c *Consent) {
				c.MaxTier, c.Destinations, c.Supersedes = 3, []string{"BR", "DE", "FR"}, LinkPtr(old.CID())
			})
		}), ok: true},
		{name: "the parent's recipient is not the sender", setup: reparented(func(b *DecisionBlock) { b.Request.Recipient = keyID(otherCtrlDE).String() }),
			ok: false, reason: ReasonRecipient, detail: "is not this sender " + keyID(ctrlFR).String()},
		{name: "the data left from elsewhere", setup: reparented(func(b *DecisionBlock) { b.Request.To = "BR" }),
			ok: false, reason: ReasonRoute, detail: "the parent took the data to BR; this transfer leaves from FR"},
		{name: "a parent of tier 2", setup: reparented(func(b *DecisionBlock) { b.Request.Tier = 2 }),
			ok: false, reason: ReasonTier, detail: "the parent is of tier 2"},
		{name: "the parent decided later", setup: reparented(func(b *DecisionBlock) { b.Request.At = t0 + 3*hour }),
			ok: false, reason: ReasonTime, detail: "after this transfer's time"},
		{name: "a wider purpose", setup: resale(func(w *world) { w.req.Purpose = "identity-verification" }),
			ok: false, reason: ReasonPurpose, detail: `purpose "identity-verification" is not the parent's purpose "research"`},
		{name: "more categories", setup: resale(func(w *world) { w.req.Categories = []string{"face", "fingerprint"} }),
			ok: false, reason: ReasonCategory, detail: "categories [fingerprint] are not among the parent's categories [face]"},
		{name: "kept longer", setup: resale(func(w *world) { w.req.RetentionDays = 30 }),
			ok: false, reason: ReasonRetention, detail: "after the parent's retention ends"},
		{name: "kept exactly as long", setup: resale(func(w *world) { w.req.At, w.req.RetentionDays = t0+hour+day, 29 }), ok: true},
		{name: "the consent not held", setup: resale(func(w *world) { w.v.forget(w.cons) }), ok: false, reason: ReasonConsentNotHeld},
	})
}

// TestDecideLineageThreeTiers: a tier-3 decision over a chain of two
// allowed ancestors passes every check; a denied ancestor in the middle
// denies it, on lineage.parent.
func TestDecideLineageThreeTiers(t *testing.T) {
	w := newResaleWorld(t)
	receipts := w.chainTo(3)
	d := w.decide()
	if !d.Allowed() {
		t.Fatalf("tier 3: %+v", d.Failed())
	}
	if c := checkOf(d, CheckLineageParent); !c.Evidence.Equals(receipts[1].CID()) {
		t.Errorf("lineage.parent evidence %v, want the tier-2 receipt", c.Evidence)
	}

	w = newResaleWorld(t)
	r1, _, _ := w.signDecision(w.requestAt(1, nil), nodeDE, nil)
	tier2 := w.requestAt(2, &DecisionRef{Receipt: LinkTo(r1.CID())})
	tier2.Purpose = "identity-verification" // wider than its parent's: denied
	r2, blk2, _ := w.signDecision(tier2, nodeDE, nil)
	if c := checkOf(&Decision{Checks: blk2.Checks}, CheckLineageParent); c.OK || c.Reason != ReasonPurpose {
		t.Fatalf("the wider tier-2 resale: %+v", c)
	}
	w.req = w.requestAt(3, &DecisionRef{Receipt: LinkTo(r2.CID())})
	w.req.Purpose = "identity-verification"
	if c := checkOf(w.decide(), CheckLineageParent); c.OK || c.Reason != ReasonParentDenied {
		t.Errorf("tier 3 under a denied parent: %+v", c)
	}
}

// TestRetentionEndSaturates: no overflow, whatever a block says.
func TestRetentionEndSaturates(t *testing.T) {
	for _, r := range []TransferRequest{{At: 1 << 62, RetentionDays: 1 << 62}, {At: 1<<63 - 1, RetentionDays: 1}, {At: 0, RetentionDays: 1 << 62}} {
		if end := retentionEnd(&r); end < r.At {
			t.Errorf("at %d + %d days ends at %d", r.At, r.RetentionDays, end)
		}
	}
	if end := retentionEnd(&TransferRequest{At: 5, RetentionDays: 2}); end != 5+2*dayMillis {
		t.Errorf("end %d", end)
	}
}

// The lineage bundle: a tier-3 decision over the chain, its two
// ancestors' receipts in the node's log before it. mut, if not nil, may
// change an ancestor's block (by tier) before it is signed.
func newLineageFixture(t testing.TB, mut func(tier int, b *DecisionBlock)) *bundleFixture {
	t.Helper()
	w := newResaleWorld(t)
	f := &bundleFixture{t: t, w: w, log: &memLog{}}
	records := sortedByIssue(w.v.records)
	f.log.append(t, records...)
	var parent *DecisionRef
	for k := 1; k < 3; k++ {
		req := w.requestAt(k, parent)
		d, err := Decide(&req, w.v, w.engine)
		if err != nil || !d.Allowed() {
			t.Fatalf("tier %d: %v %+v", k, err, d)
		}
		blk := d.Block(req)
		if mut != nil {
			mut(k, blk)
		}
		enc, c, err := blk.Encode()
		if err != nil {
			t.Fatal(err)
		}
		head := f.log.head(t)
		r := mustSign(t, nodeDE, req.At, NewReceipt([]cid.Cid{c}, Checkpoint{Size: int64(head.Size), Root: head.Root[:]}))
		w.v.holdDecision(r, blk)
		f.log.append(t, r)
		f.records = append(f.records, r)
		f.lineage = append([][]byte{enc}, f.lineage...) // parent first
		parent = &DecisionRef{Receipt: LinkTo(r.CID())}
	}
	f.records = append(f.records, records...)
	w.req = w.requestAt(3, parent)
	f.receipt = f.signReceipt(nodeDE, func(*DecisionBlock) {})
	f.log.append(t, f.receipt)
	f.note = signTestCheckpoint(t, nodeDE, bundleFederation, f.log.head(t))
	f.trust = BundleTrust{Federation: bundleFederation, Authorities: w.v.authorities, FoundingNodes: w.v.founding}
	return f
}

func sortedByIssue(m map[cid.Cid]*Record) []*Record {
	var out []*Record
	for _, r := range m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Record) int {
		if a.IssuedAt() != b.IssuedAt() {
			return int(a.IssuedAt() - b.IssuedAt())
		}
		return strings.Compare(a.CID().KeyString(), b.CID().KeyString())
	})
	return out
}

// TestBundleLineage: a tier-3 bundle holds, with one lineage.ancestor
// step per ancestor, parent first; the ancestors' blocks, taken out,
// reordered or replaced, fail the step that should say so.
func TestBundleLineage(t *testing.T) {
	f := newLineageFixture(t, nil)
	rep := CheckBundleCAR(f.good(), f.trust)
	var depths []int
	for _, s := range rep.Steps {
		t.Logf("%-20s %d ok=%v %s", s.ID, s.Depth, s.OK, s.Detail)
		if s.ID == StepAncestor {
			depths = append(depths, s.Depth)
		}
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(depths, []int{1, 2}) {
		t.Errorf("ancestor steps at depths %v, want [1 2]", depths)
	}
	if a := stepOf(rep, StepAncestor); !strings.Contains(a.Detail, "tier 2 from FR to DE, ALLOW recomputed") {
		t.Errorf("depth 1: %s", a.Detail)
	}

	parentBlock, grandparentBlock := f.lineage[0], f.lineage[1]
	stray, _, err := baseDecision().Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		lineage [][]byte
		step    string
		want    string
	}{
		{"no lineage", nil, StepDecision, "lineage.parent: recomputed FAIL parent_not_held"},
		{"the grandparent left out", [][]byte{parentBlock}, StepAncestor, "depth 1"},
		{"the ancestors swapped", [][]byte{grandparentBlock, parentBlock}, StepAncestor, "the manifest lists"},
		{"an ancestor repeated", [][]byte{parentBlock, grandparentBlock, grandparentBlock}, StepCAR, "repeats block"},
		{"an extra ancestor", [][]byte{parentBlock, grandparentBlock, stray}, StepAncestor, "the manifest lists 3 ancestors' decisions, but the lineage ends at depth 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.lineage = c.lineage
			defer func() { f.lineage = [][]byte{parentBlock, grandparentBlock} }()
			rep := CheckBundleCAR(f.good(), f.trust)
			first, failed := rep.FirstFailure()
			if !failed || first.ID != c.step || !strings.Contains(first.Detail, c.want) {
				t.Errorf("first failure %s %q, want %s with %q", first.ID, first.Detail, c.step, c.want)
			}
		})
	}
}

// TestBundleLineageRecomputesAncestors: an ancestor its node signed with
// evidence its records do not give fails its own step, at its depth, while
// the decision it allowed still recomputes.
func TestBundleLineageRecomputesAncestors(t *testing.T) {
	f := newLineageFixture(t, func(tier int, b *DecisionBlock) {
		if tier == 1 { // the grandparent claims one record less
			b.Evidence = b.Evidence[1:]
		}
	})
	rep := CheckBundleCAR(f.good(), f.trust)
	first, failed := rep.FirstFailure()
	if !failed || first.ID != StepAncestor || first.Depth != 2 || !strings.Contains(first.Detail, "the evidence differs") {
		t.Fatalf("first failure %+v", first)
	}
	if s := stepOf(rep, StepDecision); !s.OK {
		t.Errorf("the tier-3 decision: %s", s.Detail)
	}
	// A byte of an ancestor's block changed: its CID no longer holds.
	car := f.good()
	at := strings.Index(string(car), string(f.lineage[1]))
	car[at+10] ^= 1
	if first, _ := CheckBundleCAR(car, f.trust).FirstFailure(); first.ID != StepBlocks || !strings.Contains(first.Detail, "block 5") {
		t.Errorf("a byte of the grandparent's block changed: %+v", first)
	}
}
