package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// signAt signs body with key, issued at t (which must be fresh: within the
// node's max record age).
func signAt(t *testing.T, key crypto.PrivKey, at time.Time, body protocol.Body) *protocol.Record {
	t.Helper()
	r, err := protocol.Sign(key, at.UnixMilli(), body)
	if err != nil {
		t.Fatalf("sign %s: %v", body.Kind(), err)
	}
	return r
}

// followUp is a follow-up of prev's incident with a new state.
func followUp(t *testing.T, prev *protocol.Record, status string, severity protocol.Severity) *protocol.Incident {
	t.Helper()
	b, ok := prev.Incident()
	if !ok {
		t.Fatalf("%s is not an incident", prev.CID())
	}
	next := *b
	next.Status, next.Severity = status, severity
	next.Summary = b.Summary + ", then " + status
	link := protocol.LinkTo(prev.CID())
	next.Follows = &link
	return &next
}

func (c *apiClient) incidents(query string) (page struct {
	Incidents []service.Incident `json:"incidents"`
	Next      string             `json:"next"`
}) {
	c.t.Helper()
	resp := c.get("/v1/incidents?"+query, "")
	if resp.status != http.StatusOK {
		c.t.Fatalf("GET /v1/incidents?%s: status %d, body %s", query, resp.status, resp.body)
	}
	decodeJSON(c.t, resp.body, &page)
	return page
}

func idsOf(incs []service.Incident) []string {
	out := make([]string, len(incs))
	for i, inc := range incs {
		out[i] = inc.ID
	}
	return out
}

func cids(rs ...*protocol.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.CID().String()
	}
	return out
}

