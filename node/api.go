package node

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Media types of the API.
const (
	MediaDagCBOR = "application/vnd.ipld.dag-cbor"
	MediaJSON    = "application/json"
)

// API error codes beyond the record codes of package protocol.
const (
	CodeUnauthorized = "unauthorized"
	CodeOverloaded   = "overloaded"
	CodeNotFound     = "not_found"
	CodeBadRequest   = "bad_request"
	CodeInternal     = "internal"
)

// APIError is an error answer: {"error": Code, "message": Message}.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
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
}

// retryAfterSeconds is what an overloaded node asks clients to wait.
const retryAfterSeconds = 1

// toAPIError is the one place errors become HTTP answers.
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
	case errors.Is(err, ErrPushback):
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeOverloaded, Message: "the node is at capacity; retry later"}
	case errors.Is(err, ErrClosed):
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeOverloaded, Message: "the node is shutting down"}
	case errors.Is(err, store.ErrNotFound):
		return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "not held by this node"}
	}
	return &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}

func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.Code == CodeInternal {
		n.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.Status == http.StatusServiceUnavailable {
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

// Handler is the node's HTTP API (DESIGN.md §8).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	mux.HandleFunc("POST /v1/records", n.requireToken(n.handlePostRecord))
	mux.HandleFunc("GET /v1/records/{cid}", n.handleGetRecord)
	mux.HandleFunc("GET /v1/records", n.handleListRecords)
	mux.HandleFunc("POST /v1/transfers/verify", n.requireToken(n.handleVerify))
	mux.HandleFunc("POST /v1/transfers/verify-batch", n.requireToken(n.handleVerifyBatch))
	mux.HandleFunc("GET /v1/log/checkpoint", n.handleCheckpoint)
	mux.HandleFunc("GET /v1/log/proof", n.handleInclusionProof)
	mux.HandleFunc("GET /v1/log/consistency", n.handleConsistencyProof)
	mux.HandleFunc("GET /v1/receipts/{cid}/bundle", n.handleReceiptBundle)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", n.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, &APIError{Code: CodeNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return n.recoverer(n.limitConcurrency(mux))
}

// limitConcurrency answers 503 overloaded when MaxConcurrentRequests are
// already in flight, rather than queueing without bound.
func (n *Node) limitConcurrency(h http.Handler) http.Handler {
	slots := make(chan struct{}, n.cfg.MaxConcurrentRequests)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			n.writeError(w, r, ErrPushback)
		}
	})
}

func (n *Node) startAPI() error {
	ln, err := net.Listen("tcp", n.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("node: api listen %s: %w", n.cfg.APIAddr, err)
	}
	n.apiLn = ln
	t := n.cfg.HTTPTimeouts
	n.api = &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slogErrorLog(n.log),
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api server stopped", "err", err)
		}
	}()
	return nil
}

func (n *Node) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				n.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// requireToken guards an endpoint with the bearer token.
func (n *Node) requireToken(h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + n.cfg.APIToken)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			n.writeError(w, r, &APIError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing or wrong bearer token (Authorization: Bearer <api-token>)"})
			return
		}
		h(w, r)
	}
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Status())
}

func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	if n.ctx.Err() != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "peers": len(n.host.Network().Peers())})
}

// readBody reads a record-sized request body, refusing larger ones.
func readBody(r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return nil, &protocol.Error{Code: protocol.CodeTooLarge, Msg: fmt.Sprintf("body is %d bytes; the limit is %d", r.ContentLength, limit)}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, badRequest("reading body: %v", err)
	}
	if len(b) > limit {
		return nil, &protocol.Error{Code: protocol.CodeTooLarge, Msg: fmt.Sprintf("body is over the %d-byte limit", limit)}
	}
	return b, nil
}

func (n *Node) handlePostRecord(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != MediaDagCBOR {
		n.writeError(w, r, &protocol.Error{Code: protocol.CodeMalformed, Msg: "Content-Type must be " + MediaDagCBOR})
		return
	}
	body, err := readBody(r, protocol.MaxRecordSize)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	acc, err := n.Submit(r.Context(), body)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if acc.New {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]string{"cid": acc.CID.String()})
}

// RecordView is a record as the API shows it: its CID and DAG-JSON view.
type RecordView struct {
	CID    string          `json:"cid"`
	Record json.RawMessage `json:"record"`
}

func recordView(rec *protocol.Record) (RecordView, error) {
	j, err := rec.JSON()
	if err != nil {
		return RecordView{}, err
	}
	return RecordView{CID: rec.CID().String(), Record: j}, nil
}

func (n *Node) handleGetRecord(w http.ResponseWriter, r *http.Request) {
	c, err := protocol.ParseCID(r.PathValue("cid"))
	if err != nil {
		n.writeError(w, r, badRequest("cid: %v", err))
		return
	}
	rec, err := n.store.Get(c)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if acceptsCBOR(r) {
		w.Header().Set("Content-Type", MediaDagCBOR)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Write(rec.Bytes())
		return
	}
	v, err := recordView(rec)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func acceptsCBOR(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part)); mt == MediaDagCBOR {
			return true
		}
	}
	return false
}

// ListPage is the answer of GET /v1/records.
type ListPage struct {
	Records []RecordView `json:"records"`
	Next    string       `json:"next"`
}

func (n *Node) handleListRecords(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	entries, next, err := n.store.List(q)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	page := ListPage{Records: make([]RecordView, 0, len(entries))}
	for _, e := range entries {
		v, err := recordView(e.Record)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		page.Records = append(page.Records, v)
	}
	if next != 0 {
		page.Next = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, page)
}

func parseListQuery(r *http.Request) (store.Query, error) {
	var q store.Query
	v := r.URL.Query()
	for key := range v {
		switch key {
		case "kind", "issuer", "jurisdiction", "after", "limit":
		default:
			return q, badRequest("unknown query parameter %q", key)
		}
	}
	if s := v.Get("kind"); s != "" {
		q.Kind = protocol.Kind(s)
		if !q.Kind.Known() {
			return q, &APIError{Status: http.StatusBadRequest, Code: string(protocol.CodeUnknownKind), Message: fmt.Sprintf("kind: %q is not a record kind", s)}
		}
	}
	if s := v.Get("issuer"); s != "" {
		id, err := peer.Decode(s)
		if err != nil {
			return q, badRequest("issuer: not a peer ID: %v", err)
		}
		q.Issuer = id
	}
	if s := v.Get("jurisdiction"); s != "" {
		if !protocol.ValidJurisdiction(s) {
			return q, badRequest("jurisdiction: %q is not an upper-case alpha-2 code", s)
		}
		q.Jurisdiction = s
	}
	if s := v.Get("after"); s != "" {
		after, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, badRequest("after: not a cursor from a previous page's next")
		}
		q.After = after
	}
	if s := v.Get("limit"); s != "" {
		limit, err := strconv.Atoi(s)
		if err != nil || limit < 1 || limit > 1000 {
			return q, badRequest("limit: want an integer from 1 to 1000")
		}
		q.Limit = limit
	}
	return q, nil
}
