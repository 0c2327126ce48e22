// Package deliver is direct delivery (DESIGN.md §6): it pushes a record
// only the nodes of some jurisdictions may receive (a TLP:RED notice:
// protocol.Audience.Delivered), or that they keep (a receipt this node
// signed, with the decision blocks of each jurisdiction:
// protocol.ReceiptAudience), to every node of those jurisdictions, over
// protocol.DeliverProtocolID, until each has acknowledged it; and it
// answers such pushes. The bytes are protocol's ("Wire protocols").
// deliver.go holds the service and its state, outbox.go the making of
// entries, push.go the workers, server.go the receiving side.
//
// # Sender
//
// When the node accepts such a record (Accepted, called by ingest once
// the record is durable and before the put returns, so before the API
// acknowledges it), the service puts one outbox entry per target node in
// the store (store.OutboxEntry): every node of every jurisdiction of the
// record's audience but this one, founding or accredited, as the
// Directory names them. The entries are durable before Accepted returns.
// A worker per target node pushes that node's pending records, one stream
// each; it asks protocol.MayReceive before every push, so a node whose
// accreditation lapsed gets nothing. A push succeeds when the answer is an
// acknowledgement that verifies against the peer at the other end of the
// stream (protocol.DeliveryAck.Verify), for a jurisdiction of the
// audience of which the peer is a node; the entry is then kept as
// acknowledged, with the signature. Anything else (no connection, a
// refusal, a bad or forged acknowledgement) is a failure: the worker waits
// and tries again, with exponential backoff per node (MinBackoff doubling
// to MaxBackoff, with jitter: a wait of b/2 plus a random part of b/2),
// forever, and at once when the node connects. Every attempt is counted
// in the entry, durably. A node that is no longer of the audience when
// its turn comes (its accreditation lapsed or was revoked) is no target
// any more: its entry is dropped.
//
// A restart loses nothing: New reloads the outbox and restarts the
// workers, and it looks through the held incidents for any whose entries
// are missing (a crash between the record's put and its entries') or
// whose audience gained a node since, and adds them.
//
// # Receiver
//
// A push is served only to a member, at most 8 at once and 1 000 a
// second from one peer (servePeerLimit; a push over the rate waits up to
// 2 s, then is reset and counted in entente_p2p_streams_throttled_total;
// the sender retries). The receiver decodes the record,
// checks that it may receive it itself (protocol.MayReceive) and ingests
// it (service.SourceDeliver: exempt from freshness, as sync is); once the
// record is durable it answers with its acknowledgement, signed by its
// node key for its own jurisdiction. A record it may not receive, or
// does not accept (its issuer not authorised yet, say), is refused; the
// sender tries again later. Malformed input resets the stream.
//
// # State
//
// State says, per target jurisdiction of a record, whether every one of
// its nodes acknowledged it (service.DeliveryDelivered, with the last
// acknowledgement's time) or not yet (service.DeliveryPending), and the
// attempts made; it reads the durable entries, so it survives a restart.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Store is what delivery needs of the store (*store.Store).
type Store interface {
	Get(c cid.Cid) (*protocol.Record, error)
	List(q store.Query) ([]store.Entry, uint64, error)
	PutOutbox(e store.OutboxEntry) error
	PutOutboxes(es []store.OutboxEntry) error
	DeleteOutbox(c cid.Cid, p peer.ID) error
	ListOutbox() ([]store.OutboxEntry, error)
	// GetBlock and PutBlocks read and keep receipts' decision blocks.
	GetBlock(c cid.Cid) ([]byte, error)
	PutBlocks(ctx context.Context, receipt cid.Cid, blocks [][]byte) error
}

// Trust is what delivery reads of the federation's records: who may
// receive what, and receipts' decision blocks, decoded (the trust view,
// which caches them).
type Trust interface {
	protocol.TrustView
	DecisionBlock(c cid.Cid) (*protocol.DecisionBlock, error)
}

// Ingester stores a pushed record (the ingest pipeline).
type Ingester interface {
	Ingest(ctx context.Context, r *protocol.Record, src service.Source) (service.Accepted, error)
}

// Directory names the nodes of a jurisdiction now: its founding nodes and
// the holders of live node accreditations, with the addresses known for
// them (the node's members).
type Directory interface {
	NodesOf(jurisdiction string) []peer.AddrInfo
}

// Config configures the delivery service. A zero field means the
// documented default.
type Config struct {
	Host      host.Host // required
	Store     Store     // required
	Trust     Trust     // required: who may receive what
	Ingest    Ingester  // required
	Directory Directory // required
	// IsMember says whether a peer may push records to this node.
	IsMember func(peer.ID) bool // required
	// Key is the node's key, which signs acknowledgements. Required.
	Key crypto.PrivKey
	// Jurisdiction is the node's own, for which it acknowledges.
	// Required.
	Jurisdiction string
	// MinBackoff is the first wait after a failed push to a node; it
	// doubles after each failure up to MaxBackoff. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one push. Default 10s.
	Timeout time.Duration
	Now     service.Clock
	Logger  *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Defaults.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultTimeout    = 10 * time.Second

	serviceName = "entente.deliver"
)

var (
	errRefused  = errors.New("deliver: the node refused the record")
	errNotFor   = errors.New("deliver: the node may not receive the record now")
	errAckScope = errors.New("deliver: the acknowledgement is for a jurisdiction the node is not a node of, or not of the record's audience")
)

