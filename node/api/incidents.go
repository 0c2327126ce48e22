package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// IncidentPage is the answer of GET /v1/incidents.
type IncidentPage struct {
	Incidents []*service.Incident `json:"incidents"`
	Next      string              `json:"next"`
}

// visibleIncident reports whether the caller of r may read the incident:
// every one of its notices must be visible to it, so that an entry never
// shows anything of a notice the caller may not read.
func (a *API) visibleIncident(r *http.Request, inc *service.Incident) bool {
	for _, n := range inc.Records {
		if !a.mayRead(r, n) {
			return false
		}
	}
	return true
}

// errNoIncidents answers the incident routes of an API without a read
// model.
var errNoIncidents = &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "this API does not serve incidents"}

func (a *API) handleListIncidents(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Incidents == nil {
		a.writeError(w, r, errNoIncidents)
		return
	}
	q, err := parseIncidentQuery(r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q.Visible = func(inc *service.Incident) bool { return a.visibleIncident(r, inc) }
	page, err := a.cfg.Incidents.List(q)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := IncidentPage{Incidents: page.Incidents}
	if out.Incidents == nil {
		out.Incidents = []*service.Incident{}
	}
	if page.Next != 0 {
		out.Next = strconv.FormatUint(page.Next, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleGetIncident(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Incidents == nil {
		a.writeError(w, r, errNoIncidents)
		return
	}
	c, err := cidParam(r.PathValue("cid"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	inc, err := a.cfg.Incidents.Get(c)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if !a.visibleIncident(r, inc) {
		a.writeError(w, r, &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "not held by this node"})
		return
	}
	writeJSON(w, http.StatusOK, inc)
}

// parseIncidentQuery reads the filters of the incident list (with after
// and limit) or of the stream (with last_event_id instead).
func parseIncidentQuery(r *http.Request, stream bool) (service.IncidentQuery, error) {
	var q service.IncidentQuery
	allowed := []string{"status", "severity", "jurisdiction", "affected", "since"}
	if stream {
		for _, key := range []string{"after", "limit"} {
			if r.URL.Query().Has(key) {
				return q, badRequest("%s: the stream takes no %s (resume with Last-Event-ID)", key, key)
			}
		}
		allowed = append(allowed, "last_event_id")
	} else {
		allowed = append(allowed, "after", "limit")
	}
	v, err := queryParams(r, allowed...)
	if err != nil {
		return q, err
	}
	if s := v.Get("status"); s != "" {
		switch s {
		case protocol.StatusOpen, protocol.StatusContained, protocol.StatusResolved:
		default:
			return q, badRequest("status: want open, contained or resolved")
		}
		q.Status = s
	}
	if s := v.Get("severity"); s != "" {
		if protocol.Severity(s).Rank() < protocol.SeverityLow.Rank() {
			return q, badRequest("severity: want low, medium, high or critical")
		}
		q.Severity = protocol.Severity(s)
	}
	if s := v.Get("jurisdiction"); s != "" {
		if !protocol.ValidJurisdiction(s) {
			return q, badRequest("jurisdiction: %q is not an upper-case alpha-2 code", s)
		}
		q.Jurisdiction = s
	}
	if s := v.Get("affected"); s != "" {
		id, err := peer.Decode(s)
		if err != nil {
			return q, badRequest("affected: not a peer ID: %v", err)
		}
		q.Affected = id.String()
	}
	if s := v.Get("since"); s != "" {
		since, err := parseSince(s)
		if err != nil {
			return q, err
		}
		q.Since = since
	}
	q.After, q.Limit, err = pageParams(v)
	return q, err
}

// parseSince reads since: an RFC 3339 time or Unix milliseconds.
func parseSince(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.UnixMilli() <= 0 {
		return 0, badRequest("since: want an RFC 3339 time (2026-12-01T00:00:00Z) or Unix milliseconds")
	}
	return t.UnixMilli(), nil
}

// lastEventID reads where a stream resumes: the Last-Event-ID header, or
// the last_event_id query parameter; ok is false when neither is given.
func lastEventID(r *http.Request) (id uint64, ok bool, err error) {
	s, given := r.Header.Get("Last-Event-ID"), len(r.Header.Values("Last-Event-ID")) > 0
	if !given {
		s, given = r.URL.Query().Get("last_event_id"), r.URL.Query().Has("last_event_id")
	}
	if !given {
		return 0, false, nil
	}
	id, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, badRequest("Last-Event-ID: %q is not an event ID of this node (a decimal integer)", s)
	}
	return id, true, nil
}

// streamBatch is how many notices one read of the store takes.
const streamBatch = 64

// handleIncidentStream serves GET /v1/incidents/stream: Server-Sent Events,
// one "incident" event for each notice the node accepts after the start
// (the Last-Event-ID, or now), its ID the notice's acceptance seq and its
// data the incident as of that notice. The stream reads the store after
// the last ID it sent (or passed over) and waits for new records, so a
// consumer that resumes with its last ID misses nothing and gets nothing
// twice. A write that cannot complete within Streams.WriteTimeout ends the
// stream: a consumer too slow to keep up is disconnected, never skipped.
func (a *API) handleIncidentStream(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Incidents == nil {
		a.writeError(w, r, errNoIncidents)
		return
	}
	q, err := parseIncidentQuery(r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	after, resume, err := lastEventID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if !resume {
		after = a.cfg.Store.Len() // now: the highest seq so far
	}
	q.Visible = func(inc *service.Incident) bool { return a.visibleIncident(r, inc) }

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.stopping, cancel)
	defer stop()

	send, ok := a.openStream(w, "incidents after "+strconv.FormatUint(after, 10))
	if !ok {
		return
	}
	keepalive := time.NewTicker(a.cfg.Streams.Keepalive)
	defer keepalive.Stop()
	// The caller is authorised again every second: a token revoked or an
	// accreditation lapsed ends the stream (DESIGN.md §8).
	reauth := time.NewTicker(time.Second)
	defer reauth.Stop()
	var buf bytes.Buffer
	// Every accepted record wakes the stream, and most are not incident
	// notices: it reads the store only when the node holds other notices
	// than at its last read, or when that read may have stopped short.
	held := int64(-1)
	for ctx.Err() == nil {
		var wake <-chan struct{}
		if a.cfg.Accepted != nil {
			wake = a.cfg.Accepted() // before reading: a record accepted after the read wakes it
		}
		if n := a.cfg.Store.Count(protocol.KindIncident); n != held {
			held = n // counted before the read: a notice accepted after it makes the next count differ
			evs, scanned, err := a.cfg.Incidents.Events(q, after, streamBatch)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					a.log.Error("incident stream: reading events", "err", err, "after", after)
				}
				return
			}
			if len(evs) > 0 {
				buf.Reset()
				for _, ev := range evs {
					if err := writeEvent(&buf, "incident", ev.Seq, ev.Incident); err != nil {
						a.log.Error("incident stream: encoding an event", "err", err, "seq", ev.Seq)
						return
					}
				}
				if err := send(buf.Bytes()); err != nil {
					a.log.Debug("incident stream: consumer gone or too slow", "err", err, "after", after)
					return
				}
			}
			if scanned > after {
				after = scanned
				if scanned < a.cfg.Store.Len() {
					held = -1
					continue // there may be more; if not, wake says when
				}
			}
		}
		select {
		case <-wake:
		case <-reauth.C:
			if id, err := a.identify(r); err != nil || id != identityOf(r) {
				a.log.Info("incident stream: the caller is no longer authorised; closing", "caller", identityOf(r).Name, "request_id", requestID(r))
				return
			}
		case <-keepalive.C:
			if err := send([]byte(": keepalive\n\n")); err != nil {
				a.log.Debug("incident stream: consumer gone or too slow", "err", err, "after", after)
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// writeEvent appends one Server-Sent Event: its name, ID and data (JSON,
// one line).
func writeEvent(buf *bytes.Buffer, name string, id uint64, data any) error {
	j, err := json.Marshal(data)
	if err != nil {
		return err
	}
	fmt.Fprintf(buf, "event: %s\nid: %d\ndata: %s\n\n", name, id, j)
	return nil
}
