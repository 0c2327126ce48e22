package api_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
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
	resp := followIncidents(t, api.Config{
		Store: nodetest.Store(t),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout},
		Incidents: quiet{},
		Streams:   api.Streams{Keepalive: 20 * time.Millisecond},
	})
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

// counting is an incident read model with nothing to tell that counts
// its reads.
type counting struct {
	quiet
	reads atomic.Int64
}

func (c *counting) Events(q service.IncidentQuery, after uint64, limit int) ([]service.IncidentEvent, uint64, error) {
	c.reads.Add(1)
	return c.quiet.Events(q, after, limit)
}

// TestIncidentStreamReadsForNotices: every accepted record wakes the
// stream; it reads the store again only when an incident notice was
// among them (a busy node's other records cost its subscribers nothing).
func TestIncidentStreamReadsForNotices(t *testing.T) {
	st := nodetest.Store(t)
	var mu sync.Mutex
	wake, waits := make(chan struct{}), 0
	accepted := func() <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		waits++
		return wake
	}
	fire := func() int {
		mu.Lock()
		defer mu.Unlock()
		close(wake)
		wake = make(chan struct{})
		return waits
	}
	waitsNow := func() int { mu.Lock(); defer mu.Unlock(); return waits }
	inc := &counting{}
	followIncidents(t, api.Config{
		Store: st,
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16, MaxPageBytes: 1 << 20,
			ReadHeaderTimeout: time.Minute, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: time.Minute},
		Incidents: inc, Accepted: accepted,
		Streams: api.Streams{Keepalive: time.Hour},
	})
	nodetest.Eventually(t, 10*time.Second, "the stream's first read", func() bool { return inc.reads.Load() == 1 && waitsNow() == 1 })

	fed := nodetest.NewFed(t, "api-test")
	for i := range 5 {
		_, id := nodetest.Key(t)
		nodetest.Put(t, st, fed.Accredit(t, id, protocol.RoleController))
		before := fire()
		nodetest.Eventually(t, 10*time.Second, "the stream to wait again", func() bool { return waitsNow() > before })
		if got := inc.reads.Load(); got != 1 {
			t.Fatalf("after %d accreditations the stream read the store %d times, want once (at its start)", i+1, got)
		}
	}
	key, _ := nodetest.Key(t)
	nodetest.Put(t, st, nodetest.Sign(t, key, &protocol.Incident{Ref: "r", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPClear, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "s"}))
	fire()
	nodetest.Eventually(t, 10*time.Second, "a read for the notice", func() bool { return inc.reads.Load() >= 2 })
}

// followIncidents starts an API of c (its store, limits, incidents and
// streams; the rest the package's fakes) and opens its incident stream,
// closed at the end of the test.
func followIncidents(t *testing.T, c api.Config) *http.Response {
	t.Helper()
	c.Access, c.Blocks, c.Records, c.Verifier, c.Checkpoints = access{}, blocks{}, records{}, verifier{}, checkpoints{}
	c.Status, c.Ready = nodeStatus, func() (bool, string) { return true, "" }
	c.Peers, c.Metrics = func() int { return 0 }, prometheus.NewRegistry()
	a, err := api.New(c)
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
	t.Cleanup(func() { resp.Body.Close() })
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	return resp
}