// Service is direct delivery, sender and receiver. Make one with New;
// Close stops it.
type Service struct {
	cfg      Config
	log      *slog.Logger
	self     peer.ID
	g        *service.Group
	notifee  *network.NotifyBundle
	enqueues sync.Mutex // serialises the making of entries
	// receipts are the node's new receipts whose entries are yet to be
	// made (receiptLoop): off the verify path, many to one write.
	receipts chan *protocol.Record

	mu      sync.Mutex
	closed  bool
	entries map[cid.Cid]map[peer.ID]store.OutboxEntry
	workers map[peer.ID]chan struct{} // a worker's wake-up, by target node

	pending  prometheus.GaugeFunc
	attempts *prometheus.CounterVec
	served   *prometheus.CounterVec
	limit    *service.PeerLimiter // each peer's pushes (servePeerLimit)
}

// New starts the service: it serves pushes, reloads the outbox and
// restarts the pushing.
func New(cfg Config) (*Service, error) {
	if cfg.Host == nil || cfg.Store == nil || cfg.Trust == nil || cfg.Ingest == nil || cfg.Directory == nil || cfg.IsMember == nil || cfg.Key == nil {
		return nil, errors.New("deliver: Host, Store, Trust, Ingest, Directory, IsMember and Key are required")
	}
	if !protocol.ValidJurisdiction(cfg.Jurisdiction) {
		return nil, fmt.Errorf("deliver: Jurisdiction %q is not a jurisdiction code", cfg.Jurisdiction)
	}
	if cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 || cfg.Timeout < 0 {
		return nil, errors.New("deliver: MinBackoff, MaxBackoff and Timeout may not be negative")
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("deliver: MaxBackoff %s is below MinBackoff %s", cfg.MaxBackoff, cfg.MinBackoff)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	service.Defaults(&cfg.Now, &cfg.Logger)
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger, self: self, g: service.NewGroup(),
		entries: map[cid.Cid]map[peer.ID]store.OutboxEntry{},
		workers: map[peer.ID]chan struct{}{}, receipts: make(chan *protocol.Record, 1024),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_deliver_attempts_total",
			Help: "Pushes of records to nodes by direct delivery, by result (acked; refused by the node; failed: no answer; bad_ack: an acknowledgement that does not verify or is out of scope; withheld: the node may not receive the record now; too_large: a receipt whose blocks for the node are over what one push carries).",
		}, []string{"result"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_deliver_served_total",
			Help: "Pushes from peers, by answer (acked, refused, reset, throttled).",
		}, []string{"result"}),
	}
	s.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "entente_deliver_pending",
		Help: "Deliveries of records to nodes not acknowledged yet (the outbox).",
	}, func() float64 { return float64(s.countPending()) })
	if err := service.Register(cfg.Registerer, "deliver", s.pending, s.attempts, s.served); err != nil {
		return nil, err
	}
	if s.limit, err = service.NewPeerLimiter(protocol.DeliverProtocolID, servePeerLimit, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	list, err := cfg.Store.ListOutbox()
	if err != nil {
		return nil, fmt.Errorf("deliver: reading the outbox: %w", err)
	}
	for _, e := range list {
		s.keep(e)
	}
	s.g.ServeStreams(cfg.Host, protocol.DeliverProtocolID, s.handle)
	s.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { s.wake(c.RemotePeer()) }}
	cfg.Host.Network().Notify(s.notifee)
	s.mu.Lock()
	for _, byPeer := range s.entries {
		for p, e := range byPeer {
			if !e.Acked() {
				s.startWorkerLocked(p)
			}
		}
	}
	s.mu.Unlock()
	s.g.Go(s.receiptLoop)
	if err := s.catchUp(); err != nil {
		s.Close()
		return nil, fmt.Errorf("deliver: reading the held incidents: %w", err)
	}
	return s, nil
}

// Close stops serving and pushing and waits for both. It is idempotent.
func (s *Service) Close() {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	if first {
		s.cfg.Host.Network().StopNotify(s.notifee)
	}
	s.g.Close()
}

func (s *Service) countPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, byPeer := range s.entries {
		for _, e := range byPeer {
			if !e.Acked() {
				n++
			}
		}
	}
	return n
}

// State is where the delivery of record c stands, per target
// jurisdiction: pending until every node of the jurisdiction acknowledged
// it, then delivered with the time of the last acknowledgement; attempts
// summed over its nodes. A record that is not delivered to its audience,
// or whose target jurisdictions have no node but this one, has none.
func (s *Service) State(c cid.Cid) map[string]service.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	byPeer := s.entries[c]
	if len(byPeer) == 0 {
		return nil
	}
	out := map[string]service.Delivery{}
	for _, e := range byPeer {
		d, seen := out[e.Jurisdiction]
		if !seen {
			d.State = service.DeliveryDelivered
		}
		d.Attempts += e.Attempts
		if !e.Acked() {
			d.State = service.DeliveryPending
		}
		if at := time.UnixMilli(e.AckedAt); e.Acked() && at.After(d.AckedAt) {
			d.AckedAt = at
		}
		out[e.Jurisdiction] = d
	}
	for j, d := range out {
		if d.State == service.DeliveryPending {
			d.AckedAt = time.Time{}
			out[j] = d
		}
	}
	return out
}
