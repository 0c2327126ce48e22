package protocol

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/entente-net/entente/protocol/signature"
)

// bodyCase mutates a valid base body; code "" means the result is valid.
type bodyCase[B Body] struct {
	name  string
	mut   func(b B)
	code  Code
	field string
}

// runBodyCases checks each mutation of base through both ways a body
// reaches validation: Sign, and DecodeBody of its encoding. Both must
// agree on the code and the field path.
func runBodyCases[B Body](t *testing.T, base func() B, cases []bodyCase[B]) {
	t.Helper()
	cases = append([]bodyCase[B]{{name: "base", mut: func(B) {}}}, cases...)
	key := seedKey(seedAuthorityDE)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.mut(b)
			_, err := Sign(key, t0, b)
			checkErr(t, "Sign", err, tc.code, tc.field)

			enc, merr := encMode.Marshal(b)
			if merr != nil {
				// Only an undefined link cannot be encoded at all.
				if tc.code != CodeInvalidBody {
					t.Fatalf("encode: %v", merr)
				}
				return
			}
			_, err = DecodeBody(b.Kind(), enc)
			checkErr(t, "DecodeBody", err, tc.code, tc.field)
		})
	}
}

func checkErr(t *testing.T, op string, err error, code Code, field string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s: %v, want success", op, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("%s succeeded, want %s at %q", op, code, field)
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("%s: %T %v, want *Error", op, err, err)
	}
	if e.Code != code || e.Field != field {
		t.Errorf("%s: %v\ngot code %q field %q, want %q %q", op, err, e.Code, e.Field, code, field)
	}
}

var (
	longName  = strings.Repeat("n", maxNameLen+1)
	longText  = strings.Repeat("t", maxTextLen+1)
	longToken = strings.Repeat("p", maxTokenLen+1)
	// cidV0 and rawCID are CIDs that are not record IDs.
	cidV0  = cid.NewCidV0(mustMultihash("v0"))
	rawCID = cid.NewCidV1(cid.Raw, mustMultihash("raw"))
)

func mustMultihash(s string) mh.Multihash {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return h
}

// secpID is a peer ID of a secp256k1 key: well-formed, but not Ed25519.
func secpID() string {
	k, err := crypto.UnmarshalSecp256k1PrivateKey(sha("secp256k1 key"))
	if err != nil {
		panic(err)
	}
	return keyID(k).String()
}

func TestValidateAccreditation(t *testing.T) {
	nodeID := seedID(seedNodeDE)
	runBodyCases(t, baseAccreditation, []bodyCase[*Accreditation]{
		{"no addrs", func(b *Accreditation) { b.Addrs = nil }, "", ""},
		{"all roles", func(b *Accreditation) { b.Roles = []Role{"auditor", "controller", "node", "regulator"} }, "", ""},
		{"subject not a peer ID", func(b *Accreditation) { b.Subject = "node-1" }, CodeInvalidBody, "body.subject"},
		{"subject empty", func(b *Accreditation) { b.Subject = "" }, CodeInvalidBody, "body.subject"},
		{"subject secp256k1", func(b *Accreditation) { b.Subject = secpID() }, CodeInvalidBody, "body.subject"},
		{"subject as a CID", func(b *Accreditation) { b.Subject = peer.ToCid(nodeID).String() }, CodeInvalidBody, "body.subject"},
		{"jurisdiction lower case", func(b *Accreditation) { b.Jurisdiction = "de" }, CodeInvalidBody, "body.jurisdiction"},
		{"jurisdiction alpha-3", func(b *Accreditation) { b.Jurisdiction = "DEU" }, CodeInvalidBody, "body.jurisdiction"},
		{"jurisdiction wildcard", func(b *Accreditation) { b.Jurisdiction = "*" }, CodeInvalidBody, "body.jurisdiction"},
		{"no roles", func(b *Accreditation) { b.Roles = nil }, CodeInvalidBody, "body.roles"},
		{"unknown role", func(b *Accreditation) { b.Roles = []Role{"admin"} }, CodeInvalidBody, "body.roles[0]"},
		{"role upper case", func(b *Accreditation) { b.Roles = []Role{"Node"} }, CodeInvalidBody, "body.roles[0]"},
		{"roles unsorted", func(b *Accreditation) { b.Roles = []Role{"node", "controller"} }, CodeInvalidBody, "body.roles[1]"},
		{"roles duplicate", func(b *Accreditation) { b.Roles = []Role{"node", "node"} }, CodeInvalidBody, "body.roles[1]"},
		{"name with U+FFFD", func(b *Accreditation) { b.Name = "Caf\ufffd \u00e9 \u4e2d" }, "", ""},
		{"name with a no-break space", func(b *Accreditation) { b.Name = "a\u00a0b" }, CodeInvalidBody, "body.name"},
		{"name empty", func(b *Accreditation) { b.Name = "" }, CodeInvalidBody, "body.name"},
		{"name too long", func(b *Accreditation) { b.Name = longName }, CodeInvalidBody, "body.name"},
		{"name two lines", func(b *Accreditation) { b.Name = "a\nb" }, CodeInvalidBody, "body.name"},
		{"valid_from negative", func(b *Accreditation) { b.ValidFrom = -1 }, CodeInvalidBody, "body.valid_from"},
		{"valid_until = valid_from", func(b *Accreditation) { b.ValidUntil = b.ValidFrom }, CodeInvalidBody, "body.valid_until"},
		{"valid_until before", func(b *Accreditation) { b.ValidUntil = b.ValidFrom - 1 }, CodeInvalidBody, "body.valid_until"},
		{"addr not a multiaddr", func(b *Accreditation) { b.Addrs = []string{"127.0.0.1:4101"} }, CodeInvalidBody, "body.addrs[0]"},
		{"addrs unsorted", func(b *Accreditation) { b.Addrs[0], b.Addrs[1] = b.Addrs[1], b.Addrs[0] }, CodeInvalidBody, "body.addrs[1]"},
		{"addrs duplicate", func(b *Accreditation) { b.Addrs[1] = b.Addrs[0] }, CodeInvalidBody, "body.addrs[1]"},
	})
}