func TestIncidentsListAndGet(t *testing.T) {
	tn := startNet(t, 1)
	c := newAPIClient(t, tn.Nodes[0])
	de, fr := tn.Authorities["DE"], tn.Authorities["FR"]
	_, affected := newKey(t)
	now := time.Now()

	// Three incidents, the first updated twice; issued_at spread so that
	// since can tell them apart.
	bodyA := incident("DE", protocol.TLPClear)
	bodyA.Ref, bodyA.Affected = "DE-1", []string{affected.String()}
	bodyB := incident("FR", protocol.TLPGreen)
	bodyB.Ref, bodyB.Severity = "FR-1", protocol.SeverityLow
	bodyC := incident("DE", protocol.TLPRed, "FR")
	bodyC.Ref, bodyC.Severity = "DE-2", protocol.SeverityCritical
	a1 := signAt(t, de, now.Add(-5*time.Minute), bodyA)
	b1 := signAt(t, fr, now.Add(-4*time.Minute), bodyB)
	c1 := signAt(t, de, now.Add(-3*time.Minute), bodyC)
	a2 := signAt(t, de, now.Add(-2*time.Minute), followUp(t, a1, protocol.StatusContained, protocol.SeverityMedium))
	a3 := signAt(t, de, now.Add(-time.Minute), followUp(t, a2, protocol.StatusResolved, protocol.SeverityMedium))
	for _, r := range []*protocol.Record{a1, b1, c1, a2, a3} {
		c.submit(r)
	}
	A, B, C := a1.CID().String(), b1.CID().String(), c1.CID().String()

	t.Run("the entry of a chain", func(t *testing.T) {
		p := c.incidents("")
		if got := idsOf(p.Incidents); !slices.Equal(got, []string{A, B, C}) {
			t.Fatalf("incidents %v, want %v (in the order of their first notices)", got, []string{A, B, C})
		}
		if p.Next != "" {
			t.Errorf("next %q on the only page", p.Next)
		}
		e := p.Incidents[0]
		if e.Status != protocol.StatusResolved || e.Severity != protocol.SeverityMedium || e.Summary != "test incident, then contained, then resolved" {
			t.Errorf("A's state: %s %s %q, want the latest notice's (resolved medium)", e.Status, e.Severity, e.Summary)
		}
		if !slices.Equal(e.Notices, cids(a1, a2, a3)) {
			t.Errorf("A's notices %v, want %v", e.Notices, cids(a1, a2, a3))
		}
		if e.Issuer != a1.Issuer().String() || e.Jurisdiction != "DE" || e.Ref != "DE-1" || e.TLP != protocol.TLPClear ||
			e.DetectedAt != bodyA.DetectedAt || !slices.Equal(e.Affected, bodyA.Affected) || !slices.Equal(e.Categories, bodyA.Categories) {
			t.Errorf("A's entry: %+v", e)
		}
		if red := p.Incidents[2]; !slices.Equal(red.Recipients, []string{"FR"}) || red.TLP != protocol.TLPRed {
			t.Errorf("the red incident's recipients %v, tlp %s", red.Recipients, red.TLP)
		}
	})

	t.Run("JSON shape", func(t *testing.T) {
		resp := c.get("/v1/incidents?jurisdiction=FR", "")
		var raw struct {
			Incidents []map[string]json.RawMessage `json:"incidents"`
			Next      *string                      `json:"next"`
		}
		decodeJSON(t, resp.body, &raw)
		if len(raw.Incidents) != 1 || raw.Next == nil {
			t.Fatalf("body %s", resp.body)
		}
		e := raw.Incidents[0]
		for _, k := range []string{"id", "jurisdiction", "ref", "issuer", "severity", "status", "tlp", "categories", "detected_at", "summary", "notices"} {
			if _, ok := e[k]; !ok {
				t.Errorf("field %s missing from %s", k, resp.body)
			}
		}
		for k, v := range e {
			if string(v) == "null" {
				t.Errorf("field %s is null", k)
			}
		}
		for _, k := range []string{"recipients", "delivery", "affected"} { // empty: left out
			if _, ok := e[k]; ok {
				t.Errorf("empty field %s present in %s", k, resp.body)
			}
		}
		if len(e) != 11 {
			t.Errorf("entry has %d fields, want 11: %s", len(e), resp.body)
		}
		if resp := c.get("/v1/incidents?jurisdiction=BR", ""); !strings.Contains(string(resp.body), `"incidents":[]`) {
			t.Errorf("an empty list is not []: %s", resp.body)
		}
	})

	t.Run("filters", func(t *testing.T) {
		since := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"status=resolved", []string{A}},
			{"status=open", []string{B, C}},
			{"status=contained", nil},
			{"severity=low", []string{A, B, C}},
			{"severity=medium", []string{A, C}},
			{"severity=high", []string{C}},
			{"jurisdiction=DE", []string{A, C}},
			{"jurisdiction=FR", []string{B}},
			{"jurisdiction=BR", nil},
			{"affected=" + affected.String(), []string{A}},
			{"since=" + since(-90*time.Second), []string{A}},
			{"since=" + since(-210*time.Second), []string{A, C}},
			{"since=" + url.QueryEscape(now.Add(-10*time.Minute).UTC().Format(time.RFC3339)), []string{A, B, C}},
			{"since=" + since(time.Hour), nil},
			{"jurisdiction=DE&status=open", []string{C}},
			{"jurisdiction=DE&severity=critical&status=open", []string{C}},
		} {
			if got := idsOf(c.incidents(tc.query).Incidents); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
				t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
			}
		}
	})

	t.Run("pagination", func(t *testing.T) {
		var got []string
		after, pages := "", 0
		for {
			p := c.incidents("limit=1&after=" + after)
			pages++
			got = append(got, idsOf(p.Incidents)...)
			if p.Next == "" {
				break
			}
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			after = p.Next
		}
		if !slices.Equal(got, []string{A, B, C}) || pages != 3 {
			t.Errorf("pages of one: %v in %d pages", got, pages)
		}
		p := c.incidents("limit=1&severity=medium")
		if idsOf(p.Incidents)[0] != A || p.Next == "" {
			t.Fatalf("filtered page: %v next %q", idsOf(p.Incidents), p.Next)
		}
		if p = c.incidents("limit=1&severity=medium&after=" + p.Next); !slices.Equal(idsOf(p.Incidents), []string{C}) || p.Next != "" {
			t.Errorf("filtered second page: %v next %q", idsOf(p.Incidents), p.Next)
		}
	})

	t.Run("get by any notice", func(t *testing.T) {
		for _, n := range []*protocol.Record{a1, a2, a3} {
			resp := c.get("/v1/incidents/"+n.CID().String(), "")
			if resp.status != http.StatusOK {
				t.Fatalf("GET by %s: %d %s", n.CID(), resp.status, resp.body)
			}
			var e service.Incident
			decodeJSON(t, resp.body, &e)
			if e.ID != A || !slices.Equal(e.Notices, cids(a1, a2, a3)) || e.Status != protocol.StatusResolved {
				t.Errorf("GET by %s: id %s notices %v status %s", n.CID(), e.ID, e.Notices, e.Status)
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		acc := freshAccreditation(t, tn, "DE", "not an incident")
		c.submit(acc)
		wantAPIError(t, c.get("/v1/incidents/"+acc.CID().String(), ""), http.StatusNotFound, "not_found")
		wantAPIError(t, c.get("/v1/incidents/"+freshAccreditation(t, tn, "DE", "not held").CID().String(), ""), http.StatusNotFound, "not_found")
		wantAPIError(t, c.get("/v1/incidents/"+strings.ToUpper(A), ""), http.StatusBadRequest, "bad_cid")
		for _, q := range []string{"status=closed", "severity=none", "severity=HIGH", "jurisdiction=de", "affected=nobody",
			"since=yesterday", "after=x", "limit=0", "limit=1001", "color=red", "last_event_id=3"} {
			if msg := wantAPIError(t, c.get("/v1/incidents?"+q, ""), http.StatusBadRequest, "bad_request"); msg == "" {
				t.Errorf("%s: no message", q)
			}
		}
		wantAPIError(t, c.get("/v1/incidents/stream?after=1", ""), http.StatusBadRequest, "bad_request")
		wantAPIError(t, c.get("/v1/incidents/stream?last_event_id=-1", ""), http.StatusBadRequest, "bad_request")
		req, _ := http.NewRequest(http.MethodGet, c.base+"/v1/incidents/stream", nil)
		req.Header.Set("Last-Event-ID", "seven")
		wantAPIError(t, c.do(req), http.StatusBadRequest, "bad_request")
	})
}

// sseItem is one event or comment of a Server-Sent Events stream.
type sseItem struct {
	comment         string
	event, id, data string
}

// sseStream reads an open stream in its own goroutine, which ends when the
// stream does.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	items  chan sseItem
	done   chan struct{}
}

