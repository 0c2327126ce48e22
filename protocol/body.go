package protocol

// Body is the kind-specific part of a record. The concrete types are
// *Accreditation, *Ruleset, *Consent, *Revocation, *Incident and *Receipt.
type Body interface {
	// Kind is the kind of record the body belongs in.
	Kind() Kind
	// validate checks the body against its kind's schema and returns an
	// *Error with CodeInvalidBody naming the field.
	validate() error
}

// Accreditation grants roles to a key within the issuing authority's
// jurisdiction for a validity window.
type Accreditation struct {
	Subject      string   `cbor:"subject"`
	Jurisdiction string   `cbor:"jurisdiction"`
	Roles        []Role   `cbor:"roles"`
	Name         string   `cbor:"name"`
	ValidFrom    int64    `cbor:"valid_from"`
	ValidUntil   int64    `cbor:"valid_until"`
	Addrs        []string `cbor:"addrs,omitempty"`
}

// Ruleset is a jurisdiction's minimum standards for exports and imports.
type Ruleset struct {
	Jurisdiction  string      `cbor:"jurisdiction"`
	Version       int64       `cbor:"version"`
	EffectiveFrom int64       `cbor:"effective_from"`
	Supersedes    *Link       `cbor:"supersedes,omitempty"`
	Export        ExportRules `cbor:"export"`
	Import        ImportRules `cbor:"import"`
}

// Rules are the limits common to export and import rules.
type Rules struct {
	MaxTier            int64       `cbor:"max_tier"`
	ProhibitedPurposes []string    `cbor:"prohibited_purposes"`
	MaxRetentionDays   int64       `cbor:"max_retention_days"`
	BlockOnIncident    Severity    `cbor:"block_on_incident"`
	Conditions         []Condition `cbor:"conditions"`
}

// ExportRules govern data leaving the jurisdiction.
type ExportRules struct {
	Destinations []string `cbor:"destinations"`
	Rules
}

// ImportRules govern data arriving in the jurisdiction.
type ImportRules struct {
	Origins []string `cbor:"origins"`
	Rules
}

// Condition is a named CEL expression that must evaluate to true.
type Condition struct {
	ID          string `cbor:"id"`
	Description string `cbor:"description"`
	Expr        string `cbor:"expr"`
}

// Consent is a data subject's consent, attested by the collecting
// platform, to transfers of their biometric data.
type Consent struct {
	Subject       []byte   `cbor:"subject"`
	Jurisdiction  string   `cbor:"jurisdiction"`
	Categories    []string `cbor:"categories"`
	Purposes      []string `cbor:"purposes"`
	MaxTier       int64    `cbor:"max_tier"`
	Destinations  []string `cbor:"destinations"`
	RetentionDays int64    `cbor:"retention_days"`
	ExpiresAt     int64    `cbor:"expires_at"`
	Method        string   `cbor:"method"`
	Supersedes    *Link    `cbor:"supersedes,omitempty"`
}

// Revocation withdraws an earlier record from a time on.
type Revocation struct {
	Target      Link   `cbor:"target"`
	Reason      string `cbor:"reason"`
	EffectiveAt int64  `cbor:"effective_at"`
}

// Incident is a notice of a breach, suspension or other incident.
type Incident struct {
	Ref          string   `cbor:"ref"`
	Jurisdiction string   `cbor:"jurisdiction"`
	Severity     Severity `cbor:"severity"`
	Status       string   `cbor:"status"`
	TLP          string   `cbor:"tlp"`
	Affected     []string `cbor:"affected"`
	Categories   []string `cbor:"categories"`
	DetectedAt   int64    `cbor:"detected_at"`
	Summary      string   `cbor:"summary"`
	Follows      *Link    `cbor:"follows,omitempty"`
	Recipients   []string `cbor:"recipients,omitempty"`
}

// Receipt is a node's signed verdict on a transfer request.
type Receipt struct {
	// Decisions name the decision blocks the receipt signs, in request
	// order (DecisionBlock).
	Decisions  []Link     `cbor:"decisions"`
	Checkpoint Checkpoint `cbor:"checkpoint"`
}

// TransferRequest asks whether a transfer may go ahead (DESIGN.md §5).
// Sender is the platform that sends the data; Parent names the decision
// that allowed the sender to receive it (tier 2 and above).
type TransferRequest struct {
	Consent       Link         `cbor:"consent"`
	From          string       `cbor:"from"`
	To            string       `cbor:"to"`
	Sender        string       `cbor:"sender"`
	Recipient     string       `cbor:"recipient"`
	Purpose       string       `cbor:"purpose"`
	Categories    []string     `cbor:"categories"`
	Tier          int64        `cbor:"tier"`
	RetentionDays int64        `cbor:"retention_days"`
	At            int64        `cbor:"at"`
	Parent        *DecisionRef `cbor:"parent,omitempty"`
}

// DecisionRef names a decision: decision Item of the receipt Receipt.
type DecisionRef struct {
	Receipt Link  `cbor:"receipt"`
	Item    int64 `cbor:"item"`
}

// Check is the outcome of one check of the decision procedure.
type Check struct {
	ID string `cbor:"id"`
	OK bool   `cbor:"ok"`
	// Reason is why a failing check failed, from the check's closed
	// list (CheckReasons); absent when the check passed.
	Reason   string `cbor:"reason,omitempty"`
	Evidence *Link  `cbor:"evidence,omitempty"`
	Detail   string `cbor:"detail"`
}

// Checkpoint names a tree head of the issuing node's log.
type Checkpoint struct {
	Size int64  `cbor:"size"`
	Root []byte `cbor:"root"`
}

func (*Accreditation) Kind() Kind { return KindAccreditation }
func (*Ruleset) Kind() Kind       { return KindRuleset }
func (*Consent) Kind() Kind       { return KindConsent }
func (*Revocation) Kind() Kind    { return KindRevocation }
func (*Incident) Kind() Kind      { return KindIncident }
func (*Receipt) Kind() Kind       { return KindReceipt }
