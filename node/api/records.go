package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// readBody reads a request body of media type media (DESIGN.md §8: 415
// otherwise), refusing one over limit bytes.
func readBody(r *http.Request, media string, limit int) ([]byte, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != media {
		return nil, &APIError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Message: "Content-Type must be " + media}
	}
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

func (a *API) handlePostRecord(w http.ResponseWriter, r *http.Request) {
	imp, err := importParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if imp && !callerOf(r).Operator {
		a.writeError(w, r, forbidden("only the operator may import records"))
		return
	}
	body, err := readBody(r, MediaDagCBOR, protocol.MaxRecordSize)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if c := callerOf(r); !c.Operator {
		// Decoded twice for a granted caller (here and by ingest): it may
		// submit only what it issues.
		rec, err := protocol.Decode(body)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if !protocol.MayWrite(c, rec) {
			a.writeError(w, r, forbidden("a %s may submit only records it issues (this one is issued by %s)", c.Role, rec.Issuer()))
			return
		}
	}
	submit := a.cfg.Records.Submit
	if imp {
		submit = a.cfg.Records.Import
	}
	acc, err := submit(r.Context(), body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if acc.New {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]string{"cid": acc.CID.String()})
}

// importParam reads POST /v1/records' one query parameter, import: true
// for the operator's import of a record that need not be fresh (DESIGN.md
// §4), false (or absent) for a submission.
func importParam(r *http.Request) (bool, error) {
	v, err := queryParams(r, "import")
	if err != nil {
		return false, err
	}
	switch s := v.Get("import"); {
	case !v.Has("import"), s == "false":
		return false, nil
	case s == "true":
		return true, nil
	default:
		return false, badRequest("import: want true or false, not %q", s)
	}
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

func (a *API) handleGetRecord(w http.ResponseWriter, r *http.Request) {
	c, err := cidParam(r.PathValue("cid"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rec, err := a.visibleRecord(r, c)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if acceptsCBOR(r) {
		w.Header().Set("Content-Type", MediaDagCBOR)
		// Immutable, but for this caller: a shared cache must not hand
		// it to another.
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
		w.Header().Set("Vary", "Authorization")
		w.Write(rec.Bytes())
		return
	}
	v, err := recordView(rec)
	if err != nil {
		a.writeError(w, r, err)
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

// maxListScans bounds the records one list request reads, as a multiple
// of its limit, to fill a page with what its caller may see: past it, the
// page is answered shorter (even empty) with its next, so that a caller
// who may see little of a large store costs a bounded read per request.
const maxListScans = 8

// A list page is bounded by bytes (Limits.MaxPageBytes) as well as by
// count, and written as it is read, listChunk records at a time: a slow
// reader holds one chunk in memory, not a page.
const listChunk = 32

func (a *API) handleListRecords(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	read := func(after uint64, limit int) ([]store.Entry, uint64, error) {
		q.After, q.Limit = after, limit
		return a.cfg.Store.List(q)
	}
	// Kinds the caller may read nothing of are not read at all (the
	// public's list walked the whole store, a page of nothing at a time).
	if c := callerOf(r); q.Kind != "" && !protocol.MayReadKind(c, q.Kind) {
		read = func(uint64, int) ([]store.Entry, uint64, error) { return nil, 0, nil }
	} else if q.Kind == "" && c.Public() {
		q.Kind = protocol.KindIncident
	}
	writePage(a, w, r, "records", q.After, q.Limit, read, func(e store.Entry) uint64 { return e.Seq },
		func(e store.Entry) (any, bool, error) {
			if !a.mayRead(r, e.Record) {
				return nil, false, nil
			}
			v, err := recordView(e.Record)
			return v, true, err
		})
}

// writePage answers a list request, a page {"<field>": [...], "next":
// "..."} of up to limit entries (0: store.DefaultListLimit) after the
// cursor after, written as they are read: read gives the store's next
// entries and the cursor after them (0 at the end), cursor an entry's
// own, and view what the caller sees of an entry (false: nothing). The
// page ends at limit entries, at Limits.MaxPageBytes, or after
// maxListScans × limit entries read, with the cursor of the last entry
// read.
func writePage[E any](a *API, w http.ResponseWriter, r *http.Request, field string, after uint64, limit int,
	read func(after uint64, limit int) ([]E, uint64, error), cursor func(E) uint64, view func(E) (any, bool, error)) {
	if limit == 0 {
		limit = store.DefaultListLimit
	}
	page := newPageWriter(w, field, a.cfg.Limits.MaxPageBytes)
	for written, scanned := 0, 0; ; {
		entries, more, err := read(after, min(listChunk, limit-written))
		if err != nil {
			page.fail(a, r, err)
			return
		}
		for i, e := range entries {
			scanned++
			v, ok, err := view(e)
			if err != nil {
				page.fail(a, r, err)
				return
			}
			if ok {
				page.add(v)
				written++
			}
			if i < len(entries)-1 && page.full() {
				more = cursor(e)
				break
			}
		}
		after = more
		if more == 0 || written == limit || page.full() || scanned >= maxListScans*limit {
			break
		}
	}
	page.end(after)
}

// pageWriter writes a list page {"<field>": [...], "next": "..."} as its
// entries come.
type pageWriter struct {
	w        http.ResponseWriter
	enc      *json.Encoder
	field    string
	n        int
	written  int
	maxBytes int
}

func newPageWriter(w http.ResponseWriter, field string, maxBytes int) *pageWriter {
	p := &pageWriter{w: w, field: field, maxBytes: maxBytes}
	p.enc = json.NewEncoder(p)
	p.enc.SetEscapeHTML(false)
	return p
}

// Write writes b to the answer, counting its bytes.
func (p *pageWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.written += n
	return n, err
}

func (p *pageWriter) start() {
	if p.written == 0 {
		p.w.Header().Set("Content-Type", MediaJSON)
		p.w.Header().Set("X-Content-Type-Options", "nosniff")
		p.w.WriteHeader(http.StatusOK)
		fmt.Fprintf(p, `{%q:[`, p.field)
	}
}

// add writes one entry.
func (p *pageWriter) add(v any) {
	p.start()
	if p.n > 0 {
		p.Write([]byte{','})
	}
	p.enc.Encode(v)
	p.n++
}

// full reports whether the page has reached its byte bound.
func (p *pageWriter) full() bool { return p.written >= p.maxBytes }

// end closes the page with its next (0: the last page).
func (p *pageWriter) end(next uint64) {
	p.start()
	s := ""
	if next != 0 {
		s = strconv.FormatUint(next, 10)
	}
	fmt.Fprintf(p, "],\"next\":%q}\n", s)
}

// fail answers err if nothing is written yet, and otherwise cuts the
// connection, so that the client sees a broken page rather than a short
// one.
func (p *pageWriter) fail(a *API, r *http.Request, err error) {
	if p.written == 0 {
		a.writeError(p.w, r, err)
		return
	}
	a.log.Error("api list failed mid-page", "path", r.URL.Path, "request_id", requestID(r), "err", err)
	panic(http.ErrAbortHandler)
}

func parseListQuery(r *http.Request) (store.Query, error) {
	var q store.Query
	v, err := queryParams(r, "kind", "issuer", "jurisdiction", "after", "limit")
	if err != nil {
		return q, err
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
	q.After, q.Limit, err = pageParams(v)
	return q, err
}

// queryParams returns a request's query, refusing parameters not in
// allowed and parameters given twice (every parameter of the API takes one
// value).
func queryParams(r *http.Request, allowed ...string) (url.Values, error) {
	q := r.URL.Query()
	for key, vals := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || key == a
		}
		if !ok {
			return nil, badRequest("unknown query parameter %q", key)
		}
		if len(vals) > 1 {
			return nil, badRequest("%s: given %d times", key, len(vals))
		}
	}
	return q, nil
}

// pageParams reads a list's after (a cursor from a previous page's next)
// and limit (1 to 1000); absent, each is 0.
func pageParams(v url.Values) (after uint64, limit int, err error) {
	if s := v.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, badRequest("after: not a cursor from a previous page's next")
		}
	}
	if s := v.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, badRequest("limit: want an integer from 1 to 1000")
		}
	}
	return after, limit, nil
}
