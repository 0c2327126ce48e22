package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakes answer with the error they are given.
type records struct{ err error }

func (r records) Submit(context.Context, []byte) (service.Accepted, error) {
	return service.Accepted{}, r.err
}
func (r records) Import(context.Context, []byte) (service.Accepted, error) {
	return service.Accepted{}, r.err
}

type verifier struct{ err error }

func (v verifier) Verify(context.Context, protocol.TransferRequest) (*service.Verdict, error) {
	return nil, v.err
}
func (v verifier) VerifyBatch(context.Context, []protocol.TransferRequest) ([]*service.Verdict, error) {
	return nil, v.err
}
func (v verifier) BundleFor(cid.Cid, int, func(*protocol.Record) bool) (*protocol.Bundle, error) {
	return nil, v.err
}

type checkpoints struct{ err error }

func (c checkpoints) Latest() (protocol.SignedCheckpoint, error) {
	return protocol.SignedCheckpoint{}, c.err
}

const token = "secret"

// access knows the operator's token only.
type access struct{}

func (access) Resolve(t string) (service.Identity, error) {
	switch t {
	case "":
		return service.Identity{Name: "public"}, nil
	case token:
		return service.Identity{Name: "operator", Caller: protocol.Caller{Operator: true}}, nil
	}
	return service.Identity{}, service.ErrUnauthorized
}

type blocks struct{}

func (blocks) DecisionBlock(cid.Cid) (*protocol.DecisionBlock, error) {
	return nil, errors.New("no blocks")
}

func server(t *testing.T, err error) *httptest.Server {
	t.Helper()
	a, e := api.New(api.Config{
		Access: access{}, Blocks: blocks{}, Records: records{err}, Store: nodetest.Store(t), Verifier: verifier{err}, Checkpoints: checkpoints{err},
		Status: nodeStatus, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: prometheus.NewRegistry(),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second},
	})
	if e != nil {
		t.Fatal(e)
	}
	// Services that fail with err fail so on every route, whatever status
	// err maps to: the answers are checked as errors of their status.
	s, _ := serve(t, a, err != nil)
	return s
}

func do(t *testing.T, s *httptest.Server, method, path, auth, ctype string, body []byte) (*http.Response, api.APIError) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ae api.APIError
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &ae); err != nil || ae.Code == "" || ae.Message == "" {
			t.Fatalf("%s %s: %d with a body that is not a JSON error: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp, ae
}

// TestErrorMap: each error a service answers becomes its status and code
// in one place, whatever the endpoint.
func TestErrorMap(t *testing.T) {
	consent := protocol.RecordCID([]byte("c"))
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{service.ErrPushback, 503, api.CodeOverloaded},
		{service.ErrClosed, 503, api.CodeOverloaded},
		{fmt.Errorf("wrapped: %w", service.ErrNoBundle), 404, api.CodeNotFound},
		{service.ErrEmptyLog, 404, api.CodeNotFound},
		{&protocol.Error{Code: protocol.CodeBadSignature, Msg: "no"}, 422, string(protocol.CodeBadSignature)},
		{&protocol.Error{Code: protocol.CodeInvalidBody, Field: "body.x", Msg: "no"}, 400, string(protocol.CodeInvalidBody)},
		{errors.New("disk on fire"), 500, api.CodeInternal},
	} {
		s := server(t, tc.err)
		for _, ep := range []struct{ method, path, ctype, body string }{
			{"POST", "/v1/records", api.MediaDagCBOR, "\xa0"},
			{"POST", "/v1/transfers/verify", api.MediaJSON, `{"consent":"` + consent.String() + `","from":"DE","to":"DE","sender":"12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw","recipient":"12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw","purpose":"x","categories":["face"],"tier":1,"retention_days":1}`},
			{"GET", "/v1/receipts/" + consent.String() + "/bundle", "", ""},
			{"GET", "/v1/log/checkpoint", "", ""},
		} {
			resp, ae := do(t, s, ep.method, ep.path, token, ep.ctype, []byte(ep.body))
			if resp.StatusCode != tc.status || ae.Code != tc.code {
				t.Errorf("%v on %s %s: %d %s, want %d %s", tc.err, ep.method, ep.path, resp.StatusCode, ae.Code, tc.status, tc.code)
			}
			if tc.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Errorf("%v: 503 without Retry-After", tc.err)
			}
			if tc.status == 500 && strings.Contains(ae.Message, "fire") {
				t.Errorf("an internal error's text reached the client: %q", ae.Message)
			}
		}
	}
}

