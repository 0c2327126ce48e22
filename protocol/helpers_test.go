package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Deterministic test identities. Each key is the Ed25519 key whose 32-byte
// seed repeats one byte, so that other implementations can rebuild the
// golden vectors and the worked example of doc.go.
const (
	seedAuthorityDE  byte = 0x01
	seedAuthorityFR  byte = 0x02
	seedNodeDE       byte = 0x03
	seedControllerDE byte = 0x04
	seedRegulatorDE  byte = 0x05
	seedControllerFR byte = 0x06
	seedStranger     byte = 0x07
	seedFoundingDE   byte = 0x08
)

// seedKey returns the Ed25519 key whose seed is 32 copies of b.
func seedKey(b byte) crypto.PrivKey {
	return keyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func keyFromSeed(seed []byte) crypto.PrivKey {
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		panic(err)
	}
	return k
}

func seedID(b byte) peer.ID { return keyID(seedKey(b)) }

func keyID(k crypto.PrivKey) peer.ID {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(err)
	}
	return id
}

// t0 is the fixed time the test records are issued around:
// 2026-11-24T10:00:00Z.
var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixMilli()

const (
	minute = int64(60 * 1000)
	hour   = 60 * minute
	day    = 24 * hour
)

// fakeCID is a well-formed record ID for a record that does not exist.
func fakeCID(name string) cid.Cid { return RecordCID([]byte(name)) }

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// Base bodies: each is valid, and a fresh copy on every call so tests may
// mutate them.

func baseAccreditation() *Accreditation {
	return &Accreditation{
		Subject:      seedID(seedNodeDE).String(),
		Jurisdiction: "DE",
		Roles:        []Role{RoleNode},
		Name:         "BfDI federation node 1",
		ValidFrom:    t0 - 30*day,
		ValidUntil:   t0 + 365*day,
		Addrs:        []string{"/dns4/node1.bfdi.example/tcp/4101", "/ip4/127.0.0.1/tcp/4101"},
	}
}

func controllerAccreditation(subject peer.ID, jurisdiction string, from, until int64) *Accreditation {
	return &Accreditation{
		Subject:      subject.String(),
		Jurisdiction: jurisdiction,
		Roles:        []Role{RoleController},
		Name:         "Example Platform",
		ValidFrom:    from,
		ValidUntil:   until,
	}
}

func baseRules() Rules {
	return Rules{
		MaxTier:            2,
		ProhibitedPurposes: []string{"law-enforcement", "mass-surveillance"},
		MaxRetentionDays:   365,
		BlockOnIncident:    SeverityHigh,
		Conditions: []Condition{{
			ID:          "tier-within-consent",
			Description: "The transfer's tier is within the consent's.",
			Expr:        "transfer.tier <= consent.max_tier",
		}},
	}
}

func baseRuleset() *Ruleset {
	return &Ruleset{
		Jurisdiction:  "DE",
		Version:       2,
		EffectiveFrom: t0 - day,
		Supersedes:    LinkPtr(fakeCID("ruleset DE v1")),
		Export:        ExportRules{Destinations: []string{"BR", "FR"}, Rules: baseRules()},
		Import:        ImportRules{Origins: []string{"*"}, Rules: baseRules()},
	}
}

func baseConsent() *Consent {
	return &Consent{
		Subject:       sha("platform key / person 1"),
		Jurisdiction:  "DE",
		Categories:    []string{"face", "fingerprint"},
		Purposes:      []string{"identity-verification", "research"},
		MaxTier:       1,
		Destinations:  []string{"BR", "FR"},
		RetentionDays: 90,
		ExpiresAt:     t0 + 365*day,
		Method:        "in-app explicit opt-in, form v3",
	}
}

func baseRevocation() *Revocation {
	return &Revocation{
		Target:      LinkTo(fakeCID("a consent")),
		Reason:      "The data subject withdrew consent.",
		EffectiveAt: t0 + hour,
	}
}

func baseIncident() *Incident {
	return &Incident{
		Ref:          "DE-2026-0042",
		Jurisdiction: "DE",
		Severity:     SeverityHigh,
		Status:       StatusContained,
		TLP:          TLPRed,
		Affected:     []string{seedID(seedControllerDE).String()},
		Categories:   []string{"face"},
		DetectedAt:   t0 - 2*hour,
		Summary:      "Face templates exposed through a misconfigured bucket.\nAccess closed.",
		Follows:      LinkPtr(fakeCID("incident DE-2026-0042 first notice")),
		Recipients:   []string{"DE", "FR"},
	}
}

func baseRequest() TransferRequest {
	return TransferRequest{
		Consent:       LinkTo(fakeCID("a consent")),
		From:          "DE",
		To:            "FR",
		Sender:        seedID(seedControllerDE).String(),
		Recipient:     seedID(seedControllerFR).String(),
		Purpose:       "research",
		Categories:    []string{"face"},
		Tier:          1,
		RetentionDays: 30,
		At:            t0 + 2*hour,
	}
}

// baseDecision is a valid decision block: an allow, three checks.
func baseDecision() *DecisionBlock {
	consent := fakeCID("a consent")
	acc := fakeCID("an accreditation")
	ev := []Link{LinkTo(consent), LinkTo(acc)}
	if string(ev[0].Bytes()) > string(ev[1].Bytes()) {
		ev[0], ev[1] = ev[1], ev[0]
	}
	return &DecisionBlock{
		Request: baseRequest(),
		Verdict: VerdictAllow,
		Checks: []Check{
			{ID: "consent.known", OK: true, Evidence: LinkPtr(consent), Detail: "held"},
			{ID: "consent.issuer", OK: true, Evidence: LinkPtr(acc), Detail: ""},
			{ID: "consent.live", OK: true, Detail: "not revoked, not superseded, not expired"},
		},
		Evidence: ev,
	}
}

// baseReceipt is a valid receipt of two decisions.
func baseReceipt() *Receipt {
	return NewReceipt([]cid.Cid{fakeCID("decision 0"), fakeCID("decision 1")}, Checkpoint{Size: 42, Root: sha("tree of 42")})
}

// mustSign signs body with key at issuedAt, failing the test on error.
func mustSign(t testing.TB, key crypto.PrivKey, issuedAt int64, body Body) *Record {
	t.Helper()
	r, err := Sign(key, issuedAt, body)
	if err != nil {
		t.Fatalf("sign %s: %v", body.Kind(), err)
	}
	return r
}