func TestValidateRuleset(t *testing.T) {
	runBodyCases(t, baseRuleset, []bodyCase[*Ruleset]{
		{"first version", func(b *Ruleset) { b.Version, b.Supersedes = 1, nil }, "", ""},
		{"no conditions", func(b *Ruleset) { b.Export.Conditions, b.Import.Conditions = nil, nil }, "", ""},
		{"no destinations", func(b *Ruleset) { b.Export.Destinations = nil }, "", ""},
		{"multi-line expr", func(b *Ruleset) { b.Export.Conditions[0].Expr = "transfer.tier <= 1 ||\n\tconsent.max_tier >= 2" }, "", ""},
		{"block none", func(b *Ruleset) { b.Import.BlockOnIncident = SeverityNone }, "", ""},
		{"jurisdiction", func(b *Ruleset) { b.Jurisdiction = "" }, CodeInvalidBody, "body.jurisdiction"},
		{"version zero", func(b *Ruleset) { b.Version = 0 }, CodeInvalidBody, "body.version"},
		{"version negative", func(b *Ruleset) { b.Version = -3 }, CodeInvalidBody, "body.version"},
		{"effective_from negative", func(b *Ruleset) { b.EffectiveFrom = -1 }, CodeInvalidBody, "body.effective_from"},
		{"supersedes CIDv0", func(b *Ruleset) { b.Supersedes = LinkPtr(cidV0) }, CodeInvalidBody, "body.supersedes"},
		{"supersedes undefined", func(b *Ruleset) { b.Supersedes = &Link{} }, CodeInvalidBody, "body.supersedes"},
		{"destination lower case", func(b *Ruleset) { b.Export.Destinations = []string{"br"} }, CodeInvalidBody, "body.export.destinations[0]"},
		{"destinations unsorted", func(b *Ruleset) { b.Export.Destinations = []string{"FR", "BR"} }, CodeInvalidBody, "body.export.destinations[1]"},
		{"wildcard sorts first", func(b *Ruleset) { b.Export.Destinations = []string{"FR", "*"} }, CodeInvalidBody, "body.export.destinations[1]"},
		{"origin bad", func(b *Ruleset) { b.Import.Origins = []string{"*", "EU-27"} }, CodeInvalidBody, "body.import.origins[1]"},
		{"export max_tier", func(b *Ruleset) { b.Export.MaxTier = -1 }, CodeInvalidBody, "body.export.max_tier"},
		{"import max_tier", func(b *Ruleset) { b.Import.MaxTier = -1 }, CodeInvalidBody, "body.import.max_tier"},
		{"purpose not a token", func(b *Ruleset) { b.Export.ProhibitedPurposes = []string{"Mass Surveillance"} }, CodeInvalidBody, "body.export.prohibited_purposes[0]"},
		{"purposes duplicate", func(b *Ruleset) {
			b.Import.ProhibitedPurposes = []string{"law-enforcement", "law-enforcement"}
		}, CodeInvalidBody, "body.import.prohibited_purposes[1]"},
		{"retention", func(b *Ruleset) { b.Import.MaxRetentionDays = -1 }, CodeInvalidBody, "body.import.max_retention_days"},
		{"block_on_incident", func(b *Ruleset) { b.Export.BlockOnIncident = "severe" }, CodeInvalidBody, "body.export.block_on_incident"},
		{"block_on_incident empty", func(b *Ruleset) { b.Import.BlockOnIncident = "" }, CodeInvalidBody, "body.import.block_on_incident"},
		{"condition id empty", func(b *Ruleset) { b.Export.Conditions[0].ID = "" }, CodeInvalidBody, "body.export.conditions[0].id"},
		{"condition id duplicate", func(b *Ruleset) {
			b.Import.Conditions = append(b.Import.Conditions, b.Import.Conditions[0])
		}, CodeInvalidBody, "body.import.conditions[1].id"},
		{"condition description control", func(b *Ruleset) { b.Export.Conditions[0].Description = "bell\a" }, CodeInvalidBody, "body.export.conditions[0].description"},
		{"condition expr empty", func(b *Ruleset) { b.Export.Conditions[0].Expr = "" }, CodeInvalidBody, "body.export.conditions[0].expr"},
		{"condition expr too long", func(b *Ruleset) { b.Import.Conditions[0].Expr = longText }, CodeInvalidBody, "body.import.conditions[0].expr"},
	})
}

