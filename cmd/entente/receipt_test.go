package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
	"github.com/ipfs/go-cid"
)

// TestReceiptGetAndCheck: a receipt's bundle, downloaded with receipt
// get, passes every step of receipt check; changed, it fails and the
// error names the step.
func TestReceiptGetAndCheck(t *testing.T) {
	closeDefaultIdle(t)
	w := newTransferWorld(t)
	n, ctx, consent, recipient := w.Net, t.Context(), w.Consent, w.Recipient
	br := n.NodeOf("BR")
	v, err := br.Services().Verify.Verify(ctx, protocol.TransferRequest{Consent: protocol.LinkTo(consent.CID()), From: "DE", To: "BR", Sender: consent.Issuer().String(), Recipient: recipient.ID.String(),
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30})
	if err != nil || !v.Decision.Allowed() {
		t.Fatalf("verify: %v %+v", err, v)
	}
	receipt := v.Receipt.CID().String()

	dir := t.TempDir()
	file := filepath.Join(dir, "receipt.car")
	c := newCLI(t)
	c.env["ENTENTE_API_TOKEN"] = br.Token // the operator's: a bundle is for the parties, their regulators and the operator
	out := c.ok("receipt", "get", receipt, "--api", br.APIAddr(), "--out", file)
	if !strings.Contains(out, "the bundle of decision 0 of receipt "+receipt) || !strings.Contains(out, file) {
		t.Errorf("receipt get said:\n%s", out)
	}
	out = c.ok("receipt", "check", file, "--federation", n.FederationPath)
	for _, step := range []string{protocol.StepCAR, protocol.StepBlocks, protocol.StepManifest, protocol.StepRecords, protocol.StepReceiptIssuer,
		protocol.StepDecisionBlock, protocol.StepCheckpoint, protocol.StepInclusion, protocol.StepConsistency, protocol.StepEvidenceHeld, protocol.StepEvidenceAuthorized, protocol.StepDecision} {
		if !strings.Contains(out, "  pass  "+step+" ") {
			t.Errorf("no pass line for %s", step)
		}
	}
	if strings.Contains(out, "FAIL") || strings.Contains(out, "skip") {
		t.Errorf("a step did not hold:\n%s", out)
	}
	if !strings.Contains(out, "recomputed from the bundle: ALLOW") || strings.Count(out, "  pass  ") != 12+len(protocol.CheckIDs) {
		t.Errorf("the recomputed checks are not all shown:\n%s", out)
	}
	if !strings.Contains(out, "receipt     "+receipt) || !strings.Contains(out, "decision    0 of 1\n") || !strings.Contains(out, "verdict     ALLOW") {
		t.Errorf("the receipt is not named:\n%s", out)
	}
	// --item: the bundle must be of that decision; the node has no other.
	c.ok("receipt", "check", file, "--federation", n.FederationPath, "--item", "0")
	wantError(t, c.fails(1, "receipt", "check", file, "--federation", n.FederationPath, "--item", "1"), false, "is of decision 0 of receipt "+receipt+", not of decision 1")
	wantError(t, c.fails(1, "receipt", "get", receipt, "--api", br.APIAddr(), "--item", "1", "--out", filepath.Join(dir, "y.car")), false, "404 not_found")
	wantError(t, c.fails(2, "receipt", "get", receipt, "--api", br.APIAddr(), "--item", "-1", "--out", filepath.Join(dir, "y.car")), true, "--item -1")
	// RECEIPT:ITEM, as verify prints a decision: the same bundle; an item
	// there and another in --item is a mistake.
	byRef := filepath.Join(dir, "by-ref.car")
	if out := c.ok("receipt", "get", receipt+":0", "--api", br.APIAddr(), "--out", byRef); !strings.Contains(out, "the bundle of decision 0 of receipt "+receipt) {
		t.Errorf("receipt get %s:0 said:\n%s", receipt, out)
	}
	if got, err := os.ReadFile(byRef); err != nil {
		t.Error(err)
	} else if b, err := protocol.ReadBundle(got); err != nil || b.Root.String() != receipt {
		t.Errorf("receipt get %s:0 wrote no bundle of the receipt: %v", receipt, err)
	}
	c.ok("receipt", "get", receipt+":0", "--item", "0", "--api", br.APIAddr(), "--out", byRef)
	wantError(t, c.fails(1, "receipt", "get", receipt+":1", "--api", br.APIAddr(), "--out", filepath.Join(dir, "y.car")), false, "404 not_found")
	wantError(t, c.fails(2, "receipt", "get", receipt+":0", "--item", "1", "--api", br.APIAddr(), "--out", filepath.Join(dir, "y.car")), true, receipt+":0 names decision 0, --item 1")
	wantError(t, c.fails(2, "receipt", "get", receipt+":x", "--api", br.APIAddr(), "--out", filepath.Join(dir, "y.car")), true, `"x" is not a decision's index`)

	// --trust naming every jurisdiction is the whole file.
	out = c.ok("receipt", "check", file, "--federation", n.FederationPath, "--trust", "DE,FR,BR")
	if strings.Contains(out, "FAIL") {
		t.Errorf("--trust DE,FR,BR:\n%s", out)
	}
	// --out - writes the bundle to stdout.
	out = c.ok("receipt", "get", receipt, "--api", br.APIAddr(), "--out", "-")
	if b, err := protocol.ReadBundle([]byte(out)); err != nil || b.Root.String() != receipt {
		t.Errorf("--out -: %v", err)
	}

	// A byte of the consent changed: the block no longer matches its CID.
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(good), string(consent.Bytes()))
	if at < 0 {
		t.Fatal("the consent is not in the bundle")
	}
	bad := []byte(string(good))
	bad[at+20] ^= 0x01
	badFile := writeFile(t, dir, "tampered.car", string(bad), 0o644)
	r := c.fails(1, "receipt", "check", badFile, "--federation", n.FederationPath)
	wantError(t, r, false, "the bundle does not hold: "+protocol.StepBlocks+": ", consent.CID().String())
	if !strings.Contains(r.stdout, "  FAIL  "+protocol.StepBlocks) {
		t.Errorf("the failing step is not printed:\n%s", r.stdout)
	}

	// Another federation's file: the node is no member of it.
	other := &config.Federation{Name: "another-federation"}
	for _, j := range n.Federation.Jurisdictions {
		_, id := newKey(t)
		other.Jurisdictions = append(other.Jurisdictions, config.Jurisdiction{Code: j.Code, Name: j.Name, Authority: id.String()})
	}
	b, err := other.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	otherFile := writeFile(t, dir, "other.toml", string(b), 0o644)
	r = c.fails(1, "receipt", "check", file, "--federation", otherFile)
	wantError(t, r, true, "the bundle does not hold: "+protocol.StepReceiptIssuer+": ", "unauthorized_issuer")

	// Not a CAR at all.
	r = c.fails(1, "receipt", "check", writeFile(t, dir, "junk.car", "junk", 0o644), "--federation", n.FederationPath)
	wantError(t, r, false, "the bundle does not hold: "+protocol.StepCAR+": ")

	// Mistakes: no federation, no file, a CID that is not one, a record
	// that is no receipt.
	wantError(t, c.fails(2, "receipt", "check", file), true, "--federation is required")
	wantError(t, c.fails(2, "receipt", "check", "--federation", n.FederationPath), true, "bundle file")
	wantError(t, c.fails(2, "receipt", "check", file, "--federation", n.FederationPath, "--trust", "XX"), true, "--trust", "XX")
	wantError(t, c.fails(2, "receipt", "get", "bafy-not", "--api", br.APIAddr(), "--out", file), true, "bafy-not")
	wantError(t, c.fails(2, "receipt", "get", receipt, "--api", br.APIAddr()), true, "--out")
	c.env["ENTENTE_API_TOKEN"] = n.NodeOf("DE").Token
	r = c.fails(1, "receipt", "get", consent.CID().String(), "--api", n.NodeOf("DE").APIAddr(), "--out", filepath.Join(dir, "x.car"))
	wantError(t, r, false, "404 not_found", "not a receipt")
	if _, err := os.Stat(filepath.Join(dir, "x.car")); !os.IsNotExist(err) {
		t.Errorf("a failed get left a file: %v", err)
	}
}

