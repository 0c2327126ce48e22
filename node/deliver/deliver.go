// Package deliver is direct delivery (DESIGN.md §6): it pushes a record
// only the nodes of some jurisdictions may receive (a TLP:RED notice:
// protocol.Audience.Delivered) to every node of those jurisdictions, over
// protocol.DeliverProtocolID, until each has acknowledged it; and it
// answers such pushes. The bytes are protocol's ("Wire protocols").
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
// A push is served only to a member. The receiver decodes the record,
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
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
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
			Help: "Pushes from peers, by answer (acked, refused, reset).",
		}, []string{"result"}),
	}
	s.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "entente_deliver_pending",
		Help: "Deliveries of records to nodes not acknowledged yet (the outbox).",
	}, func() float64 { return float64(s.countPending()) })
	if err := service.Register(cfg.Registerer, "deliver", s.pending, s.attempts, s.served); err != nil {
		return nil, err
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

// Accepted makes the outbox entries of a record the node just accepted,
// if its audience is delivered to; they are durable when it returns.
// Ingest calls it for every new record (Config.OnAccept).
func (s *Service) Accepted(r *protocol.Record) {
	if r.Kind() == protocol.KindReceipt {
		if r.Issuer() != s.self {
			return // a receipt is delivered by the node that signed it
		}
		// Its entries are made by receiptLoop, many in one write: a
		// receipt answers a verify, which should not wait for a write of
		// its own (a crash before the entries are made is caught up at
		// the next start).
		select {
		case s.receipts <- r:
		case <-s.g.Context().Done():
		}
		return
	}
	aud, err := s.audience(r)
	if err != nil {
		s.log.Error("direct delivery: reading a receipt's decisions failed", "cid", r.CID().String(), "err", err)
		return
	}
	if !aud.Delivered() {
		return
	}
	if err := s.enqueue(r, aud); err != nil {
		s.log.Error("direct delivery: keeping the outbox entries failed", "cid", r.CID().String(), "err", err)
	}
}

// catchUp enqueues every held record delivered to its audience (TLP:RED
// incidents, and the receipts this node signed): enqueue adds only the
// entries missing.
func (s *Service) catchUp() error {
	for _, q := range []store.Query{{Kind: protocol.KindIncident}, {Kind: protocol.KindReceipt, Issuer: s.self}} {
		q.Limit = store.MaxListLimit
		for {
			entries, next, err := s.cfg.Store.List(q)
			if err != nil {
				return err
			}
			for _, e := range entries {
				s.Accepted(e.Record)
			}
			if next == 0 {
				break
			}
			q.After = next
		}
	}
	return nil
}

// audience is r's audience (protocol.AudienceOf); a receipt's is that of
// the decision blocks held (protocol.ReceiptAudience).
func (s *Service) audience(r *protocol.Record) (protocol.Audience, error) {
	if r.Kind() != protocol.KindReceipt {
		return protocol.AudienceOf(r), nil
	}
	blocks, _, err := s.blocksOf(r, false)
	return protocol.ReceiptAudience(blocks), err
}

// blocksOf reads the decision blocks of receipt r that the store holds,
// decoded (through the trust view's cache), and with raw their bytes too.
func (s *Service) blocksOf(r *protocol.Record, raw bool) ([]*protocol.DecisionBlock, [][]byte, error) {
	body, _ := r.Receipt()
	var blocks []*protocol.DecisionBlock
	var bytes [][]byte
	for _, l := range body.Decisions {
		blk, err := s.cfg.Trust.DecisionBlock(l.Cid)
		if errors.Is(err, protocol.ErrNotHeld) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("decision block %s: %w", l, err)
		}
		blocks = append(blocks, blk)
		if raw {
			b, err := s.cfg.Store.GetBlock(l.Cid)
			if err != nil {
				return nil, nil, err
			}
			bytes = append(bytes, b)
		}
	}
	return blocks, bytes, nil
}

// enqueue puts an entry for every target node of r, whose audience is
// aud, that has none yet, durably, and wakes their workers.
func (s *Service) enqueue(r *protocol.Record, aud protocol.Audience) error {
	s.enqueues.Lock()
	defer s.enqueues.Unlock()
	return s.admit(s.entriesFor(r, aud))
}

// entriesFor are the entries r, whose audience is aud, lacks (under
// enqueues).
func (s *Service) entriesFor(r *protocol.Record, aud protocol.Audience) []store.OutboxEntry {
	now := s.cfg.Now().UnixMilli()
	var es []store.OutboxEntry
	for _, j := range aud.Jurisdictions {
		for _, ai := range s.cfg.Directory.NodesOf(j) {
			if ai.ID != s.self && !s.has(r.CID(), ai.ID) {
				es = append(es, store.OutboxEntry{Record: r.CID(), Peer: ai.ID, Jurisdiction: j, Added: now})
			}
		}
	}
	return es
}

