package protocol

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mr-tron/base58"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/entente-net/entente/protocol/signature"
)

// Limits on free-text fields, in bytes.
const (
	maxNameLen    = 256
	maxTokenLen   = 128
	maxTextLen    = 8 << 10
	maxSubjectLen = 32
)

// ValidJurisdiction reports whether s is an upper-case ISO 3166-1 alpha-2
// shaped code.
func ValidJurisdiction(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// ed25519PeerIDPrefix starts the canonical (base58btc) string of every
// Ed25519 peer ID: an identity multihash of the key's 36-byte protobuf.
const ed25519PeerIDPrefix = "12D3KooW"

// ParsePeerID parses an identity in its canonical string form and checks
// that it names an Ed25519 key, whose public key it embeds.
func ParsePeerID(s string) (peer.ID, error) {
	if id, ok := parsedIDs.get(s); ok {
		return id, nil
	}
	id, err := parsePeerID(s)
	if err == nil {
		parsedIDs.add(s, id)
	}
	return id, err
}

// parsedIDs remembers the identities ParsePeerID parsed last: a
// federation has few issuers, every record names one, and base58 is slow
// to decode (a few µs, a good part of a record's decoding).
var parsedIDs = newMemo[string, peer.ID](4096)

// idString is id.String(), memoised: the inverse of ParsePeerID, as slow.
func idString(id peer.ID) string {
	if s, ok := idStrings.get(id); ok {
		return s
	}
	s := id.String()
	idStrings.add(id, s)
	return s
}

var idStrings = newMemo[peer.ID, string](4096)

func parsePeerID(s string) (peer.ID, error) {
	if !strings.HasPrefix(s, ed25519PeerIDPrefix) {
		// The CIDv1 form (bafz...) and other key types are refused;
		// base58btc is a bijection, so a string that decodes is canonical.
		return "", fmt.Errorf("not an Ed25519 peer ID in canonical form (12D3KooW...): %q", s)
	}
	// The form libp2p gives every Ed25519 key (see ed25519Key) is taken as
	// it is; any other bytes go through libp2p, which refuses them or
	// (for some other encoding of an Ed25519 key) accepts them, so the
	// answer is libp2p's either way. This spares a multihash parse and a
	// protobuf decode of the key, and their allocations, per new identity.
	if b, err := base58.Decode(s); err == nil && len(b) == len(ed25519IDPrefix)+signature.PublicKeySize && string(b[:len(ed25519IDPrefix)]) == ed25519IDPrefix {
		return peer.ID(b), nil
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("not a peer ID: %w", err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return "", fmt.Errorf("peer ID does not embed its public key: %w", err)
	}
	if pub.Type() != crypto.Ed25519 {
		return "", fmt.Errorf("peer ID is not an Ed25519 key")
	}
	return id, nil
}

// ed25519IDPrefix leads the ID libp2p makes of an Ed25519 key: an
// identity multihash (0x00, length 36) of the key's protobuf (field 1,
// type 1: Ed25519; field 2, 32 bytes: the key).
const ed25519IDPrefix = "\x00\x24\x08\x01\x12\x20"

// ed25519Key returns the public key an Ed25519 peer ID embeds: in the form
// libp2p makes, read without unmarshalling; any other form goes through
// libp2p.
func ed25519Key(id peer.ID) ([]byte, bool) {
	if len(id) == len(ed25519IDPrefix)+signature.PublicKeySize && string(id[:len(ed25519IDPrefix)]) == ed25519IDPrefix {
		return []byte(id[len(ed25519IDPrefix):]), true
	}
	pub, err := id.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return nil, false
	}
	raw, err := pub.Raw()
	return raw, err == nil && len(raw) == signature.PublicKeySize
}

func checkJurisdiction(field, s string) error {
	if !ValidJurisdiction(s) {
		return invalid(field, "%q is not an upper-case ISO 3166-1 alpha-2 code", s)
	}
	return nil
}

func checkPeerID(field, s string) error {
	if _, err := ParsePeerID(s); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// checkText accepts non-empty printable UTF-8 up to max bytes (newlines and
// tabs allowed only when multiline).
func checkText(field, s string, max int, multiline bool) error {
	if s == "" {
		return invalid(field, "must not be empty")
	}
	if len(s) > max {
		return invalid(field, "longer than %d bytes", max)
	}
	// Not r == utf8.RuneError in the loop: that also refuses a genuine,
	// printable U+FFFD.
	if !utf8.ValidString(s) {
		return invalid(field, "not valid UTF-8")
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if !unicode.IsPrint(r) {
			return invalid(field, "contains a control character")
		}
	}
	return nil
}

// checkToken accepts short identifiers such as purposes: lower-case ASCII
// letters, digits and "-_.:/".
func checkToken(field, s string) error {
	if s == "" {
		return invalid(field, "must not be empty")
	}
	if len(s) > maxTokenLen {
		return invalid(field, "longer than %d bytes", maxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strings.IndexByte("-_.:/", c) >= 0 {
			continue
		}
		return invalid(field, "%q: use lower-case letters, digits and -_.:/ only", s)
	}
	return nil
}

// checkSet checks that a list is sorted, without duplicates, and that each
// element passes elem.
func checkSet[T ~string](field string, list []T, elem func(field string, s T) error) error {
	at := func(i int) string { return fmt.Sprintf("%s[%d]", field, i) } // only on failure: it costs more than the checks
	for i, s := range list {
		if elem != nil && elem(field, s) != nil {
			return elem(at(i), s) // the same check again (each is pure), naming the element
		}
		if i > 0 && list[i-1] >= s {
			if list[i-1] == s {
				return invalid(at(i), "duplicate %q in a set", s)
			}
			return invalid(at(i), "set not sorted: %q after %q", s, list[i-1])
		}
	}
	return nil
}

func nonEmpty[T any](field string, list []T) error {
	if len(list) == 0 {
		return invalid(field, "must not be empty")
	}
	return nil
}

func oneOf[T ~string](field string, s T, allowed ...T) error {
	if slices.Contains(allowed, s) {
		return nil
	}
	return invalid(field, "%q is not one of %v", s, allowed)
}

func nonNegative(field string, n int64) error {
	if n < 0 {
		return invalid(field, "must not be negative")
	}
	return nil
}

func checkLink(field string, l Link) error {
	if !IsRecordID(l.Cid) {
		return invalid(field, "not a record ID (want CIDv1, dag-cbor, sha2-256)")
	}
	return nil
}

func checkOptLink(field string, l *Link) error {
	if l == nil {
		return nil
	}
	return checkLink(field, *l)
}

func jurisdictionOrWildcard(field, s string) error {
	if s == Wildcard {
		return nil
	}
	return checkJurisdiction(field, s)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *Accreditation) validate() error {
	if err := firstErr(
		checkPeerID("body.subject", a.Subject),
		checkJurisdiction("body.jurisdiction", a.Jurisdiction),
		nonEmpty("body.roles", a.Roles),
		checkSet("body.roles", a.Roles, func(f string, r Role) error {
			return oneOf(f, r, RoleAuditor, RoleController, RoleNode, RoleRegulator)
		}),
		checkText("body.name", a.Name, maxNameLen, false),
		nonNegative("body.valid_from", a.ValidFrom),
	); err != nil {
		return err
	}
	if a.ValidUntil <= a.ValidFrom {
		return invalid("body.valid_until", "must be later than valid_from")
	}
	return checkSet("body.addrs", a.Addrs, func(f, s string) error {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return invalid(f, "not a multiaddr: %v", err)
		}
		return nil
	})
}

func (r *Ruleset) validate() error {
	if err := firstErr(
		checkJurisdiction("body.jurisdiction", r.Jurisdiction),
		nonNegative("body.effective_from", r.EffectiveFrom),
		checkOptLink("body.supersedes", r.Supersedes),
		checkSet("body.export.destinations", r.Export.Destinations, jurisdictionOrWildcard),
		r.Export.Rules.validate("body.export"),
		checkSet("body.import.origins", r.Import.Origins, jurisdictionOrWildcard),
		r.Import.Rules.validate("body.import"),
	); err != nil {
		return err
	}
	if r.Version <= 0 {
		return invalid("body.version", "must be positive")
	}
	return nil
}

func (r *Rules) validate(field string) error {
	if err := firstErr(
		nonNegative(field+".max_tier", r.MaxTier),
		checkSet(field+".prohibited_purposes", r.ProhibitedPurposes, checkToken),
		nonNegative(field+".max_retention_days", r.MaxRetentionDays),
		oneOf(field+".block_on_incident", r.BlockOnIncident, SeverityNone, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical),
	); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, c := range r.Conditions {
		f := fmt.Sprintf("%s.conditions[%d]", field, i)
		if err := firstErr(
			checkToken(f+".id", c.ID),
			checkText(f+".description", c.Description, maxTextLen, true),
			checkText(f+".expr", c.Expr, maxTextLen, true),
		); err != nil {
			return err
		}
		if seen[c.ID] {
			return invalid(f+".id", "duplicate condition id %q", c.ID)
		}
		seen[c.ID] = true
		// Type-checked at decode, so that no node holds a ruleset whose
		// conditions it cannot evaluate (docs/rules.md).
		if _, err := CompileCondition(c.Expr); err != nil {
			return invalid(f+".expr", "condition %q %v", c.ID, err)
		}
	}
	return nil
}

func (c *Consent) validate() error {
	if len(c.Subject) != maxSubjectLen {
		return invalid("body.subject", "must be %d bytes (a keyed hash of the person), not %d", maxSubjectLen, len(c.Subject))
	}
	return firstErr(
		checkJurisdiction("body.jurisdiction", c.Jurisdiction),
		nonEmpty("body.categories", c.Categories),
		checkSet("body.categories", c.Categories, func(f, s string) error { return oneOf(f, s, BiometricCategories...) }),
		nonEmpty("body.purposes", c.Purposes),
		checkSet("body.purposes", c.Purposes, checkToken),
		nonNegative("body.max_tier", c.MaxTier),
		checkSet("body.destinations", c.Destinations, jurisdictionOrWildcard),
		nonNegative("body.retention_days", c.RetentionDays),
		nonNegative("body.expires_at", c.ExpiresAt),
		checkText("body.method", c.Method, maxNameLen, false),
		checkOptLink("body.supersedes", c.Supersedes),
	)
}

func (r *Revocation) validate() error {
	return firstErr(
		checkLink("body.target", r.Target),
		checkText("body.reason", r.Reason, maxTextLen, true),
		nonNegative("body.effective_at", r.EffectiveAt),
	)
}

func (n *Incident) validate() error {
	if err := firstErr(
		checkText("body.ref", n.Ref, maxNameLen, false),
		checkJurisdiction("body.jurisdiction", n.Jurisdiction),
		oneOf("body.severity", n.Severity, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical),
		oneOf("body.status", n.Status, StatusOpen, StatusContained, StatusResolved),
		oneOf("body.tlp", n.TLP, TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed),
		checkSet("body.affected", n.Affected, checkPeerID),
		checkSet("body.categories", n.Categories, checkToken),
		nonNegative("body.detected_at", n.DetectedAt),
		checkText("body.summary", n.Summary, maxTextLen, true),
		checkOptLink("body.follows", n.Follows),
	); err != nil {
		return err
	}
	if n.TLP == TLPRed {
		return firstErr(
			nonEmpty("body.recipients", n.Recipients),
			checkSet("body.recipients", n.Recipients, checkJurisdiction),
		)
	}
	if len(n.Recipients) > 0 {
		return invalid("body.recipients", "only allowed when tlp is red")
	}
	return nil
}

func (r *Receipt) validate() error {
	if len(r.Decisions) == 0 || len(r.Decisions) > MaxDecisions {
		return invalid("body.decisions", "a receipt signs 1 to %d decisions, not %d", MaxDecisions, len(r.Decisions))
	}
	for i, l := range r.Decisions {
		if err := checkLink(fmt.Sprintf("body.decisions[%d]", i), l); err != nil {
			return err
		}
	}
	if err := nonNegative("body.checkpoint.size", r.Checkpoint.Size); err != nil {
		return err
	}
	if len(r.Checkpoint.Root) != 32 {
		return invalid("body.checkpoint.root", "must be a 32-byte SHA-256 tree hash")
	}
	return nil
}

// validate checks a decision block (field paths start at f).
func (b *DecisionBlock) validate(f string) error {
	if err := firstErr(
		b.Request.Validate(f+".request"),
		oneOf(f+".verdict", b.Verdict, VerdictAllow, VerdictDeny),
		nonEmpty(f+".checks", b.Checks),
	); err != nil {
		return err
	}
	allOK := true
	for i, c := range b.Checks {
		cf := fmt.Sprintf("%s.checks[%d]", f, i)
		if err := firstErr(
			checkToken(cf+".id", c.ID),
			checkOptLink(cf+".evidence", c.Evidence),
		); err != nil {
			return err
		}
		if len(c.Detail) > maxTextLen {
			return invalid(cf+".detail", "longer than %d bytes", maxTextLen)
		}
		switch {
		case c.OK && c.Reason != "":
			return invalid(cf+".reason", "a check that passed has no reason")
		case !c.OK && c.Reason == "":
			return invalid(cf+".reason", "a failing check names its reason")
		case c.Reason != "" && !validReason(c.ID, c.Reason):
			return invalid(cf+".reason", "%q is not a reason %s fails with", c.Reason, c.ID)
		}
		allOK = allOK && c.OK
	}
	if (b.Verdict == VerdictAllow) != allOK {
		return invalid(f+".verdict", "%q does not follow from the checks", b.Verdict)
	}
	for i, l := range b.Evidence {
		ef := fmt.Sprintf("%s.evidence[%d]", f, i)
		if err := checkLink(ef, l); err != nil {
			return err
		}
		if i > 0 && string(b.Evidence[i-1].Bytes()) >= string(l.Bytes()) {
			return invalid(ef, "evidence must be sorted by binary CID, without duplicates")
		}
	}
	return nil
}

// Validate checks a transfer request's fields; field prefixes error paths.
func (t *TransferRequest) Validate(field string) error {
	p := func(s string) string { return joinPath(field, s) }
	return firstErr(
		checkLink(p("consent"), t.Consent),
		checkJurisdiction(p("from"), t.From),
		checkJurisdiction(p("to"), t.To),
		checkPeerID(p("sender"), t.Sender),
		checkPeerID(p("recipient"), t.Recipient),
		checkToken(p("purpose"), t.Purpose),
		nonEmpty(p("categories"), t.Categories),
		checkSet(p("categories"), t.Categories, func(f, s string) error { return oneOf(f, s, BiometricCategories...) }),
		nonNegative(p("tier"), t.Tier),
		nonNegative(p("retention_days"), t.RetentionDays),
		nonNegative(p("at"), t.At),
		t.Parent.validate(p("parent")),
	)
}

// validate checks a parent reference; a nil one is valid (none).
func (r *DecisionRef) validate(field string) error {
	if r == nil {
		return nil
	}
	if err := checkLink(joinPath(field, "receipt"), r.Receipt); err != nil {
		return err
	}
	if r.Item < 0 || r.Item >= MaxDecisions {
		return invalid(joinPath(field, "item"), "%d: a receipt's decisions are numbered 0 to %d", r.Item, MaxDecisions-1)
	}
	return nil
}
