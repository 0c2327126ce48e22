package protocol

// Kind names a record kind (DESIGN.md §4).
type Kind string

// The record kinds of format version 1.
const (
	KindAccreditation Kind = "accreditation"
	KindRuleset       Kind = "ruleset"
	KindConsent       Kind = "consent"
	KindRevocation    Kind = "revocation"
	KindIncident      Kind = "incident"
	KindReceipt       Kind = "receipt"
)

// Kinds lists every record kind, in a fixed order.
var Kinds = []Kind{KindAccreditation, KindRuleset, KindConsent, KindRevocation, KindIncident, KindReceipt}

// Known reports whether k is a kind of this format version.
func (k Kind) Known() bool {
	switch k {
	case KindAccreditation, KindRuleset, KindConsent, KindRevocation, KindIncident, KindReceipt:
		return true
	}
	return false
}

// newBody returns an empty body of kind k, or nil for an unknown kind.
func newBody(k Kind) Body {
	switch k {
	case KindAccreditation:
		return &Accreditation{}
	case KindRuleset:
		return &Ruleset{}
	case KindConsent:
		return &Consent{}
	case KindRevocation:
		return &Revocation{}
	case KindIncident:
		return &Incident{}
	case KindReceipt:
		return &Receipt{}
	}
	return nil
}

// Role is a role an authority grants with an accreditation.
type Role string

// The roles of DESIGN.md §3.
const (
	RoleNode       Role = "node"
	RoleController Role = "controller"
	RoleRegulator  Role = "regulator"
	RoleAuditor    Role = "auditor"
)

// Severity is an incident severity, or a ruleset's blocking threshold.
type Severity string

// Severities, in increasing order. SeverityNone is only a threshold
// (block_on_incident = none never blocks), never an incident's severity.
const (
	SeverityNone     Severity = "none"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: none 0, low 1, medium 2, high 3, critical 4, and
// -1 for anything else.
func (s Severity) Rank() int {
	switch s {
	case SeverityNone:
		return 0
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return -1
}

// Incident statuses.
const (
	StatusOpen      = "open"
	StatusContained = "contained"
	StatusResolved  = "resolved"
)

// Traffic Light Protocol labels (TLP 2.0).
const (
	TLPClear       = "clear"
	TLPGreen       = "green"
	TLPAmber       = "amber"
	TLPAmberStrict = "amber+strict"
	TLPRed         = "red"
)

// Verdicts of a receipt.
const (
	VerdictAllow = "allow"
	VerdictDeny  = "deny"
)

// Biometric categories a consent may cover.
var BiometricCategories = []string{"derived", "face", "fingerprint", "gait", "iris", "voice"}

// Wildcard, in a destinations or origins list, stands for every jurisdiction.
const Wildcard = "*"
