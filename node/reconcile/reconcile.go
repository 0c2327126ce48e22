// Package reconcile keeps a node's record set in step with its peers', so
// that a node that was away, restarted or partitioned ends up with what
// its peers hold. The set is store.Syncable records (every record every
// member may receive: protocol.AudienceOf), keyed by (issued_at, CID) and
// reconciled with negentropy (range-based set reconciliation) over
// protocol.SyncProtocolID: the initiator learns which records it lacks and
// fetches them from that peer; the peer, which runs its own sessions,
// fetches what it lacks. A node that holds nothing asks for the peer's
// whole set instead, over protocol.SyncAllProtocolID. The bytes are
// protocol's ("Wire protocols").
//
// The service starts a session with a peer when it connects and with
// every connected peer each Interval, one session per peer at a time and
// at most four at once.
//
// Serving is bounded per peer (syncPeerLimit, syncAllPeerLimit): a peer
// gets at most two sessions at once and two a second, and at most one
// sync-all at a time, three in a row and then one every ten seconds;
// past that its stream is reset and counted
// (entente_p2p_streams_throttled_total). A sync-all costs the server its
// whole set, so that limit is what bounds a member that asks for it over
// and over (testnet's TestSyncAllStormIsBounded).
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Ingester ingests the records a session brings from peer from (the
// ingest pipeline, which bounds what it parks per peer).
type Ingester interface {
	IngestOrParkFrom(ctx context.Context, r *protocol.Record, src service.Source, from peer.ID) (service.Accepted, bool, error)
}

// Downloader asks one peer for records by CID (the fetch service).
type Downloader interface {
	FetchFrom(ctx context.Context, p peer.ID, cids []cid.Cid) (map[cid.Cid]*protocol.Record, error)
}

// Config configures the service. A zero field means the documented
// default.
type Config struct {
	Host     host.Host    // required
	Store    *store.Store // required: what sync-all serves
	Index    *Index       // required: the sync set
	Ingest   Ingester     // required
	Download Downloader   // required
	// Interval is how often the node reconciles with each connected peer
	// (it also does when a peer connects). Default 30s.
	Interval time.Duration
	// Disabled serves peers' sessions but starts none: the node then
	// learns records only by gossip and fetch. For tests of those paths.
	Disabled bool
	Now      service.Clock
	Logger   *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

const (
	sessionTime    = 2 * time.Minute
	maxSessions    = 4 // sessions this node initiates at once
	fetchChunk     = 64
	ingestWorkers  = 128
	serviceName    = "entente.sync"
	sessionMemory  = 2 * protocol.SyncMaxFrame
	defaultEvery   = 30 * time.Second
	connectBacklog = 64
)

// Each peer's use of the two protocols this service serves. A node starts
// at most one session with a peer at a time, at connection and then every
// Interval (30s by default, 1s in the fastest test networks): a sync
// session a second, sustained, leaves it room twice over. Sync-all is
// what a node that holds nothing asks, once, and it makes the server send
// its whole set (100 000 records: 34 MB, 6 s of its CPU to read and
// write): one at a time per peer, three in a row, then one every ten
// seconds; an empty node that asks again every Interval because its
// peers hold nothing either is refused at no cost and asks again. Over
// its limit a peer's stream is reset at once (no waiting: the next
// Interval retries) and counted in entente_p2p_streams_throttled_total.
var (
	syncPeerLimit    = service.PeerLimit{Concurrent: 2, Rate: 2, Burst: 10}
	syncAllPeerLimit = service.PeerLimit{Concurrent: 1, Rate: 0.1, Burst: 3}
)

// PeerStatus is the sync state with one peer, as status shows it.
type PeerStatus struct {
	PeerID     string `json:"peer_id"`
	InProgress bool   `json:"in_progress"`
	Sessions   int    `json:"sessions"`
	LastEnd    string `json:"last_end,omitempty"`
	Rounds     int    `json:"rounds"`
	BytesOut   int    `json:"bytes_out"`
	BytesIn    int    `json:"bytes_in"`
	FetchBytes int    `json:"fetch_bytes"`
	Need       int    `json:"need"`
	Have       int    `json:"have"`
	Fetched    int    `json:"fetched"`
	LastError  string `json:"last_error,omitempty"`
}

// Result is what one session did.
type Result struct {
	Rounds            int // messages the initiator sent
	BytesOut, BytesIn int // negentropy bytes each way
	Need, Have        int // records this node lacked / the peer lacked
	Fetched           int // records fetched and accepted
	FetchBytes        int // fetch requests and answers, with their framing (not libp2p's)
}

// Service is the node's reconciliation. Make one with New; Close stops it.
type Service struct {
	cfg      Config
	log      *slog.Logger
	g        *service.Group
	wake     chan peer.ID
	slots    chan struct{}
	sessions prometheus.Counter
	// lastSuccess is when a session this node initiated last ended
	// without error (Unix seconds; 0 before the first).
	lastSuccess prometheus.Gauge
	// sendingAll is the sync-all answers being sent now.
	sendingAll prometheus.Gauge
	syncLimit  *service.PeerLimiter // syncPeerLimit
	allLimit   *service.PeerLimiter // syncAllPeerLimit

	mu    sync.Mutex
	peers map[peer.ID]*PeerStatus
	// synced is set once a session this node started has completed.
	synced atomic.Bool
}

// New serves peers' sessions and, unless Disabled, starts the loop.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Host == nil || cfg.Store == nil || cfg.Index == nil || cfg.Ingest == nil || cfg.Download == nil:
		return nil, errors.New("reconcile: Host, Store, Index, Ingest and Download are required")
	case cfg.Interval < 0:
		return nil, fmt.Errorf("reconcile: Interval is negative (%s)", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = defaultEvery
	}
	service.Defaults(&cfg.Now, &cfg.Logger)
	s := &Service{cfg: cfg, log: cfg.Logger, g: service.NewGroup(),
		wake: make(chan peer.ID, connectBacklog), slots: make(chan struct{}, maxSessions),
		peers: map[peer.ID]*PeerStatus{},
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_sync_sessions_total",
			Help: "Reconciliation sessions this node initiated.",
		}),
	}
	s.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "entente_sync_last_success_timestamp_seconds",
		Help: "When a reconciliation session this node initiated last completed without error (Unix seconds; 0 before the first).",
	})
	s.sendingAll = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "entente_sync_all_serving",
		Help: "Sync-all answers (a node's whole sync set) this node is sending now.",
	})
	if err := service.Register(cfg.Registerer, "reconcile", s.sessions, s.lastSuccess, s.sendingAll); err != nil {
		return nil, err
	}
	var err error
	if s.syncLimit, err = service.NewPeerLimiter(protocol.SyncProtocolID, syncPeerLimit, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	if s.allLimit, err = service.NewPeerLimiter(protocol.SyncAllProtocolID, syncAllPeerLimit, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	s.g.ServeStreams(cfg.Host, protocol.SyncProtocolID, s.handleSync)
	s.g.ServeStreams(cfg.Host, protocol.SyncAllProtocolID, s.handleSyncAll)
	if !cfg.Disabled {
		notifee := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { s.poke(c.RemotePeer()) }}
		cfg.Host.Network().Notify(notifee)
		// Peers that connected before the notifiee was in place.
		for _, p := range cfg.Host.Network().Peers() {
			s.poke(p)
		}
		s.g.Go(func(ctx context.Context) {
			defer cfg.Host.Network().StopNotify(notifee)
			s.loop(ctx)
		})
	}
	return s, nil
}