func TestValidateConsent(t *testing.T) {
	runBodyCases(t, baseConsent, []bodyCase[*Consent]{
		{"amendment", func(b *Consent) { b.Supersedes = LinkPtr(fakeCID("earlier consent")) }, "", ""},
		{"any destination", func(b *Consent) { b.Destinations = []string{"*"} }, "", ""},
		{"no destinations", func(b *Consent) { b.Destinations = nil }, "", ""},
		{"all categories", func(b *Consent) { b.Categories = append([]string(nil), BiometricCategories...) }, "", ""},
		{"subject short", func(b *Consent) { b.Subject = b.Subject[:31] }, CodeInvalidBody, "body.subject"},
		{"subject long", func(b *Consent) { b.Subject = append(b.Subject, 0) }, CodeInvalidBody, "body.subject"},
		{"subject empty", func(b *Consent) { b.Subject = nil }, CodeInvalidBody, "body.subject"},
		{"jurisdiction", func(b *Consent) { b.Jurisdiction = "De" }, CodeInvalidBody, "body.jurisdiction"},
		{"no categories", func(b *Consent) { b.Categories = nil }, CodeInvalidBody, "body.categories"},
		{"unknown category", func(b *Consent) { b.Categories = []string{"dna"} }, CodeInvalidBody, "body.categories[0]"},
		{"categories unsorted", func(b *Consent) { b.Categories = []string{"face", "derived"} }, CodeInvalidBody, "body.categories[1]"},
		{"no purposes", func(b *Consent) { b.Purposes = []string{} }, CodeInvalidBody, "body.purposes"},
		{"purposes duplicate", func(b *Consent) { b.Purposes = []string{"research", "research"} }, CodeInvalidBody, "body.purposes[1]"},
		{"purposes unsorted", func(b *Consent) { b.Purposes = []string{"research", "identity-verification"} }, CodeInvalidBody, "body.purposes[1]"},
		{"purpose upper case", func(b *Consent) { b.Purposes = []string{"Research"} }, CodeInvalidBody, "body.purposes[0]"},
		{"purpose too long", func(b *Consent) { b.Purposes = []string{longToken} }, CodeInvalidBody, "body.purposes[0]"},
		{"purpose empty", func(b *Consent) { b.Purposes = []string{""} }, CodeInvalidBody, "body.purposes[0]"},
		{"max_tier", func(b *Consent) { b.MaxTier = -1 }, CodeInvalidBody, "body.max_tier"},
		{"destination lower case", func(b *Consent) { b.Destinations = []string{"*", "fr"} }, CodeInvalidBody, "body.destinations[1]"},
		{"destinations duplicate", func(b *Consent) { b.Destinations = []string{"FR", "FR"} }, CodeInvalidBody, "body.destinations[1]"},
		{"retention_days", func(b *Consent) { b.RetentionDays = -1 }, CodeInvalidBody, "body.retention_days"},
		{"expires_at", func(b *Consent) { b.ExpiresAt = -1 }, CodeInvalidBody, "body.expires_at"},
		{"method empty", func(b *Consent) { b.Method = "" }, CodeInvalidBody, "body.method"},
		{"method too long", func(b *Consent) { b.Method = longName }, CodeInvalidBody, "body.method"},
		{"supersedes raw CID", func(b *Consent) { b.Supersedes = LinkPtr(rawCID) }, CodeInvalidBody, "body.supersedes"},
	})
}

