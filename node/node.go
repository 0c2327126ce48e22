package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/protocol/signature"
	"github.com/entente-net/entente/store"
)

// Config configures a node. A zero field means the documented default.
type Config struct {
	// Key is the node's identity (Ed25519). Required.
	Key crypto.PrivKey
	// Federation is the federation file. Required.
	Federation *config.Federation
	// Jurisdiction is the node's own jurisdiction; it must be in the
	// federation file. Required.
	Jurisdiction string
	// Trust restricts the jurisdictions this node recognises; empty means
	// all of the federation file. The node's own is always recognised.
	Trust []string
	// Listen are the libp2p listen multiaddrs. Default: TCP and QUIC on
	// 127.0.0.1 with ports chosen by the system.
	Listen []string
	// DisableReuseport makes the node's TCP sockets refuse a port another
	// socket holds, rather than share it (SO_REUSEPORT, libp2p's default).
	// Test networks that choose ports ahead set it, so a clash fails loudly.
	DisableReuseport bool
	// Announce, when set, are the addresses advertised to peers instead of
	// the listen addresses.
	Announce []string
	// DataDir is the Badger directory. Required unless InMemory.
	DataDir  string
	InMemory bool
	// APIAddr is the HTTP API's host:port; empty means no HTTP API.
	APIAddr string
	// APIToken is the bearer token POST endpoints require. Required when
	// APIAddr is set.
	APIToken string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReconnectInterval is how often the node dials members it is not
	// connected to. Default 5s.
	ReconnectInterval time.Duration
	// MaxPendingIngest bounds records being ingested at once from the API;
	// past it the API answers 503 overloaded. Default 4096.
	MaxPendingIngest int
	// SyncInterval is how often the node reconciles its records with each
	// connected peer (it also does when a peer connects). Default 30s.
	SyncInterval time.Duration
	// DisableSync turns reconciliation off: the node then learns records
	// only by gossip and fetch. For tests of those paths alone.
	DisableSync bool
	// Gate, when set, is asked about every peer after the membership test:
	// false refuses it. Test networks use it to cut a federation in two.
	Gate func(peer.ID) bool
	// CheckpointInterval is how often the node signs a checkpoint of its
	// log, when the log grew since the last one. Default 10s.
	CheckpointInterval time.Duration
	// WitnessInterval is how often the node asks each connected peer for
	// its latest checkpoint and witnesses it (witness.go). Default 10s.
	WitnessInterval time.Duration
	// MaxConcurrentRequests bounds HTTP requests in flight; past it the API
	// answers 503 overloaded. Default 256.
	MaxConcurrentRequests int
	// MaxBatch bounds the requests of one verify-batch call. Default 1000.
	MaxBatch int
	// MaxBatchBytes bounds a verify-batch body. Default 1 MiB.
	MaxBatchBytes int
	// HTTPTimeouts of the API server; zero fields take defaults.
	HTTPTimeouts HTTPTimeouts
}

// HTTPTimeouts are the API server's timeouts.
type HTTPTimeouts struct {
	ReadHeader time.Duration // default 5s
	Read       time.Duration // default 30s
	Write      time.Duration // default 60s
	Idle       time.Duration // default 120s
}