// Close stops the loop and the sessions, served and initiated, and waits
// for them. It is idempotent.
func (s *Service) Close() { s.g.Close() }

// poke asks the loop for a session with p; it never blocks.
func (s *Service) poke(p peer.ID) {
	select {
	case s.wake <- p:
	default: // the loop is behind; the interval will catch up
	}
}

// loop starts a session with a peer when it connects and with every
// connected peer each Interval, one session per peer at a time.
func (s *Service) loop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	var sessions sync.WaitGroup
	defer sessions.Wait()
	start := func(p peer.ID) {
		if !s.begin(p) {
			return
		}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			defer s.end(p)
			select {
			case s.slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-s.slots }()
			s.With(ctx, p)
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-s.wake:
			start(p)
		case <-t.C:
			for _, p := range s.cfg.Host.Network().Peers() {
				start(p)
			}
		}
	}
}

// With runs one session with p as the initiator: reconcile, then fetch
// and ingest what this node lacks (or, holding nothing, take p's whole
// set).
func (s *Service) With(ctx context.Context, p peer.ID) (Result, error) {
	if s.g.Closed() {
		return Result{}, service.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.g.Context(), cancel)()
	var res Result
	var err error
	if s.cfg.Index.Len() == 0 {
		res, err = s.syncAll(ctx, p)
	} else {
		var need []cid.Cid
		res, need, err = s.reconcile(ctx, p)
		if err == nil && len(need) > 0 {
			res.Fetched, res.FetchBytes, err = s.fetchNeeded(ctx, p, need)
		}
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("sync failed", "peer", p.String(), "err", err)
	}
	s.record(p, res, err)
	s.sessions.Inc()
	if err == nil {
		s.lastSuccess.Set(float64(s.cfg.Now().UnixMilli()) / 1e3)
	}
	return res, err
}

// begin marks a session with p as running; false if one already is.
func (s *Service) begin(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statusOf(p)
	if st.InProgress {
		return false
	}
	st.InProgress = true
	return true
}

func (s *Service) end(p peer.ID) {
	s.mu.Lock()
	s.statusOf(p).InProgress = false
	s.mu.Unlock()
}

// statusOf is p's status entry; s.mu is held.
func (s *Service) statusOf(p peer.ID) *PeerStatus {
	st := s.peers[p]
	if st == nil {
		st = &PeerStatus{PeerID: p.String()}
		s.peers[p] = st
	}
	return st
}

func (s *Service) record(p peer.ID, res Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statusOf(p)
	st.Sessions++
	st.LastEnd = s.cfg.Now().UTC().Format(time.RFC3339)
	st.Rounds, st.BytesOut, st.BytesIn = res.Rounds, res.BytesOut, res.BytesIn
	st.Need, st.Have, st.Fetched, st.FetchBytes = res.Need, res.Have, res.Fetched, res.FetchBytes
	st.LastError = ""
	if err != nil {
		st.LastError = err.Error()
	} else {
		s.synced.Store(true)
	}
}

// Synced reports whether a session this node started has completed since
// it started (what /readyz waits for); always true when Disabled, which
// starts none.
func (s *Service) Synced() bool { return s.cfg.Disabled || s.synced.Load() }

// Status lists the sync state with each peer a session ran with, by peer
// ID.
func (s *Service) Status() []PeerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PeerStatus, 0, len(s.peers))
	for _, st := range s.peers {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PeerID < out[j].PeerID })
	return out
}