func TestValidateRevocation(t *testing.T) {
	runBodyCases(t, baseRevocation, []bodyCase[*Revocation]{
		{"multi-line reason", func(b *Revocation) { b.Reason = "Withdrawn.\n\tBy letter of 2026-11-20." }, "", ""},
		{"effective at zero", func(b *Revocation) { b.EffectiveAt = 0 }, "", ""},
		{"target undefined", func(b *Revocation) { b.Target = Link{} }, CodeInvalidBody, "body.target"},
		{"target CIDv0", func(b *Revocation) { b.Target = LinkTo(cidV0) }, CodeInvalidBody, "body.target"},
		{"target raw", func(b *Revocation) { b.Target = LinkTo(rawCID) }, CodeInvalidBody, "body.target"},
		{"reason empty", func(b *Revocation) { b.Reason = "" }, CodeInvalidBody, "body.reason"},
		{"reason too long", func(b *Revocation) { b.Reason = longText }, CodeInvalidBody, "body.reason"},
		{"reason control", func(b *Revocation) { b.Reason = "a\x00b" }, CodeInvalidBody, "body.reason"},
		{"effective_at", func(b *Revocation) { b.EffectiveAt = -1 }, CodeInvalidBody, "body.effective_at"},
	})
}

func TestValidateIncident(t *testing.T) {
	ctrl, reg := seedID(seedControllerDE).String(), seedID(seedRegulatorDE).String()
	runBodyCases(t, baseIncident, []bodyCase[*Incident]{
		{"amber", func(b *Incident) { b.TLP, b.Recipients = TLPAmber, nil }, "", ""},
		{"amber+strict", func(b *Incident) { b.TLP, b.Recipients = TLPAmberStrict, nil }, "", ""},
		{"first notice", func(b *Incident) { b.Follows = nil }, "", ""},
		{"nobody affected", func(b *Incident) { b.Affected, b.Categories = nil, nil }, "", ""},
		{"ref empty", func(b *Incident) { b.Ref = "" }, CodeInvalidBody, "body.ref"},
		{"ref two lines", func(b *Incident) { b.Ref = "a\nb" }, CodeInvalidBody, "body.ref"},
		{"jurisdiction", func(b *Incident) { b.Jurisdiction = "D" }, CodeInvalidBody, "body.jurisdiction"},
		{"severity none", func(b *Incident) { b.Severity = SeverityNone }, CodeInvalidBody, "body.severity"},
		{"severity unknown", func(b *Incident) { b.Severity = "severe" }, CodeInvalidBody, "body.severity"},
		{"status", func(b *Incident) { b.Status = "closed" }, CodeInvalidBody, "body.status"},
		{"tlp white", func(b *Incident) { b.TLP = "white" }, CodeInvalidBody, "body.tlp"},
		{"tlp upper case", func(b *Incident) { b.TLP = "RED" }, CodeInvalidBody, "body.tlp"},
		{"affected not a peer ID", func(b *Incident) { b.Affected = []string{"acme"} }, CodeInvalidBody, "body.affected[0]"},
		{"affected duplicate", func(b *Incident) { b.Affected = []string{ctrl, ctrl} }, CodeInvalidBody, "body.affected[1]"},
		{"affected unsorted", func(b *Incident) {
			b.Affected = []string{max(ctrl, reg), min(ctrl, reg)}
		}, CodeInvalidBody, "body.affected[1]"},
		{"category not a token", func(b *Incident) { b.Categories = []string{"Face"} }, CodeInvalidBody, "body.categories[0]"},
		{"detected_at", func(b *Incident) { b.DetectedAt = -1 }, CodeInvalidBody, "body.detected_at"},
		{"summary empty", func(b *Incident) { b.Summary = "" }, CodeInvalidBody, "body.summary"},
		{"follows CIDv0", func(b *Incident) { b.Follows = LinkPtr(cidV0) }, CodeInvalidBody, "body.follows"},
		{"red without recipients", func(b *Incident) { b.Recipients = nil }, CodeInvalidBody, "body.recipients"},
		{"red recipient lower case", func(b *Incident) { b.Recipients = []string{"DE", "fr"} }, CodeInvalidBody, "body.recipients[1]"},
		{"red recipient wildcard", func(b *Incident) { b.Recipients = []string{"*"} }, CodeInvalidBody, "body.recipients[0]"},
		{"red recipients unsorted", func(b *Incident) { b.Recipients = []string{"FR", "DE"} }, CodeInvalidBody, "body.recipients[1]"},
		{"recipients when green", func(b *Incident) { b.TLP = TLPGreen }, CodeInvalidBody, "body.recipients"},
	})
}

