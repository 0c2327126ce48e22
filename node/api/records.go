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

func (a *API) handlePostRecord(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != MediaDagCBOR {
		a.writeError(w, r, &protocol.Error{Code: protocol.CodeMalformed, Msg: "Content-Type must be " + MediaDagCBOR})
		return
	}
	imp, err := importParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if imp && !callerOf(r).Operator {
		a.writeError(w, r, forbidden("only the operator may import records"))
		return
	}
	body, err := readBody(r, protocol.MaxRecordSize)
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
	v := r.URL.Query()
	for key := range v {
		if key != "import" {
			return false, badRequest("unknown query parameter %q", key)
		}
	}
	switch vs := v["import"]; {
	case len(vs) == 0:
		return false, nil
	case len(vs) > 1:
		return false, badRequest("import: given %d times", len(vs))
	case vs[0] == "true":
		return true, nil
	case vs[0] == "false":
		return false, nil
	default:
		return false, badRequest("import: want true or false, not %q", vs[0])
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

// maxListScans bounds the store pages one list request reads to fill a
// page with what its caller may see: past it, the page is answered
// shorter (even empty) with its next, so that a caller who may see little
// of a large store costs a bounded read per request.
const maxListScans = 8

func (a *API) handleListRecords(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	want := q.Limit
	if want == 0 {
		want = store.DefaultListLimit
	}
	page := ListPage{Records: make([]RecordView, 0, want)}
	var next uint64
	for scans := 0; scans < maxListScans; scans++ {
		q.Limit = want - len(page.Records)
		var entries []store.Entry
		entries, next, err = a.cfg.Store.List(q)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		for _, e := range entries {
			if !a.mayRead(r, e.Record) {
				continue
			}
			v, err := recordView(e.Record)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			page.Records = append(page.Records, v)
		}
		if next == 0 || len(page.Records) == want {
			break
		}
		q.After = next
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
	var err error
	q.After, q.Limit, err = pageParams(v)
	return q, err
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