func TestTokenAndRoutes(t *testing.T) {
	s := server(t, nil)
	if resp, ae := do(t, s, "POST", "/v1/records", "", api.MediaDagCBOR, []byte{0xa0}); resp.StatusCode != 401 || ae.Code != api.CodeUnauthorized ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %s", resp.StatusCode, ae.Code)
	}
	if resp, _ := do(t, s, "POST", "/v1/records", "wrong", api.MediaDagCBOR, []byte{0xa0}); resp.StatusCode != 401 {
		t.Errorf("a wrong token: %d", resp.StatusCode)
	}
	if resp, ae := do(t, s, "GET", "/v1/nothing", "", "", nil); resp.StatusCode != 404 || ae.Code != api.CodeNotFound {
		t.Errorf("an unknown route: %d %s", resp.StatusCode, ae.Code)
	}
	if resp, ae := do(t, s, "GET", "/v1/records/not-a-cid", "", "", nil); resp.StatusCode != 400 || ae.Code != string(protocol.CodeBadCID) {
		t.Errorf("a bad CID: %d %s", resp.StatusCode, ae.Code)
	}
	if resp, ae := do(t, s, "POST", "/v1/transfers/verify-batch", token, api.MediaJSON, []byte(`{"requests":[{},{},{}]}`)); resp.StatusCode != 413 {
		t.Errorf("a batch over the limit: %d %s", resp.StatusCode, ae.Code)
	}
	// A body of another type is refused before it is read (DESIGN.md §8):
	// a form post, or no type at all, is not a transfer request.
	for _, ep := range []struct{ path, ctype string }{
		{"/v1/transfers/verify", "text/plain"}, {"/v1/transfers/verify", "application/x-www-form-urlencoded"},
		{"/v1/transfers/verify-batch", ""}, {"/v1/records", api.MediaJSON},
	} {
		if resp, ae := do(t, s, "POST", ep.path, token, ep.ctype, []byte(`{"requests":[]}`)); resp.StatusCode != 415 || ae.Code != api.CodeUnsupportedMediaType {
			t.Errorf("POST %s as %q: %d %s, want 415 %s", ep.path, ep.ctype, resp.StatusCode, ae.Code, api.CodeUnsupportedMediaType)
		}
	}
	if resp, _ := do(t, s, "GET", "/v1/status", "", "", nil); resp.StatusCode != 200 {
		t.Errorf("status: %d", resp.StatusCode)
	}
}

// syncBuffer is a log destination the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRequestLog: every request is logged with its caller's name and a
// request ID, never its token; an internal error's message gives the ID
// under which the log has the fault.
func TestRequestLog(t *testing.T) {
	var logs syncBuffer
	a, err := api.New(api.Config{
		Access: access{}, Blocks: blocks{}, Records: records{errors.New("disk on fire")}, Store: nodetest.Store(t), Verifier: verifier{}, Checkpoints: checkpoints{},
		Status: nodeStatus, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := serve(t, a, false)
	do(t, s, "GET", "/v1/status", "", "", nil)
	resp, ae := do(t, s, "POST", "/v1/records", token, api.MediaDagCBOR, []byte{0xa0})
	if resp.StatusCode != 500 {
		t.Fatalf("POST: %d %+v", resp.StatusCode, ae)
	}
	do(t, s, "GET", "/v1/status", "not-a-token", "", nil)
	out := logs.String()
	if strings.Contains(out, token) || strings.Contains(out, "not-a-token") {
		t.Errorf("a token reached the log:\n%s", out)
	}
	for _, want := range []string{"caller=public", "caller=operator", "caller=unknown", "status=500", "status=401"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	id := regexp.MustCompile(`request ([0-9a-f]{16})`).FindStringSubmatch(ae.Message)
	if id == nil || !strings.Contains(out, "request_id="+id[1]+" err=") || strings.Count(out, "request_id="+id[1]) != 2 {
		t.Errorf("the internal error's message %q does not give the ID its log lines have:\n%s", ae.Message, out)
	}
}

// incidents serves n events of 64 KiB summaries, a batch at a time.
type incidents struct{ n uint64 }

func (f incidents) List(service.IncidentQuery) (service.IncidentPage, error) {
	return service.IncidentPage{}, nil
}
func (f incidents) Get(cid.Cid) (*service.Incident, error) { return nil, store.ErrNotFound }
func (f incidents) Events(q service.IncidentQuery, after uint64, limit int) ([]service.IncidentEvent, uint64, error) {
	var evs []service.IncidentEvent
	for seq := after + 1; seq <= f.n && len(evs) < limit; seq++ {
		evs = append(evs, service.IncidentEvent{Seq: seq, Incident: &service.Incident{ID: fmt.Sprint(seq), Summary: strings.Repeat("x", 64<<10), Notices: []string{fmt.Sprint(seq)}}})
	}
	if len(evs) == 0 {
		return nil, after, nil
	}
	return evs, evs[len(evs)-1].Seq, nil
}

// TestIncidentStreamDisconnectsSlowConsumer: a consumer that stops reading is
// disconnected once a write cannot complete within the stream's write
// timeout; what it did receive is every event from the first, in order,
// without a gap — never a skip.
func TestIncidentStreamDisconnectsSlowConsumer(t *testing.T) {
	var logs syncBuffer
	a, err := api.New(api.Config{
		Access: access{}, Blocks: blocks{}, Records: records{}, Store: nodetest.Store(t), Verifier: verifier{}, Checkpoints: checkpoints{},
		Status: nodeStatus, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second},
		Incidents: incidents{n: 4096}, Streams: api.Streams{Keepalive: time.Hour, WriteTimeout: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(a.Handler())
	defer s.Close()
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/incidents/stream?last_event_id=0 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n", token)
	// Read nothing until the server has given up on this consumer.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "too slow") {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not disconnect a consumer that reads nothing:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a log written by the server's goroutine
	}
	// What the consumer got: events 1, 2, 3... up to where it was cut, then
	// the end of the connection.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading what was sent: %v", err)
	}
	ids := regexp.MustCompile(`\nid: (\d+)\n`).FindAllSubmatch(got, -1)
	if len(ids) == 0 || len(ids) >= 4096 {
		t.Fatalf("the consumer received %d events of 4096 before it was cut", len(ids))
	}
	for i, m := range ids {
		if string(m[1]) != fmt.Sprint(i+1) {
			t.Fatalf("event %d has ID %s: a gap", i+1, m[1])
		}
	}
}