func TestValidateDecisionBlock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mut   func(b *DecisionBlock)
		code  Code
		field string
	}{
		{"deny", func(b *DecisionBlock) {
			b.Verdict, b.Checks[2].OK, b.Checks[2].Reason = VerdictDeny, false, ReasonRevoked
		}, "", ""},
		{"deny without a reason", func(b *DecisionBlock) { b.Verdict, b.Checks[2].OK = VerdictDeny, false }, CodeInvalidBody, "decision.checks[2].reason"},
		{"no evidence", func(b *DecisionBlock) { b.Evidence = nil }, "", ""},
		{"request consent undefined", func(b *DecisionBlock) { b.Request.Consent = Link{} }, CodeInvalidBody, "decision.request.consent"},
		{"request consent CIDv0", func(b *DecisionBlock) { b.Request.Consent = LinkTo(cidV0) }, CodeInvalidBody, "decision.request.consent"},
		{"request from", func(b *DecisionBlock) { b.Request.From = "de" }, CodeInvalidBody, "decision.request.from"},
		{"request to wildcard", func(b *DecisionBlock) { b.Request.To = "*" }, CodeInvalidBody, "decision.request.to"},
		{"request recipient", func(b *DecisionBlock) { b.Request.Recipient = "acme" }, CodeInvalidBody, "decision.request.recipient"},
		{"request purpose", func(b *DecisionBlock) { b.Request.Purpose = "" }, CodeInvalidBody, "decision.request.purpose"},
		{"request no categories", func(b *DecisionBlock) { b.Request.Categories = nil }, CodeInvalidBody, "decision.request.categories"},
		{"request category", func(b *DecisionBlock) { b.Request.Categories = []string{"face", "palm"} }, CodeInvalidBody, "decision.request.categories[1]"},
		{"request tier", func(b *DecisionBlock) { b.Request.Tier = -1 }, CodeInvalidBody, "decision.request.tier"},
		{"request retention", func(b *DecisionBlock) { b.Request.RetentionDays = -1 }, CodeInvalidBody, "decision.request.retention_days"},
		{"request at", func(b *DecisionBlock) { b.Request.At = -1 }, CodeInvalidBody, "decision.request.at"},
		{"verdict unknown", func(b *DecisionBlock) { b.Verdict = "maybe" }, CodeInvalidBody, "decision.verdict"},
		{"allow despite failed check", func(b *DecisionBlock) {
			b.Checks[1].OK, b.Checks[1].Reason = false, ReasonNotAccreditedAtAt
		}, CodeInvalidBody, "decision.verdict"},
		{"deny with all checks ok", func(b *DecisionBlock) { b.Verdict = VerdictDeny }, CodeInvalidBody, "decision.verdict"},
		{"no checks", func(b *DecisionBlock) { b.Checks = nil }, CodeInvalidBody, "decision.checks"},
		{"check id", func(b *DecisionBlock) { b.Checks[1].ID = "Consent Issuer" }, CodeInvalidBody, "decision.checks[1].id"},
		{"check evidence", func(b *DecisionBlock) { b.Checks[0].Evidence = LinkPtr(rawCID) }, CodeInvalidBody, "decision.checks[0].evidence"},
		{"check detail too long", func(b *DecisionBlock) { b.Checks[2].Detail = longText }, CodeInvalidBody, "decision.checks[2].detail"},
		{"deny with a reason", func(b *DecisionBlock) {
			b.Verdict, b.Checks[2].OK, b.Checks[2].ID, b.Checks[2].Reason = VerdictDeny, false, CheckConsentLive, ReasonRevoked
		}, "", ""},
		{"reason on a check that passed", func(b *DecisionBlock) { b.Checks[2].ID, b.Checks[2].Reason = CheckConsentLive, ReasonRevoked }, CodeInvalidBody, "decision.checks[2].reason"},
		{"reason of another check", func(b *DecisionBlock) {
			b.Verdict, b.Checks[2].OK, b.Checks[2].ID, b.Checks[2].Reason = VerdictDeny, false, CheckConsentLive, ReasonPurpose
		}, CodeInvalidBody, "decision.checks[2].reason"},
		{"condition reason of a rules check", func(b *DecisionBlock) {
			b.Verdict, b.Checks[2].OK, b.Checks[2].ID, b.Checks[2].Reason = VerdictDeny, false, CheckExportRules, ReasonCondition+"no-iris"
		}, "", ""},
		{"condition reason elsewhere", func(b *DecisionBlock) {
			b.Verdict, b.Checks[2].OK, b.Checks[2].ID, b.Checks[2].Reason = VerdictDeny, false, CheckConsentScope, ReasonCondition+"no-iris"
		}, CodeInvalidBody, "decision.checks[2].reason"},
		{"evidence unsorted", func(b *DecisionBlock) { b.Evidence[0], b.Evidence[1] = b.Evidence[1], b.Evidence[0] }, CodeInvalidBody, "decision.evidence[1]"},
		{"evidence duplicate", func(b *DecisionBlock) { b.Evidence[1] = b.Evidence[0] }, CodeInvalidBody, "decision.evidence[1]"},
		{"evidence not a record ID", func(b *DecisionBlock) { b.Evidence = []Link{LinkTo(cidV0)} }, CodeInvalidBody, "decision.evidence[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := baseDecision()
			tc.mut(b)
			enc, _, err := b.Encode()
			checkErr(t, "Encode", err, tc.code, tc.field)
			if err != nil {
				if enc, err = encMode.Marshal(b); err != nil {
					return // an undefined link cannot be encoded at all
				}
			}
			_, err = DecodeDecisionBlock(enc)
			checkErr(t, "DecodeDecisionBlock", err, tc.code, tc.field)
		})
	}
}