// openStream opens GET path on the member's API, with lastID as
// Last-Event-ID unless empty, and requires 200 text/event-stream.
func openStream(t *testing.T, m *testnet.Member, path, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.APIAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	req.Header.Set("Authorization", "Bearer "+m.Token)
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET %s: status %d, Content-Type %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, resp: resp, cancel: cancel, items: make(chan sseItem, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.items)
		sc := bufio.NewScanner(resp.Body)
		var it sseItem
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if it != (sseItem{}) {
					s.items <- it
				}
				it = sseItem{}
			case strings.HasPrefix(line, ":"):
				it.comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "event":
					it.event = v
				case "id":
					it.id = v
				case "data":
					it.data = v
				}
			}
		}
	}()
	t.Cleanup(s.close)
	t.Cleanup(tr.CloseIdleConnections)
	return s
}

// close drops the connection, as a subscriber that dies does, and waits
// for the reader.
func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// next returns the next item that satisfies keep, failing after d.
func (s *sseStream) next(d time.Duration, what string, keep func(sseItem) bool) sseItem {
	s.t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		select {
		case it, ok := <-s.items:
			if !ok {
				s.t.Fatalf("the stream ended while waiting for %s", what)
			}
			if keep(it) {
				return it
			}
		case <-timeout.C:
			s.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

// nextEvent returns the next event, skipping comments.
func (s *sseStream) nextEvent() (sseItem, service.Incident) {
	s.t.Helper()
	it := s.next(10*time.Second, "an event", func(it sseItem) bool { return it.event != "" })
	if it.event != "incident" {
		s.t.Fatalf("event %q, want incident", it.event)
	}
	var e service.Incident
	decodeJSON(s.t, []byte(it.data), &e)
	return it, e
}

// started waits for the stream's opening comment, after which a new
// notice is an event of it.
func (s *sseStream) started() {
	s.t.Helper()
	s.next(10*time.Second, "the opening comment", func(it sseItem) bool { return strings.HasPrefix(it.comment, "incidents after") })
}

func seqOf(t *testing.T, m *testnet.Member, r *protocol.Record) string {
	t.Helper()
	seq, err := m.Store().Seq(r.CID())
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(seq, 10)
}

func TestIncidentStreamResumesExactlyOnce(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	de := tn.Authorities["DE"]
	publish := func(b *protocol.Incident) *protocol.Record {
		r := mustSign(t, de, b)
		c.submit(r)
		return r
	}
	before := publish(incident("DE", protocol.TLPClear)) // not an event: the stream starts now

	s := openStream(t, m, "/v1/incidents/stream", "")
	s.started()
	n1 := publish(incident("DE", protocol.TLPAmber))
	n2 := publish(followUp(t, n1, protocol.StatusContained, protocol.SeverityHigh))
	ev1, e1 := s.nextEvent()
	ev2, e2 := s.nextEvent()
	if ev1.id != seqOf(t, m, n1) || ev2.id != seqOf(t, m, n2) {
		t.Errorf("event IDs %s, %s; want the notices' seqs %s, %s", ev1.id, ev2.id, seqOf(t, m, n1), seqOf(t, m, n2))
	}
	if e1.ID != n1.CID().String() || e1.Status != protocol.StatusOpen || !slices.Equal(e1.Notices, cids(n1)) {
		t.Errorf("first event: %+v, want n1's incident, open, as of n1", e1)
	}
	// A follow-up updates the entry: the same incident, its new state.
	if e2.ID != n1.CID().String() || e2.Status != protocol.StatusContained || !slices.Equal(e2.Notices, cids(n1, n2)) {
		t.Errorf("second event: %+v, want n1's incident, contained, as of n2", e2)
	}

	// The subscriber dies; notices keep coming.
	s.close()
	n3 := publish(followUp(t, n2, protocol.StatusResolved, protocol.SeverityHigh))
	n4 := publish(incident("DE", protocol.TLPGreen))
	n5 := publish(followUp(t, before, protocol.StatusResolved, protocol.SeverityHigh))

	// It comes back with its last ID and gets every later event, once,
	// in order; then the next new one.
	s = openStream(t, m, "/v1/incidents/stream", ev2.id)
	var got []string
	for _, want := range []*protocol.Record{n3, n4, n5} {
		ev, e := s.nextEvent()
		got = append(got, ev.id)
		if ev.id != seqOf(t, m, want) {
			t.Errorf("after reconnecting: event %s, want %s (%s)", ev.id, seqOf(t, m, want), want.CID())
		}
		if want == n3 && (e.Status != protocol.StatusResolved || !slices.Equal(e.Notices, cids(n1, n2, n3))) {
			t.Errorf("n3's event: %+v", e)
		}
		if want == n5 && (e.ID != before.CID().String() || !slices.Equal(e.Notices, cids(before, n5))) {
			t.Errorf("n5's event: %+v", e)
		}
	}
	n6 := publish(incident("DE", protocol.TLPClear))
	if ev, _ := s.nextEvent(); ev.id != seqOf(t, m, n6) {
		t.Errorf("after the replay: event %s, want n6's %s (got before it: %v)", ev.id, seqOf(t, m, n6), got)
	}

	// The query parameter resumes too, and replays as of each notice.
	q := openStream(t, m, "/v1/incidents/stream?last_event_id="+ev1.id, "")
	if ev, e := q.nextEvent(); ev.id != ev2.id || e.Status != protocol.StatusContained || !slices.Equal(e.Notices, cids(n1, n2)) {
		t.Errorf("replay from ?last_event_id=%s: event %s %+v, want n2's as of n2", ev1.id, ev.id, e)
	}
}

func TestIncidentStreamFilters(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	s := openStream(t, m, "/v1/incidents/stream?jurisdiction=FR&severity=critical", "")
	s.started()
	de := mustSign(t, tn.Authorities["DE"], incident("DE", protocol.TLPClear))
	frLow := incident("FR", protocol.TLPClear)
	frLow.Severity = protocol.SeverityLow
	frCritical := incident("FR", protocol.TLPClear)
	frCritical.Severity = protocol.SeverityCritical
	low, critical := mustSign(t, tn.Authorities["FR"], frLow), mustSign(t, tn.Authorities["FR"], frCritical)
	for _, r := range []*protocol.Record{de, low, critical} {
		c.submit(r)
	}
	if ev, e := s.nextEvent(); e.ID != critical.CID().String() || ev.id != seqOf(t, m, critical) {
		t.Errorf("filtered stream: event %s of %s, want only the critical FR incident %s", ev.id, e.ID, critical.CID())
	}
}

func TestIncidentStreamKeepaliveAndShutdown(t *testing.T) {
	tn, err := testnet.Start(testnet.Options{Nodes: 1, InMemory: true, API: true, StreamKeepalive: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	m := tn.Nodes[0]
	s := openStream(t, m, "/v1/incidents/stream", "")
	s.started()
	for range 3 {
		s.next(5*time.Second, "a keepalive comment", func(it sseItem) bool { return it.comment == "keepalive" })
	}
	// The API's shutdown ends the stream, without waiting out its grace.
	start := time.Now()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stopping the node with a stream open took %s", d)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.items:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("the stream is still open after the node stopped")
		}
	}
}