func TestReceiptHelp(t *testing.T) {
	c := newCLI(t)
	out := c.ok("receipt", "--help")
	for _, sub := range []string{"receipt get", "receipt check"} {
		if !strings.Contains(out, sub) {
			t.Errorf("entente receipt --help does not list %q:\n%s", sub, out)
		}
	}
}

// TestReceiptCheckLineage: a tier-3 resale decided by the FR node, whose
// tier-2 parent the BR node decided over the DE node's tier-1 decision:
// the FR node fetches both ancestors from the other nodes, its bundle
// carries them, entente receipt check passes with a step per ancestor,
// and fails at the block's CID when a byte of an ancestor changes.
func TestReceiptCheckLineage(t *testing.T) {
	closeDefaultIdle(t)
	w := newTransferWorld(t)
	ctx := t.Context()
	fr := w.Net.NodeOf("FR")
	req := w.Request
	var receipts []cid.Cid
	for _, j := range []string{"DE", "BR", "FR"} {
		v, err := w.Net.NodeOf(j).Services().Verify.Verify(ctx, req)
		if err != nil || !v.Decision.Allowed() {
			t.Fatalf("tier %d on the %s node: %v %+v", req.Tier, j, err, v)
		}
		receipts = append(receipts, v.Receipt.CID())
		if j != "FR" {
			if req, err = w.NextTier(ctx, req, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range receipts[:2] {
		if held, _ := fr.Store().Has(c); !held {
			t.Errorf("the FR node did not fetch the ancestor %s", c)
		}
	}

	c := newCLI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "tier3.car")
	c.env["ENTENTE_API_TOKEN"] = fr.Token
	c.ok("receipt", "get", receipts[2].String(), "--api", fr.APIAddr(), "--out", file)
	out := c.ok("receipt", "check", file, "--federation", w.Net.FederationPath)
	for _, want := range []string{
		"pass  lineage.ancestor     depth 1, decision 0 of receipt " + receipts[1].String(), "tier 2 from BR to BR, ALLOW recomputed",
		"pass  lineage.ancestor     depth 2, decision 0 of receipt " + receipts[0].String(), "tier 1 from DE to BR, ALLOW recomputed",
		"pass  lineage.parent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("receipt check of the tier-3 bundle lacks %q:\n%s", want, out)
		}
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.ReadBundle(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{3, 4} { // the parent's and the grandparent's decision blocks
		bad := bytes.Clone(good)
		bad[bytes.Index(bad, b.Blocks[k].Data)+len(b.Blocks[k].Data)/2] ^= 1
		r := c.fails(1, "receipt", "check", writeFile(t, dir, fmt.Sprintf("bad%d.car", k), string(bad), 0o644), "--federation", w.Net.FederationPath)
		wantError(t, r, false, fmt.Sprintf("the bundle does not hold: %s: block %d: its bytes hash to", protocol.StepBlocks, k+1), b.Blocks[k].CID.String())
	}
}

// TestReceiptCheckWithheld: the platform's bundle of its decision
// withholds an amber notice naming the recipient, which the platform may
// not see; receipt check holds every step, shows incident.clear as
// withheld and exits 3.
func TestReceiptCheckWithheld(t *testing.T) {
	closeDefaultIdle(t)
	w := newTransferWorld(t)
	ctx := t.Context()
	de := w.Net.NodeOf("DE")
	reg, err := w.Net.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	notice, err := testnet.Sign(reg.Key, &protocol.Incident{Ref: "INC-1", Jurisdiction: "DE", Severity: protocol.SeverityLow, Status: protocol.StatusOpen,
		TLP: protocol.TLPAmber, Affected: []string{w.Recipient.ID.String()}, Categories: []string{"face"},
		DetectedAt: time.Now().Add(-time.Minute).UnixMilli(), Summary: "a low-severity exposure at the recipient"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Net.Submit(ctx, de, notice); err != nil {
		t.Fatal(err)
	}
	v, err := de.Services().Verify.Verify(ctx, w.Request)
	if err != nil || !v.Decision.Allowed() {
		t.Fatalf("verify: %v %+v", err, v)
	}
	token, err := de.Grant(ctx, "platform", protocol.RoleController, w.Platform.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.env["ENTENTE_API_TOKEN"] = token
	file := filepath.Join(t.TempDir(), "bundle.car")
	c.ok("receipt", "get", v.Receipt.CID().String(), "--api", de.APIAddr(), "--out", file)
	r := c.fails(exitWithheld, "receipt", "check", file, "--federation", w.Net.FederationPath)
	for _, want := range []string{"withheld  incident.clear", "  pass  decision.recomputed",
		"recomputed from the bundle without the withheld evidence: ALLOW (the signed verdict, ALLOW, stands unconfirmed)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("receipt check does not say %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "neither confirmed nor refuted") || strings.Contains(r.stdout, "FAIL") {
		t.Errorf("receipt check:\n%s\n%s", r.stdout, r.stderr)
	}
}

// TestLineageCommand: entente lineage prints a three-tier resale as a
// tree, tier under tier.
func TestLineageCommand(t *testing.T) {
	closeDefaultIdle(t)
	w := newTransferWorld(t)
	ctx := t.Context()
	de := w.Net.NodeOf("DE")
	tier3, err := w.Resale(ctx, de, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := de.Services().Verify.Verify(ctx, tier3); err != nil || !v.Decision.Allowed() {
		t.Fatalf("tier 3: %v %+v", err, v)
	}
	c := newCLI(t)
	c.env["ENTENTE_API_TOKEN"] = de.Token
	out := c.ok("lineage", w.Consent.CID().String(), "--api", de.APIAddr())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != "consent "+w.Consent.CID().String() {
		t.Fatalf("lineage printed:\n%s", out)
	}
	for i, want := range []string{"└─ tier 1  ALLOW  DE → BR", "   └─ tier 2  ALLOW  BR → BR", "      └─ tier 3  ALLOW  BR → BR"} {
		if !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("line %d is %q, want it to start %q", i+2, lines[i+1], want)
		}
	}
	wantError(t, c.fails(2, "lineage", tier3.Consent.String()+"x", "--api", de.APIAddr()), true, "not a record's CID")
	wantError(t, c.fails(2, "lineage", "--api", de.APIAddr()), true, "consent")
	wantError(t, c.fails(1, "lineage", tier3.Parent.Receipt.String(), "--api", de.APIAddr()), false, "404 not_found")
}

// TestPrintLineageNotified: a decision whose recipient was told of the
// consent's revocation says when, in the text as in --json.
func TestPrintLineageNotified(t *testing.T) {
	var b strings.Builder
	printLineage(&b, []*api.LineageNode{{Receipt: "bafyr1", Tier: 1, Verdict: "allow", From: "DE", To: "BR", At: "2026-12-06T05:00:00Z",
		Children: []*api.LineageNode{{Receipt: "bafyr2", Tier: 2, Verdict: "allow", From: "BR", To: "FR", At: "2026-12-06T05:01:00Z", NotifiedAt: "2026-12-06T05:02:00Z"}}}}, "")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], "notified") || !strings.HasSuffix(lines[1], "recipient notified 2026-12-06T05:02:00Z") {
		t.Errorf("lineage:\n%s", b.String())
	}
}