func TestValidateReceipt(t *testing.T) {
	many := make([]cid.Cid, MaxDecisions+1)
	for i := range many {
		many[i] = fakeCID(fmt.Sprint(i))
	}
	runBodyCases(t, baseReceipt, []bodyCase[*Receipt]{
		{"one decision", func(b *Receipt) { b.Decisions = b.Decisions[:1] }, "", ""},
		{"the same decision twice", func(b *Receipt) { b.Decisions[1] = b.Decisions[0] }, "", ""},
		{"empty log", func(b *Receipt) { b.Checkpoint.Size = 0 }, "", ""},
		{"no decisions", func(b *Receipt) { b.Decisions = nil }, CodeInvalidBody, "body.decisions"},
		{"too many decisions", func(b *Receipt) { b.Decisions = NewReceipt(many, b.Checkpoint).Decisions }, CodeInvalidBody, "body.decisions"},
		{"decision not a record-style CID", func(b *Receipt) { b.Decisions[1] = LinkTo(cidV0) }, CodeInvalidBody, "body.decisions[1]"},
		{"checkpoint size", func(b *Receipt) { b.Checkpoint.Size = -1 }, CodeInvalidBody, "body.checkpoint.size"},
		{"checkpoint root short", func(b *Receipt) { b.Checkpoint.Root = b.Checkpoint.Root[:31] }, CodeInvalidBody, "body.checkpoint.root"},
		{"checkpoint root missing", func(b *Receipt) { b.Checkpoint.Root = nil }, CodeInvalidBody, "body.checkpoint.root"},
	})
}

// TestInvalidUTF8 shows the two places bad UTF-8 is caught: Sign's
// validation names the field; a decoder refuses the CBOR text string.
func TestInvalidUTF8(t *testing.T) {
	b := baseAccreditation()
	b.Name = "a\xffb"
	_, err := Sign(seedKey(seedAuthorityDE), t0, b)
	checkErr(t, "Sign", err, CodeInvalidBody, "body.name")
	enc, err := encMode.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodeBody(KindAccreditation, enc)
	checkErr(t, "DecodeBody", err, CodeMalformed, "body")
}

func TestTransferRequestValidate(t *testing.T) {
	r := baseRequest()
	if err := r.Validate(""); err != nil {
		t.Fatal(err)
	}
	r.To = "fr"
	checkErr(t, "Validate", r.Validate(""), CodeInvalidBody, "to")
	checkErr(t, "Validate", r.Validate("request"), CodeInvalidBody, "request.to")
}

// TestDecodeFieldPaths checks the field paths of errors found while
// decoding rather than validating: missing and unknown fields.
func TestDecodeFieldPaths(t *testing.T) {
	g := goldenRecords(t)
	tree := func(i int) cborMap { return clone(recordTree(g[i].rec)).(cborMap) }
	const acc, rules, rcpt = 0, 1, 5
	for _, tc := range []struct {
		name  string
		b     []byte
		code  Code
		field string
	}{
		{"missing v", treeEncode(tree(acc).del("v")), CodeMalformed, "v"},
		{"missing kind", treeEncode(tree(acc).del("kind")), CodeMalformed, "kind"},
		{"missing body", treeEncode(tree(acc).del("body")), CodeMalformed, "body"},
		{"missing body field", treeEncode(tree(acc).del("body.roles")), CodeMalformed, "body.roles"},
		{"missing nested", treeEncode(tree(rules).del("body.import.origins")), CodeMalformed, "body.import.origins"},
		{"missing in list item", func() []byte {
			m := tree(rules)
			conds := m.get("body.export.conditions").([]any)
			conds[0] = conds[0].(cborMap).del("expr")
			return treeEncode(m.set("body.export.conditions", conds))
		}(), CodeMalformed, "body.export.conditions[0].expr"},
		{"missing in nested map", treeEncode(tree(rcpt).del("body.checkpoint.root")), CodeMalformed, "body.checkpoint.root"},
		{"unknown in envelope", treeEncode(tree(acc).set("x", int64(1))), CodeMalformed, "x"},
		{"unknown in body", treeEncode(tree(acc).set("body.x", int64(1))), CodeMalformed, "body.x"},
		{"v", treeEncode(tree(acc).set("v", int64(0))), CodeMalformed, "v"},
		{"kind", treeEncode(tree(acc).set("kind", "Accreditation")), CodeUnknownKind, "kind"},
		{"issuer", treeEncode(tree(acc).set("issuer", secpID())), CodeMalformed, "issuer"},
		{"sig", treeEncode(tree(acc).set("sig", make([]byte, 65))), CodeMalformed, "sig"},
		{"non-canonical body", treeEncode(tree(rules).set("body.version", cborWideUint(2))), CodeNonCanonical, "body"},
		{"non-canonical envelope", treeEncode(tree(acc).set("issued_at", cborWideUint(1))), CodeNonCanonical, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b)
			checkErr(t, "Decode", err, tc.code, tc.field)
		})
	}
}

