package api_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
)

// endless is an incident read model with an event for every seq, each
// large: a stream of it never runs dry.
type endless struct{}

func (endless) List(service.IncidentQuery) (service.IncidentPage, error) {
	return service.IncidentPage{}, nil
}
func (endless) Get(cid.Cid) (*service.Incident, error) { return nil, nil }
func (endless) Events(_ service.IncidentQuery, after uint64, limit int) ([]service.IncidentEvent, uint64, error) {
	evs := make([]service.IncidentEvent, limit)
	for i := range evs {
		evs[i] = service.IncidentEvent{Seq: after + uint64(i) + 1, Incident: &service.Incident{ID: "x", Summary: strings.Repeat("s", 32<<10)}}
	}
	return evs, after + uint64(limit), nil
}

// TestIncidentStreamDisconnectsSlowConsumer: a consumer that stops
// reading is disconnected once a write cannot complete in time, rather
// than kept (and its events skipped or queued without bound).
func TestIncidentStreamDisconnectsSlowConsumer(t *testing.T) {
	a, err := api.New(api.Config{
		Token: token, Records: records{}, Store: nodetest.Store(t), Verifier: verifier{}, Checkpoints: checkpoints{},
		Status: func() any { return nil }, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: prometheus.NewRegistry(),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second},
		Incidents: endless{},
		Streams:   api.Streams{Keepalive: time.Hour, WriteTimeout: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	var once sync.Once
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			once.Do(func() { close(closed) })
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := conn.Write([]byte("GET /v1/incidents/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Never read: the socket buffers fill, a write blocks past its deadline.
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the server still holds the connection of a consumer that stopped reading")
	}
}

// quiet is an incident read model with nothing to tell.
type quiet struct{ endless }

func (quiet) Events(_ service.IncidentQuery, after uint64, _ int) ([]service.IncidentEvent, uint64, error) {
	return nil, after, nil
}

// TestIncidentStreamOutlivesServerTimeouts: a stream lasts longer than the
// server's read and write timeouts, which bound ordinary requests.
func TestIncidentStreamOutlivesServerTimeouts(t *testing.T) {
	const timeout = 150 * time.Millisecond
	a, err := api.New(api.Config{
		Token: token, Records: records{}, Store: nodetest.Store(t), Verifier: verifier{}, Checkpoints: checkpoints{},
		Status: func() any { return nil }, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: prometheus.NewRegistry(),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout},
		Incidents: quiet{},
		Streams:   api.Streams{Keepalive: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown() })
	resp, err := http.Get("http://" + a.Addr() + "/v1/incidents/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	start := time.Now()
	buf := make([]byte, 4096)
	var got int
	for time.Since(start) < 10*timeout {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("the stream ended after %s (%d keepalive bytes): %v", time.Since(start), got, err)
		}
		got += n
	}
}
