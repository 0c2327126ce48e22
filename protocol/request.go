package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"time"
)

// MaxTransferRequestJSON bounds the JSON form of a transfer request, in
// bytes.
const MaxTransferRequestJSON = 64 << 10

// transferRequestJSON is the JSON form of a transfer request (DESIGN.md
// §8), in its field order.
type transferRequestJSON struct {
	Consent       string           `json:"consent"`
	From          string           `json:"from"`
	To            string           `json:"to"`
	Sender        string           `json:"sender"`
	Recipient     string           `json:"recipient"`
	Purpose       string           `json:"purpose"`
	Categories    []string         `json:"categories"`
	Tier          int64            `json:"tier"`
	RetentionDays int64            `json:"retention_days"`
	At            string           `json:"at,omitempty"`
	Parent        *DecisionRefJSON `json:"parent,omitempty"`
}

// DecisionRefJSON is the JSON form of a DecisionRef: {"receipt": CID,
// "item": int}.
type DecisionRefJSON struct {
	Receipt string `json:"receipt"`
	Item    int64  `json:"item"`
}

// requestFields are the fields of the JSON form, required ones first, in
// the order errors report them.
var requestFields = []string{"consent", "from", "to", "sender", "recipient", "purpose", "categories", "tier", "retention_days", "at", "parent"}

// optionalField reports whether a field of the JSON form may be left out.
func optionalField(f string) bool { return f == "at" || f == "parent" }

// ParseTransferRequestJSON parses the JSON form of a transfer request,
// the body of POST /v1/transfers/verify (DESIGN.md §8):
//
//	{"consent": "bafy...", "from": "DE", "to": "FR", "sender": "12D3KooW...",
//	 "recipient": "12D3KooW...", "purpose": "research", "categories": ["face"],
//	 "tier": 1, "retention_days": 90, "at": "2026-11-24T10:00:00Z",
//	 "parent": {"receipt": "bafy...", "item": 0}}
//
// Every field but at and parent is required. at is an RFC 3339 time, kept
// to the millisecond; when it is absent the request's At is 0, for the
// caller to fill with its clock. parent, when given, has exactly its two
// fields. categories may come in any order: they are sorted,
// as the request's canonical form requires.
//
// Errors are *Error naming the field: CodeMalformed for what is not one
// JSON object, an unknown, duplicate, missing or null field, or a value
// of the wrong JSON type; CodeInvalidBody for a value of the right type
// that is not valid (a bad code, CID, peer ID, purpose or category, a
// negative tier or retention, a time that is not RFC 3339 or before
// 1970); CodeTooLarge over MaxTransferRequestJSON bytes.
func ParseTransferRequestJSON(b []byte) (*TransferRequest, error) {
	if len(b) > MaxTransferRequestJSON {
		return nil, errf(CodeTooLarge, "", "request is %d bytes, over the %d-byte limit", len(b), MaxTransferRequestJSON)
	}
	if t, ok := parseTransferRequestFast(b); ok {
		return t, nil
	}
	return parseTransferRequestStream(b)
}

// parseTransferRequestStream is ParseTransferRequestJSON on a token
// stream, for its errors.
func parseTransferRequestStream(b []byte) (*TransferRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errf(CodeMalformed, "", "want one JSON object")
	}
	var t TransferRequest
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errf(CodeMalformed, "", "not JSON: %v", err)
		}
		key, _ := tok.(string) // inside an object, a token where a key goes is a key
		if seen[key] {
			return nil, errf(CodeMalformed, key, "duplicate field")
		}
		seen[key] = true
		if !slices.Contains(requestFields, key) {
			return nil, errf(CodeMalformed, key, "unknown field; a transfer request has %v", requestFields)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errf(CodeMalformed, key, "not JSON: %v", err)
		}
		if err := t.setJSONField(key, raw); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, errf(CodeMalformed, "", "not JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errf(CodeMalformed, "", "trailing data after the request")
	}
	for _, f := range requestFields {
		if !optionalField(f) && !seen[f] {
			return nil, errf(CodeMalformed, f, "missing field")
		}
	}
	slices.Sort(t.Categories)
	if err := t.Validate(""); err != nil {
		return nil, err
	}
	return &t, nil
}