func (c *Config) validate() error {
	switch {
	case c.Key == nil:
		return errors.New("node config: Key is required")
	case c.Key.Type() != crypto.Ed25519:
		return errors.New("node config: Key must be Ed25519")
	case c.Federation == nil:
		return errors.New("node config: Federation is required")
	case c.DataDir == "" && !c.InMemory:
		return errors.New("node config: DataDir is required (or InMemory)")
	case c.APIAddr != "" && c.APIToken == "":
		return errors.New("node config: APIToken is required with APIAddr")
	case c.CheckpointInterval < 0:
		return fmt.Errorf("node config: CheckpointInterval is negative (%s)", c.CheckpointInterval)
	}
	if _, ok := c.Federation.Jurisdiction(c.Jurisdiction); !ok {
		return fmt.Errorf("node config: Jurisdiction %q is not in federation %q", c.Jurisdiction, c.Federation.Name)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = 5 * time.Second
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = 256
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 30 * time.Second
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.WitnessInterval <= 0 {
		c.WitnessInterval = 10 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.MaxPendingIngest == 0 {
		c.MaxPendingIngest = 4096
	}
	t := &c.HTTPTimeouts
	t.ReadHeader = orDefault(t.ReadHeader, 5*time.Second)
	t.Read = orDefault(t.Read, 30*time.Second)
	t.Write = orDefault(t.Write, 60*time.Second)
	t.Idle = orDefault(t.Idle, 120*time.Second)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Node is a running entente node. Make one with New; Close stops it.
type Node struct {
	cfg   Config
	log   *slog.Logger
	id    peer.ID
	fed   *config.Federation // restricted to the recognised jurisdictions
	trust *trustView

	store   *store.Store
	host    host.Host
	ps      *pubsub.PubSub
	topic   *pubsub.Topic
	unrelay pubsub.RelayCancelFunc
	// psCancel stops pubsub, after the outbox's publisher.
	psCancel context.CancelFunc
	out      *outbox
	api      *http.Server
	apiLn    net.Listener
	metrics  *metrics
	ingestQ  chan struct{} // semaphore bounding API ingests
	// rules caches compiled rule conditions for decisions.
	rules *protocol.RuleEngine
	// verifySem bounds signature checks in flight (verify).
	verifySem chan struct{}
	// keys holds precomputed tables of the keys that sign often.
	keys *signature.Keys
	// evidence shares decisions' store reads between decisions.
	evidence *evidenceCache

	notify *notifier
	parked *parking
	sync   *syncer
	fetch  *fetcher // the fetch protocol (fetch.go)
	// checkpoints signs and keeps the log's checkpoints (checkpoint.go).
	checkpoints *checkpointer
	// witness verifies and cosigns peers' checkpoints (witness.go).
	witness *witness

	nodeAddrsMu sync.Mutex
	nodeAddrs   map[peer.ID][]ma.Multiaddr // from node accreditations

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	started   time.Time
}

// New starts a node: opens the store, starts the libp2p host, joins the
// federation's gossip topic, starts the API and begins dialling members.
// On error everything opened so far is closed again.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, notify: newNotifier(), parked: newParking(), started: cfg.Now()}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.id, err = peer.IDFromPrivateKey(cfg.Key); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.log = n.log.With("node", shortID(n.id))
	trust := cfg.Trust
	if len(trust) > 0 && !containsString(trust, cfg.Jurisdiction) {
		trust = append(append([]string(nil), trust...), cfg.Jurisdiction)
	}
	if len(trust) > 0 {
		if n.fed, err = cfg.Federation.Restrict(trust); err != nil {
			return nil, fmt.Errorf("node: trust: %w", err)
		}
	} else {
		n.fed = cfg.Federation
	}
	n.out = newOutbox(n.ctx)
	n.store, err = store.Open(store.Options{Dir: cfg.DataDir, InMemory: cfg.InMemory, Logger: n.log.With("component", "store"), OnCommit: n.out.committed})
	if err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	n.trust = newTrustView(n.fed, n.store)
	n.nodeAddrs = map[peer.ID][]ma.Multiaddr{}
	if err := n.loadNodeAddrs(); err != nil {
		return nil, fmt.Errorf("node: reading node accreditations: %w", err)
	}
	n.metrics = newMetrics(n)
	n.ingestQ = make(chan struct{}, cfg.MaxPendingIngest)
	n.verifySem = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))
	n.rules = protocol.NewRuleEngine(4096)
	n.keys = signature.NewKeys(0)
	n.evidence = newEvidenceCache(defaultEvidenceAnswers)
	if err := n.startCheckpoints(); err != nil {
		return nil, err
	}

	if err := n.startHost(); err != nil {
		return nil, err
	}
	if err := n.startFetch(); err != nil {
		return nil, err
	}
	if err := n.startGossip(); err != nil {
		return nil, err
	}
	if err := n.startSync(); err != nil {
		return nil, err
	}
	if err := n.startWitness(); err != nil {
		return nil, err
	}
	if cfg.APIAddr != "" {
		if err := n.startAPI(); err != nil {
			return nil, err
		}
	}
	n.wg.Add(2)
	go n.dialLoop()
	go n.retryParked()
	n.log.Info("node started", "peer_id", n.id.String(), "jurisdiction", cfg.Jurisdiction,
		"federation", cfg.Federation.Name, "addrs", n.host.Addrs(), "api", n.APIAddr())
	return n, nil
}

// Close stops the node: the API, the dial loop, gossip, the host, then the
// store, in that order (reverse of opening). It waits for every goroutine
// the node started and is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		var errs []error
		if n.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.api.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("api: %w", err))
				n.api.Close()
			}
			cancel()
		}
		if n.unrelay != nil {
			n.unrelay()
		}
		n.wg.Wait()
		if n.psCancel != nil {
			n.psCancel()
		}
		if n.topic != nil {
			n.topic.Close()
		}
		if n.host != nil {
			if err := n.host.Close(); err != nil {
				errs = append(errs, fmt.Errorf("host: %w", err))
			}
		}
		if n.store != nil {
			if err := n.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("store: %w", err))
			}
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("node stopped")
	})
	return n.closeErr
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.id }

// Jurisdiction is the node's own jurisdiction.
func (n *Node) Jurisdiction() string { return n.cfg.Jurisdiction }

// Addrs are the node's libp2p listen addresses, each ending in /p2p/<id>.
func (n *Node) Addrs() []ma.Multiaddr {
	suffix, _ := ma.NewMultiaddr("/p2p/" + n.id.String())
	var out []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		out = append(out, a.Encapsulate(suffix))
	}
	return out
}

// APIAddr is the address the HTTP API listens on ("" without an API).
func (n *Node) APIAddr() string {
	if n.apiLn == nil {
		return ""
	}
	return n.apiLn.Addr().String()
}

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Store is the node's record store.
func (n *Node) Store() *store.Store { return n.store }

// Registry is the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }

// Get returns a held record.
func (n *Node) Get(c cid.Cid) (*protocol.Record, error) { return n.store.Get(c) }

// WaitRecord blocks until the node holds c or ctx ends.
func (n *Node) WaitRecord(ctx context.Context, c cid.Cid) error {
	for {
		ch := n.notify.wait()
		ok, err := n.store.Has(c)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", c, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// Accepted returns a channel that is closed at the next accepted record:
// a broadcast for waiters (see WaitRecord).
func (n *Node) Accepted() <-chan struct{} { return n.notify.wait() }

func shortID(id peer.ID) string {
	s := id.String()
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return s
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// notifier is a broadcast: wait returns a channel closed at the next fire.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (b *notifier) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *notifier) fire() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}
