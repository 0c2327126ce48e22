package service

import "github.com/entente-net/entente/protocol"

// Incident is one incident, a follows chain of notices, as the API shows
// it (DESIGN.md §8, "incident entry"). ID is the CID of the chain's first
// notice; Jurisdiction, Ref, TLP and Recipients are fixed along the chain
// (§4) and Issuer is the first notice's; Severity, Status, Affected,
// Categories, DetectedAt and Summary are the state, the latest notice's
// by the rule of protocol.LaterNotice. Notices are the chain's CIDs in
// the order the node accepted them (a follow-up always after the notice
// it follows). Delivery, for TLP red only, is the direct delivery of the
// newest of those notices, per recipient jurisdiction. Empty fields are
// left out of the JSON, never null.
type Incident struct {
	ID           string              `json:"id"`
	Jurisdiction string              `json:"jurisdiction"`
	Ref          string              `json:"ref"`
	Issuer       string              `json:"issuer"`
	Severity     protocol.Severity   `json:"severity"`
	Status       string              `json:"status"`
	TLP          string              `json:"tlp"`
	Affected     []string            `json:"affected,omitempty"`
	Categories   []string            `json:"categories,omitempty"`
	DetectedAt   int64               `json:"detected_at"`
	Summary      string              `json:"summary"`
	Recipients   []string            `json:"recipients,omitempty"`
	Notices      []string            `json:"notices"`
	Delivery     map[string]Delivery `json:"delivery,omitempty"`

	// Records are the notices Notices names, in the same order: what a
	// caller's visibility is judged on.
	Records []*protocol.Record `json:"-"`
	// State is the notice whose state the entry shows.
	State *protocol.Record `json:"-"`
}

// IncidentQuery selects incidents. Zero fields do not filter; the filters
// that are set must all hold, on the entry's state.
type IncidentQuery struct {
	// Status is the state's status (open, contained, resolved).
	Status string
	// Severity keeps incidents at or above it.
	Severity protocol.Severity
	// Jurisdiction is the incident's jurisdiction.
	Jurisdiction string
	// Affected keeps incidents whose state names this peer ID (its string
	// form) in affected.
	Affected string
	// Since keeps incidents updated at or after it (Unix ms): whose state
	// notice was issued at or after it.
	Since int64
	// After is a cursor: the Next of the previous page.
	After uint64
	// Limit is the page size: 0 means 100, at most 1000.
	Limit int
	// Visible, when set, keeps only the entries it accepts (the caller's
	// visibility); a page then holds Limit visible entries.
	Visible func(*Incident) bool
}

// IncidentPage is a page of incidents and the cursor of the next page, 0
// on the last.
type IncidentPage struct {
	Incidents []*Incident
	Next      uint64
}

// IncidentEvent is the event of one notice: the node's acceptance seq of
// the notice, and its incident as of that notice (the chain cut at it).
type IncidentEvent struct {
	Seq      uint64
	Incident *Incident
}