// admit keeps es durably, in one write, then in memory, and wakes their
// workers (under enqueues).
func (s *Service) admit(es []store.OutboxEntry) error {
	if err := s.cfg.Store.PutOutboxes(es); err != nil {
		return err
	}
	for _, e := range es {
		s.mu.Lock()
		s.keep(e)
		s.startWorkerLocked(e.Peer)
		s.mu.Unlock()
		s.wake(e.Peer)
	}
	return nil
}

// receiptLoop makes the entries of the node's new receipts, those waiting
// together in one write.
func (s *Service) receiptLoop(ctx context.Context) {
	for {
		var batch []*protocol.Record
		select {
		case r := <-s.receipts:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < cap(s.receipts) {
			select {
			case r := <-s.receipts:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.enqueues.Lock()
		var es []store.OutboxEntry
		for _, r := range batch {
			aud, err := s.audience(r)
			if err != nil {
				s.log.Error("direct delivery: reading a receipt's decisions failed", "cid", r.CID().String(), "err", err)
				continue
			}
			es = append(es, s.entriesFor(r, aud)...)
		}
		if err := s.admit(es); err != nil {
			s.log.Error("direct delivery: keeping the outbox entries of receipts failed; the next start makes them", "receipts", len(batch), "err", err)
		}
		s.enqueues.Unlock()
	}
}

func (s *Service) has(c cid.Cid, p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries[c][p]
	return ok
}

// keep records e in memory (under mu, or before the service runs).
func (s *Service) keep(e store.OutboxEntry) {
	byPeer := s.entries[e.Record]
	if byPeer == nil {
		byPeer = map[peer.ID]store.OutboxEntry{}
		s.entries[e.Record] = byPeer
	}
	byPeer[e.Peer] = e
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

// startWorkerLocked starts the worker of target node p unless it runs
// (under mu).
func (s *Service) startWorkerLocked(p peer.ID) {
	if s.closed || s.workers[p] != nil {
		return
	}
	wake := make(chan struct{}, 1)
	s.workers[p] = wake
	s.g.Go(func(ctx context.Context) { s.work(ctx, p, wake) })
}

// wake makes p's worker try again now, if it runs.
func (s *Service) wake(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.workers[p]; w != nil {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// pendingFor lists p's pending entries, oldest first; with none left it
// retires p's worker (under the same lock, so that an enqueue either
// sees the worker gone and starts another, or is seen here).
func (s *Service) pendingFor(p peer.ID) (pending []store.OutboxEntry, retire bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, byPeer := range s.entries {
		if e, ok := byPeer[p]; ok && !e.Acked() {
			pending = append(pending, e)
		}
	}
	if len(pending) == 0 {
		delete(s.workers, p)
		return nil, true
	}
	slices.SortFunc(pending, func(a, b store.OutboxEntry) int {
		if c := cmp.Compare(a.Added, b.Added); c != 0 {
			return c
		}
		return strings.Compare(a.Record.KeyString(), b.Record.KeyString())
	})
	return pending, false
}

// work pushes p's pending records until there are none, backing off
// after each failure.
func (s *Service) work(ctx context.Context, p peer.ID, wake chan struct{}) {
	var backoff time.Duration
	for ctx.Err() == nil {
		pending, retire := s.pendingFor(p)
		if retire {
			return
		}
		failed := false
		for _, e := range pending {
			if err := s.push(ctx, e); err != nil {
				if ctx.Err() == nil {
					s.log.Debug("direct delivery failed; trying again later", "peer", service.ShortID(p), "cid", e.Record.String(), "err", err)
				}
				failed = true
				break
			}
		}
		if !failed {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, s.cfg.MinBackoff), s.cfg.MaxBackoff)
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-wake: // a new entry, or the node connected
		}
		t.Stop()
	}
}

// push delivers e's record to e's node once, and keeps the outcome: the
// attempt counted, and the acknowledgement if there is one.
func (s *Service) push(ctx context.Context, e store.OutboxEntry) error {
	ack, result, err := s.exchange(ctx, e)
	if ctx.Err() != nil {
		return ctx.Err() // closing: this attempt does not count
	}
	if errors.Is(err, errNotFor) {
		// No longer a node of the audience (its accreditation lapsed or
		// was revoked): it is no target any more.
		s.attempts.WithLabelValues(result).Inc()
		return s.drop(e)
	}
	s.attempts.WithLabelValues(result).Inc()
	e.Attempts++
	if ack != nil {
		e.AckedAt, e.Ack = ack.At, ack.Sig
	}
	if perr := s.cfg.Store.PutOutbox(e); perr != nil {
		return errors.Join(err, fmt.Errorf("deliver: keeping the outcome: %w", perr))
	}
	s.mu.Lock()
	s.keep(e)
	s.mu.Unlock()
	if ack != nil {
		s.log.Info("record delivered", "cid", e.Record.String(), "peer", service.ShortID(e.Peer), "jurisdiction", ack.Jurisdiction)
	}
	return err
}

// drop removes e from the outbox, durably.
func (s *Service) drop(e store.OutboxEntry) error {
	if err := s.cfg.Store.DeleteOutbox(e.Record, e.Peer); err != nil {
		return fmt.Errorf("deliver: dropping the entry of a node that left the audience: %w", err)
	}
	s.mu.Lock()
	delete(s.entries[e.Record], e.Peer)
	if len(s.entries[e.Record]) == 0 {
		delete(s.entries, e.Record)
	}
	s.mu.Unlock()
	s.log.Info("dropping the delivery to a node no longer of the record's audience", "cid", e.Record.String(), "peer", service.ShortID(e.Peer))
	return nil
}

// exchange pushes e's record and returns the verified acknowledgement,
// or the error; result names the outcome for the metrics.
func (s *Service) exchange(ctx context.Context, e store.OutboxEntry) (*protocol.DeliveryAck, string, error) {
	r, err := s.cfg.Store.Get(e.Record)
	if err != nil {
		return nil, "failed", fmt.Errorf("deliver: reading the record: %w", err)
	}
	var blocks [][]byte
	ok, err := protocol.MayReceive(s.cfg.Trust, r, e.Peer, s.cfg.Now().UnixMilli())
	if r.Kind() == protocol.KindReceipt {
		// A receipt goes to the nodes of its decisions' jurisdictions,
		// each with the blocks that concern its own.
		_, ok, err = protocol.HasRole(s.cfg.Trust, e.Peer, e.Jurisdiction, protocol.RoleNode, s.cfg.Now().UnixMilli())
		decoded, raw, berr := s.blocksOf(r, true)
		for i, blk := range decoded {
			if blk.Concerns(e.Jurisdiction) {
				blocks = append(blocks, raw[i])
			}
		}
		err, ok = errors.Join(err, berr), ok && len(blocks) > 0
	}
	switch {
	case err != nil:
		return nil, "failed", fmt.Errorf("deliver: %w", err)
	case !ok:
		return nil, "withheld", errNotFor
	}
	req, err := protocol.EncodeDeliverRequest(r.Bytes(), blocks...)
	if err != nil {
		// A receipt whose blocks for this jurisdiction are over what one
		// push carries: trying again would not help. Its nodes can fetch
		// it by CID.
		s.log.Error("direct delivery: a receipt too large to push; its decisions' nodes must fetch it", "cid", r.CID().String(), "jurisdiction", e.Jurisdiction, "err", err)
		return nil, "too_large", errNotFor
	}
	if s.cfg.Host.Network().Connectedness(e.Peer) != network.Connected {
		for _, ai := range s.cfg.Directory.NodesOf(e.Jurisdiction) {
			if ai.ID == e.Peer && len(ai.Addrs) > 0 {
				s.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
		}
	}
	answer, err := service.Exchange(ctx, s.cfg.Host, e.Peer, protocol.DeliverProtocolID, serviceName, req, protocol.DeliverMaxAnswer, s.cfg.Timeout)
	if err != nil {
		return nil, "failed", err
	}
	ack, err := protocol.DecodeDeliverAnswer(e.Record, answer)
	switch {
	case err != nil:
		return nil, "bad_ack", err
	case ack == nil:
		return nil, "refused", errRefused
	}
	if err := s.checkAck(r, e.Peer, ack); err != nil {
		return nil, "bad_ack", err
	}
	return ack, "acked", nil
}

// checkAck accepts an acknowledgement by node p of r only if p signed it
// and p is, now, a node of the jurisdiction it names, which is one of r's
// audience.
func (s *Service) checkAck(r *protocol.Record, p peer.ID, ack *protocol.DeliveryAck) error {
	if err := ack.Verify(p); err != nil {
		return err
	}
	aud, err := s.audience(r)
	if err != nil {
		return err
	}
	if !slices.Contains(aud.Jurisdictions, ack.Jurisdiction) {
		return errAckScope
	}
	_, ok, err := protocol.HasRole(s.cfg.Trust, p, ack.Jurisdiction, protocol.RoleNode, s.cfg.Now().UnixMilli())
	if err != nil || !ok {
		return errors.Join(errAckScope, err)
	}
	return nil
}