func TestSignRefuses(t *testing.T) {
	key := seedKey(seedAuthorityDE)
	if _, err := Sign(key, -1, baseAccreditation()); CodeOf(err) != CodeMalformed {
		t.Errorf("negative issued_at: %v, want malformed", err)
	}
	if _, err := Sign(key, t0, nil); err == nil {
		t.Error("nil body accepted")
	}
	secp, err := crypto.UnmarshalSecp256k1PrivateKey(sha("secp256k1 key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(secp, t0, baseAccreditation()); err == nil {
		t.Error("secp256k1 key accepted")
	}
	if _, err := Sign(nil, t0, baseAccreditation()); err == nil {
		t.Error("nil key accepted")
	}
	// A body within every field limit can still make a record too large.
	big := baseConsent()
	big.Purposes = nil
	for i := 0; len(big.Purposes)*maxTokenLen < MaxRecordSize; i++ {
		big.Purposes = append(big.Purposes, fmt.Sprintf("%05d-%s", i, strings.Repeat("p", maxTokenLen-6)))
	}
	_, err = Sign(key, t0, big)
	checkErr(t, "Sign", err, CodeTooLarge, "")
}

func TestSignDecodeRoundTrip(t *testing.T) {
	for _, g := range goldenRecords(t) {
		r := g.rec
		d, err := Parse(r.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if !d.CID().Equals(r.CID()) || !bytes.Equal(d.SigningInput(), r.SigningInput()) ||
			d.IssuedAt() != r.IssuedAt() || d.Issuer() != r.Issuer() || d.Kind() != r.Kind() ||
			!bytes.Equal(d.Signature(), r.Signature()) {
			t.Errorf("%s: decoded record differs from the signed one", g.name)
		}
		if !d.CID().Equals(RecordCID(r.Bytes())) {
			t.Errorf("%s: CID is not the hash of the bytes", g.name)
		}
		if s, err := ParseCID(d.CID().String()); err != nil || !s.Equals(d.CID()) {
			t.Errorf("%s: ParseCID(%s) = %v, %v", g.name, d.CID(), s, err)
		}
	}
	if _, err := ParseCID(cidV0.String()); err == nil {
		t.Error("ParseCID accepted a CIDv0")
	}
}

// TestSigningInputIsTheEncoding: the signing input cut from a record's
// bytes is the encoding of its map without sig, and the signature checks
// with and without a key cache agree on it.
func TestSigningInputIsTheEncoding(t *testing.T) {
	keys := signature.NewKeys(4)
	for _, g := range goldenRecords(t) {
		r := g.rec
		encoded, err := signingInput(&unsignedEnvelope{V: FormatVersion, Kind: r.kind, Issuer: r.issuer.String(), IssuedAt: r.issuedAt, Body: r.rawBody})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.SigningInput(), encoded) {
			t.Errorf("%s: signing input\n%x\nwant the encoding\n%x", g.name, r.SigningInput(), encoded)
		}
		for i := 0; i < 3; i++ {
			if err := r.VerifySignatureWith(keys); err != nil {
				t.Errorf("%s: VerifySignatureWith (call %d): %v", g.name, i+1, err)
			}
		}
		forged, err := Decode(flipSigBit(r.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if err := forged.VerifySignatureWith(keys); CodeOf(err) != CodeBadSignature {
			t.Errorf("%s: a changed signature with the key cache: %v, want bad_signature", g.name, err)
		}
	}
	if keys.Len() == 0 {
		t.Error("the key cache built no table for issuers that signed several records")
	}
}

// flipSigBit changes one bit of the signature in a record's bytes.
func flipSigBit(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(sigPrefix)+5] ^= 1
	return c
}

// TestLinkEncoding: a link encodes as the CBOR library encodes tag 42
// around a zero byte and the binary CID, whatever the CID's length.
func TestLinkEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 10, 20, 21, 22, 30, 100, 250, 253, 254, 300} {
		digest := bytes.Repeat([]byte{0xab}, n)
		h, err := mh.Encode(digest, mh.IDENTITY)
		if err != nil {
			t.Fatal(err)
		}
		l := LinkTo(cid.NewCidV1(cid.DagCBOR, h))
		got, err := l.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		want, err := encMode.Marshal(cbor.Tag{Number: tagCID, Content: append([]byte{0}, l.Bytes()...)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("a link of %d bytes encodes as\n%x\nwant\n%x", len(l.Bytes()), got, want)
		}
		var back Link
		if err := back.UnmarshalCBOR(got); err != nil || !back.Equals(l.Cid) {
			t.Fatalf("a link of %d bytes does not decode back: %v", len(l.Bytes()), err)
		}
	}
}

// TestRecordCIDIsMultihashSum: RecordCID is the CID go-multihash and
// go-cid make of the bytes.
func TestRecordCIDIsMultihashSum(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("record"), 1000)} {
		want, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := RecordCID(b); !got.Equals(want) {
			t.Fatalf("RecordCID of %d bytes = %s, go-cid makes %s", len(b), got, want)
		}
	}
}

