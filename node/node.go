package node

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/access"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/checkpoint"
	"github.com/entente-net/entente/node/deliver"
	"github.com/entente-net/entente/node/fetch"
	"github.com/entente-net/entente/node/gossip"
	"github.com/entente-net/entente/node/ingest"
	"github.com/entente-net/entente/node/notices"
	"github.com/entente-net/entente/node/reconcile"
	"github.com/entente-net/entente/node/rejoin"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/trust"
	"github.com/entente-net/entente/node/verify"
	"github.com/entente-net/entente/node/witness"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Node is a running entente node. Make one with New; Close stops it.
type Node struct {
	cfg     Config
	log     *slog.Logger
	id      peer.ID
	fed     *config.Federation // restricted to the recognised jurisdictions
	trust   *trust.View
	store   *store.Store
	host    host.Host
	members *members
	outbox  *gossip.Outbox
	reg     *prometheus.Registry
	index   *reconcile.Index
	svc     Services
	deliver atomic.Pointer[deliver.Service] // svc.Deliver, for ingest's hook
	api     *api.API
	started time.Time
	build   Build // BuildInfo, read once
	// fedDigest names the federation file as this node read it, whole
	// (config.Federation.Digest).
	fedDigest string
	// verifierKey is the note verifier key of this node's checkpoints.
	verifierKey string
	closing     atomic.Bool

	closeOnce sync.Once
	closeErr  error
	closers   []func() error // in the order opened; Close runs them backwards
}

// Services are the node's owned services, for the callers that drive one
// directly (testnet, tests, benchmarks). Each is built, wired, started and
// stopped by the node; callers must not close them.
type Services struct {
	Ingest      *ingest.Pipeline
	Fetch       *fetch.Service
	Gossip      *gossip.Service
	Sync        *reconcile.Service
	Checkpoints *checkpoint.Service
	Witness     *witness.Service
	// Rejoin holds signing after a restore until the peers say what
	// they hold (DESIGN.md §6).
	Rejoin  *rejoin.Service
	Verify  *verify.Service
	Deliver *deliver.Service
	// Access names the API's callers; nil without an API.
	Access *access.Service
	// Notices tells platforms of revoked and superseded consents.
	Notices *notices.Service
}

// New starts a node: opens the store, builds its services over it, starts
// the libp2p host, joins the federation's gossip topic, starts the API and
// begins dialling members. On error everything opened so far is closed
// again.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), started: cfg.Now(), build: BuildInfo()}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.id, err = peer.IDFromPrivateKey(cfg.Key); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.log = n.log.With("node", service.ShortID(n.id))
	if n.fed, err = cfg.recognised(); err != nil {
		return nil, err
	}
	if n.fedDigest, err = cfg.Federation.Digest(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.verifierKey, err = protocol.CheckpointVerifierKey(cfg.Federation.Name, n.id); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := compose(n); err != nil {
		return nil, err
	}
	n.log.Info("node started", "peer_id", n.id.String(), "jurisdiction", cfg.Jurisdiction,
		"federation", cfg.Federation.Name, "version", n.build.Version, "addrs", n.host.Addrs(), "api", n.APIAddr())
	warnIfNotMember(n)
	return n, nil
}

// Close stops the node: its API, its services, the host, then the store,
// in reverse order of opening. It waits for every goroutine the node
// started and is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		var errs []error
		for i := len(n.closers) - 1; i >= 0; i-- {
			if err := n.closers[i](); err != nil {
				errs = append(errs, err)
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
	if n.api == nil {
		return ""
	}
	return n.api.Addr()
}

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Store is the node's record store.
func (n *Node) Store() *store.Store { return n.store }

// Registry is the node's Prometheus registry (every service's metrics).
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Services are the node's services.
func (n *Node) Services() Services { return n.svc }

// Deliveries is where the direct delivery of record c stands, per target
// jurisdiction (deliver.Service.State): what the API shows.
func (n *Node) Deliveries(c cid.Cid) map[string]service.Delivery {
	if n.svc.Deliver == nil {
		return nil
	}
	return n.svc.Deliver.State(c)
}
