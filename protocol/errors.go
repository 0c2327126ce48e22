package protocol

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Code is a stable error code. Codes are part of the HTTP API contract
// (DESIGN.md §8): clients branch on them, so they never change meaning.
type Code string

// The error codes of DESIGN.md §8 that concern records.
const (
	CodeMalformed          Code = "malformed"
	CodeNonCanonical       Code = "non_canonical"
	CodeInvalidBody        Code = "invalid_body"
	CodeUnknownKind        Code = "unknown_kind"
	CodeTooLarge           Code = "too_large"
	CodeBadSignature       Code = "bad_signature"
	CodeUnauthorizedIssuer Code = "unauthorized_issuer"
	CodeUnknownReference   Code = "unknown_reference"
	CodeClockSkew          Code = "clock_skew"
	// CodeBadCID is a CID that is not the canonical text form of a record
	// ID (ParseCID).
	CodeBadCID Code = "bad_cid"
)

// Error is a refusal of a record: a stable Code, the field it concerns (a
// path such as "body.export.destinations[2]"; empty when the record as a
// whole is at fault) and a message for people.
type Error struct {
	Code  Code
	Field string
	Msg   string
	// Ref is the CID (string form) of a missing reference, for
	// CodeUnknownReference; empty otherwise.
	Ref string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Code, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Msg)
}

// CodeOf returns the Code of the first *Error in err's chain, or "" if
// there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func errf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) *Error {
	return errf(CodeInvalidBody, field, format, args...)
}

// MissingReference returns the record an unknown_reference refusal names
// (Error.Ref).
func MissingReference(err error) (cid.Cid, bool) {
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeUnknownReference || pe.Ref == "" {
		return cid.Undef, false
	}
	c, err := ParseCID(pe.Ref)
	return c, err == nil
}