// libp2pParsePeerID is parsePeerID without its fast path: libp2p decodes
// every ID.
func libp2pParsePeerID(s string) (peer.ID, bool) {
	if !strings.HasPrefix(s, ed25519PeerIDPrefix) {
		return "", false
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", false
	}
	pub, err := id.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return "", false
	}
	return id, true
}

// TestParsePeerIDMatchesLibp2p checks parsePeerID's fast path against
// libp2p's decoding on real IDs and on every one-character change,
// truncation and extension of one.
func TestParsePeerIDMatchesLibp2p(t *testing.T) {
	t.Parallel()
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	check := func(s string) {
		t.Helper()
		got, err := parsePeerID(s)
		want, ok := libp2pParsePeerID(s)
		if (err == nil) != ok || got != want {
			t.Fatalf("parsePeerID(%q) = %q, %v; libp2p: %q, %v", s, got, err, want, ok)
		}
	}
	for i := 0; i < 20; i++ {
		_, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		s := id.String()
		if got, err := parsePeerID(s); err != nil || got != id {
			t.Fatalf("parsePeerID(%s) = %q, %v", s, got, err)
		}
		for pos := 0; pos < len(s); pos++ {
			for _, c := range alphabet {
				check(s[:pos] + string(c) + s[pos+1:])
			}
			check(s[:pos])
		}
		check(s + "1")
		check(s + "z")
	}
}

// FuzzParsePeerID compares parsePeerID with libp2p's decoding.
func FuzzParsePeerID(f *testing.F) {
	f.Add("12D3KooWBnVnHMSzgV7QAAuYRrtgc3jCHKG1zdqq2uH5DxdL5n1h")
	f.Add("12D3KooW")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parsePeerID(s)
		want, ok := libp2pParsePeerID(s)
		if (err == nil) != ok || got != want {
			t.Fatalf("parsePeerID(%q) = %q, %v; libp2p: %q, %v", s, got, err, want, ok)
		}
	})
}

// offByUnusedBits is the text form c with the last character changed only
// in the bits base32 leaves unused: what a lenient decoder reads as c.
func offByUnusedBits(c string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	last := strings.IndexByte(alphabet, c[len(c)-1])
	return c[:len(c)-1] + string(alphabet[last^1])
}

// TestParseCIDOneTextForm: every spelling of a record ID but the
// canonical one is bad_cid — above all the one-character-off form that a
// lenient base32 decoder reads as the same CID.
func TestParseCIDOneTextForm(t *testing.T) {
	c := RecordCID([]byte("a record"))
	s := c.String()
	if got, err := ParseCID(s); err != nil || !got.Equals(c) {
		t.Fatalf("the canonical form: %v %v", got, err)
	}
	off := offByUnusedBits(s)
	if lenient, err := cid.Decode(off); err != nil || !lenient.Equals(c) {
		t.Fatalf("the test's premise: go-cid reads %s as %v (%v), not as %s", off, lenient, err, s)
	}
	b36, err := c.StringOfBase('k')
	if err != nil {
		t.Fatal(err)
	}
	for what, bad := range map[string]string{
		"unused bits set":        off,
		"upper case":             "B" + strings.ToUpper(s[1:]),
		"base36":                 b36,
		"base32 without padding": s[:len(s)-1],
		"empty":                  "",
		"CIDv0":                  cid.NewCidV0(c.Hash()).String(),
	} {
		if _, err := ParseCID(bad); CodeOf(err) != CodeBadCID {
			t.Errorf("%s (%q): %v, want bad_cid", what, bad, err)
		}
	}
}

// TestJSONLinksOneTextForm: a record or body file whose link is not the
// canonical text of a record ID is bad_cid, not the record it resembles.
func TestJSONLinksOneTextForm(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(goldenDir, "revocation.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := RecordFromJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	rv, _ := r.Revocation()
	s := rv.Target.Cid.String()
	if _, err := RecordFromJSON([]byte(strings.Replace(string(b), s, offByUnusedBits(s), 1))); CodeOf(err) != CodeBadCID {
		t.Errorf("a record with a stray link: %v", err)
	}
	body := `{"target":{"/":"` + offByUnusedBits(s) + `"},"reason":"x","effective_at":1}`
	if _, err := BodyFromJSON(KindRevocation, []byte(body)); CodeOf(err) != CodeBadCID || !strings.Contains(err.Error(), "target") {
		t.Errorf("a body with a stray link: %v", err)
	}
}
