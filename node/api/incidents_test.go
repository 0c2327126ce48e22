package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/store"
)

// quiet is an incident read model with nothing to tell.
type quiet struct{}

func (quiet) List(service.IncidentQuery) (service.IncidentPage, error) {
	return service.IncidentPage{}, nil
}
func (quiet) Get(cid.Cid) (*service.Incident, error) { return nil, store.ErrNotFound }
func (quiet) Events(_ service.IncidentQuery, after uint64, _ int) ([]service.IncidentEvent, uint64, error) {
	return nil, after, nil
}

// TestIncidentStreamOutlivesServerTimeouts: a stream lasts longer than the
// server's read and write timeouts, which bound ordinary requests.
func TestIncidentStreamOutlivesServerTimeouts(t *testing.T) {
	const timeout = 150 * time.Millisecond
	a, err := api.New(api.Config{
		Access: access{}, Blocks: blocks{}, Records: records{}, Store: nodetest.Store(t), Verifier: verifier{}, Checkpoints: checkpoints{},
		Status: nodeStatus, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: prometheus.NewRegistry(),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
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