// parseTransferRequestFast is ParseTransferRequestJSON for a request it
// accepts, in one pass of the JSON decoder instead of a token stream (a
// third of the cost); anything it does not accept, it leaves to the token
// stream, which says exactly what is wrong, field by field in order. The
// two accept the same requests (FuzzParseTransferRequestJSON holds them to it).
func parseTransferRequestFast(b []byte) (*TransferRequest, bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil || objectMembers(b) != len(fields) {
		return nil, false // not an object, or a field given twice
	}
	var t TransferRequest
	known := 0
	for _, f := range requestFields {
		raw, ok := fields[f]
		if !ok {
			if optionalField(f) {
				continue
			}
			return nil, false
		}
		known++
		if t.setJSONField(f, raw) != nil {
			return nil, false
		}
	}
	if len(fields) != known {
		return nil, false // an unknown field
	}
	slices.Sort(t.Categories)
	if t.Validate("") != nil {
		return nil, false
	}
	return &t, true
}

// objectMembers counts the members of the JSON object b, which must be
// valid JSON: the colons at depth one, outside strings.
func objectMembers(b []byte) int {
	depth, n, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped character, whatever it is
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ':':
			if depth == 1 {
				n++
			}
		}
	}
	return n
}

func (t *TransferRequest) setJSONField(key string, raw json.RawMessage) error {
	if string(raw) == "null" {
		return errf(CodeMalformed, key, "must not be null")
	}
	str := func(dst *string) error {
		if err := json.Unmarshal(raw, dst); err != nil {
			return errf(CodeMalformed, key, "want a string")
		}
		return nil
	}
	integer := func(dst *int64) error {
		if err := json.Unmarshal(raw, dst); err != nil {
			return errf(CodeMalformed, key, "want an integer")
		}
		return nil
	}
	switch key {
	case "consent":
		var s string
		if err := str(&s); err != nil {
			return err
		}
		c, err := ParseCID(s)
		if err != nil {
			return withField(err, key)
		}
		t.Consent = LinkTo(c)
	case "from":
		return str(&t.From)
	case "to":
		return str(&t.To)
	case "sender":
		return str(&t.Sender)
	case "recipient":
		return str(&t.Recipient)
	case "purpose":
		return str(&t.Purpose)
	case "categories":
		if err := json.Unmarshal(raw, &t.Categories); err != nil {
			return errf(CodeMalformed, key, "want a list of strings")
		}
	case "tier":
		return integer(&t.Tier)
	case "retention_days":
		return integer(&t.RetentionDays)
	case "at":
		var s string
		if err := str(&s); err != nil {
			return err
		}
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return invalid(key, "%q is not an RFC 3339 time (2026-11-24T10:00:00Z)", s)
		}
		t.At = at.UnixMilli()
		if t.At < 0 {
			return invalid(key, "before 1970")
		}
	case "parent":
		ref, err := parseDecisionRefJSON(raw)
		if err != nil {
			return err
		}
		t.Parent = ref
	}
	return nil
}

// parseDecisionRefJSON parses {"receipt": CID, "item": int}: both fields,
// nothing else.
func parseDecisionRefJSON(raw json.RawMessage) (*DecisionRef, error) {
	const field = "parent"
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var v struct {
		Receipt *string `json:"receipt"`
		Item    *int64  `json:"item"`
	}
	if err := dec.Decode(&v); err != nil {
		return nil, errf(CodeMalformed, field, "want {\"receipt\": CID, \"item\": integer}: %v", err)
	}
	if objectMembers(raw) != 2 || v.Receipt == nil || v.Item == nil {
		return nil, errf(CodeMalformed, field, "want exactly the fields receipt and item")
	}
	c, err := ParseCID(*v.Receipt)
	if err != nil {
		return nil, withField(err, field+".receipt")
	}
	return &DecisionRef{Receipt: LinkTo(c), Item: *v.Item}, nil
}

// JSON is the request's JSON form, as ParseTransferRequestJSON reads it;
// at is left out when it is 0.
func (t *TransferRequest) JSON() ([]byte, error) {
	v := transferRequestJSON{
		From:          t.From,
		To:            t.To,
		Sender:        t.Sender,
		Recipient:     t.Recipient,
		Purpose:       t.Purpose,
		Categories:    t.Categories,
		Tier:          t.Tier,
		RetentionDays: t.RetentionDays,
	}
	if t.Consent.Defined() {
		v.Consent = t.Consent.String()
	}
	if v.Categories == nil {
		v.Categories = []string{}
	}
	if t.At != 0 {
		v.At = fmtTime(t.At)
	}
	if p := t.Parent; p != nil {
		v.Parent = &DecisionRefJSON{Receipt: p.Receipt.String(), Item: p.Item}
	}
	return json.Marshal(v)
}

// withField sets the field of an *Error that has none.
func withField(err error, field string) error {
	var pe *Error
	if errors.As(err, &pe) && pe.Field == "" {
		e := *pe
		e.Field = field
		return &e
	}
	return err
}
