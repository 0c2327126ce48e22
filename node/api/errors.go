package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
	"github.com/ipfs/go-cid"
)

// Media types of the API.
const (
	MediaDagCBOR = "application/vnd.ipld.dag-cbor"
	MediaJSON    = "application/json"
	MediaCAR     = "application/vnd.ipld.car"  // a receipt bundle
	MediaText    = "text/plain; charset=utf-8" // a signed checkpoint note
)

// API error codes beyond the record codes of package protocol.
const (
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeOverloaded   = "overloaded"
	CodeNotFound     = "not_found"
	CodeBadRequest   = "bad_request"
	CodeInternal     = "internal"
	CodeRateLimited  = "rate_limited"
	CodeMisdirected  = "misdirected_request"
	// CodeMethodNotAllowed: the path has routes, for other methods.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeUnsupportedMediaType: a body of the wrong Content-Type.
	CodeUnsupportedMediaType = "unsupported_media_type"
)

// APIError is an error answer: {"error": Code, "message": Message}.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
	// RetryAfter, when positive, is the Retry-After header's seconds.
	RetryAfter int `json:"-"`
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// recordStatus maps record refusal codes to HTTP statuses (DESIGN.md §8).
var recordStatus = map[protocol.Code]int{
	protocol.CodeMalformed:          http.StatusBadRequest,
	protocol.CodeNonCanonical:       http.StatusBadRequest,
	protocol.CodeInvalidBody:        http.StatusBadRequest,
	protocol.CodeUnknownKind:        http.StatusBadRequest,
	protocol.CodeTooLarge:           http.StatusRequestEntityTooLarge,
	protocol.CodeBadSignature:       http.StatusUnprocessableEntity,
	protocol.CodeUnauthorizedIssuer: http.StatusUnprocessableEntity,
	protocol.CodeUnknownReference:   http.StatusUnprocessableEntity,
	protocol.CodeClockSkew:          http.StatusUnprocessableEntity,
	protocol.CodeBadCID:             http.StatusBadRequest,
}

// retryAfterSeconds is what an overloaded node asks clients to wait.
const retryAfterSeconds = 1

// toAPIError is the one place errors become HTTP answers (writeError
// the one place that writes them).
func toAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		msg := pe.Msg
		if pe.Field != "" {
			msg = pe.Field + ": " + msg
		}
		return &APIError{Status: recordStatus[pe.Code], Code: string(pe.Code), Message: msg}
	}
	switch {
	case errors.Is(err, service.ErrPushback):
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeOverloaded, Message: "the node is at capacity; retry later"}
	case errors.Is(err, service.ErrClosed):
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeOverloaded, Message: "the node is shutting down"}
	case errors.Is(err, store.ErrNotFound):
		return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "not held by this node"}
	case errors.Is(err, service.ErrNoBundle):
		return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: strings.TrimPrefix(err.Error(), service.ErrNoBundle.Error()+": ")}
	case errors.Is(err, service.ErrUnauthorized):
		return &APIError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "unknown bearer token"}
	case errors.Is(err, service.ErrForbidden):
		return &APIError{Status: http.StatusForbidden, Code: CodeForbidden, Message: strings.TrimPrefix(err.Error(), service.ErrForbidden.Error()+": ")}
	case errors.Is(err, service.ErrSigningHeld):
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeOverloaded, RetryAfter: 30,
			Message: "this node was restored from a backup and signs no checkpoint until its log extends every checkpoint of its own its peers hold (GET /v1/status, log.held); retry later"}
	case errors.Is(err, service.ErrEmptyLog):
		return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "the log is empty: no checkpoint yet"}
	}
	return &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}

// internal is the answer of a fault of the node: the message gives the
// request's ID, under which the log has the fault.
func internal(r *http.Request) *APIError {
	return &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error (request " + requestID(r) + "; the node's log has it)"}
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.Code == CodeInternal {
		a.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
		ae = internal(r)
	}
	switch {
	case ae.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	case ae.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="entente"`)
	}
	writeJSON(w, ae.Status, ae)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// cidParam parses a CID given in a path or a query parameter named cid:
// only the canonical text form of a record ID (bad_cid otherwise).
func cidParam(s string) (cid.Cid, error) { return cidField("cid", s) }

// cidField parses a CID given as the parameter named field.
func cidField(field, s string) (cid.Cid, error) {
	c, err := protocol.ParseCID(s)
	var pe *protocol.Error
	if errors.As(err, &pe) {
		e := *pe
		e.Field = field
		return cid.Undef, &e
	}
	return c, err
}
