// Package witness watches the logs of a node's peers (DESIGN.md §6).
// Every Interval it asks each connected peer for its latest checkpoint
// (protocol.CheckpointProtocolID), verifies the note with the peer's key,
// checks that it is consistent with the last checkpoint of that peer it
// verified, cosigns it (cosignature/v1) and keeps the cosigned note per
// peer in the store. It then returns the cosigned note to the peer
// (protocol.CosignProtocolID), which adds the cosignature to its latest
// checkpoint's note if it is of that checkpoint. It serves both protocols
// for its own log, and tells a peer the note it keeps of a log
// (protocol.WitnessedProtocolID: a restored node asks what its peers hold
// of its own, HeldBy), each at most two streams at once and one a second
// from one peer (witnessPeerLimit). The bytes are protocol's ("Wire
// protocols").
//
// Equivocation: a checkpoint of a peer with the size of the last verified
// one and another root, or a newer one whose consistency proof from the
// last verified one fails. The service keeps both notes as evidence,
// counts it (entente_equivocations_total, entente_equivocations), shows it
// in Alerts and issues an incident (critical, open, TLP:AMBER, category
// "equivocation", affected the peer) — once per (peer, size). Checkpoints
// older than the last verified one are not checked.
package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Checkpoints is the node's own log's checkpoints (the checkpoint
// service).
type Checkpoints interface {
	Latest() (protocol.SignedCheckpoint, error)
	AddCosignature(witness peer.ID, msg []byte) error
	Signer() *protocol.CheckpointSigner
}

// Ingester stores and publishes the incidents the witness issues (the
// ingest pipeline).
type Ingester interface {
	Ingest(ctx context.Context, r *protocol.Record, src service.Source) (service.Accepted, error)
}

// Config configures the service. A zero field means the documented
// default.
type Config struct {
	Host         host.Host      // required
	Store        *store.Store   // required
	Checkpoints  Checkpoints    // required
	Ingest       Ingester       // required
	Key          crypto.PrivKey // required: signs equivocation incidents
	Federation   string         // required: the federation's name
	Jurisdiction string         // required: of the incidents it issues
	// IsMember says whether a peer's cosignature may be kept.
	IsMember func(peer.ID) bool // required
	// Interval is how often the service witnesses each connected peer.
	// Default 10s.
	Interval time.Duration
	Now      service.Clock
	Logger   *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

const (
	timeout         = 15 * time.Second
	defaultInterval = 10 * time.Second
	serviceName     = "entente.witness"
)

// witnessPeerLimit bounds one peer's checkpoint and cosign streams, each.
// A peer witnesses this node once an Interval (10s by default): one
// exchange of each a second leaves it room tenfold, and a burst of ten
// covers a restart or a test that witnesses at once. A stream over the
// rate waits up to 5s (the exchange's timeout is 15s), then is reset.
var witnessPeerLimit = service.PeerLimit{Concurrent: 2, Rate: 1, Burst: 10, MaxWait: 5 * time.Second}

// Kinds of equivocation, as Alert.Kind names them.
const (
	EquivocationSameSize     = "same-size"    // one size, two roots
	EquivocationInconsistent = "inconsistent" // a newer tree that does not extend the older
)

// ErrEquivocation is returned by Observe for a checkpoint that conflicts
// with one the node verified earlier.
var ErrEquivocation = errors.New("node: equivocation")

// Status is the last verified checkpoint of one peer.
type Status struct {
	PeerID string `json:"peer_id"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
	At     string `json:"at"`
}

// Alert is an equivocation the node saw.
type Alert struct {
	PeerID     string   `json:"peer_id"`
	Size       uint64   `json:"size"`
	Kind       string   `json:"kind"`
	Sizes      []uint64 `json:"sizes"`
	Roots      []string `json:"roots"`
	DetectedAt string   `json:"detected_at"`
	Incident   string   `json:"incident,omitempty"`
	// Notes are the evidence: the two checkpoints as the peer signed them
	// (signed notes, in the order of Sizes and Roots), each of which
	// protocol.OpenCheckpoint opens with the peer's ID.
	Notes []string `json:"notes"`
}

// Service is the node's witness. Make one with New; Close stops it.
type Service struct {
	cfg       Config
	log       *slog.Logger
	g         *service.Group
	equivocs  prometheus.Counter
	cosigned  prometheus.Counter
	exchanges *prometheus.CounterVec
	// checkpointLimit, cosignLimit and witnessedLimit bound each peer's
	// streams (witnessPeerLimit).
	checkpointLimit, cosignLimit, witnessedLimit *service.PeerLimiter

	mu       sync.Mutex
	peers    map[peer.ID]store.WitnessState
	evidence map[string]store.WitnessEvidence // by peer "/" size
}

func evidenceKey(p string, size uint64) string { return fmt.Sprintf("%s/%d", p, size) }

// New loads the witness state the store kept, serves the checkpoint and
// cosign protocols and starts witnessing.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Host == nil || cfg.Store == nil || cfg.Checkpoints == nil || cfg.Ingest == nil || cfg.Key == nil || cfg.IsMember == nil:
		return nil, errors.New("witness: Host, Store, Checkpoints, Ingest, Key and IsMember are required")
	case cfg.Interval < 0:
		return nil, fmt.Errorf("witness: Interval is negative (%s)", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = defaultInterval
	}
	service.Defaults(&cfg.Now, &cfg.Logger)
	w := &Service{
		cfg: cfg, log: cfg.Logger, g: service.NewGroup(),
		peers:    map[peer.ID]store.WitnessState{},
		evidence: map[string]store.WitnessEvidence{},
		equivocs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_equivocations_total",
			Help: "Equivocations (conflicting checkpoints of one peer) this node detected.",
		}),
		cosigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_witness_cosigned_total",
			Help: "Peer checkpoints this node verified and cosigned.",
		}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_witness_exchanges_total",
			Help: "Checkpoint exchanges this node initiated, by result.",
		}, []string{"result"}),
	}
	if err := w.load(); err != nil {
		return nil, err
	}
	equivocations := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "entente_equivocations",
		Help: "Equivocations this node holds evidence of.",
	}, func() float64 {
		w.mu.Lock()
		defer w.mu.Unlock()
		return float64(len(w.evidence))
	})
	if err := service.Register(cfg.Registerer, "witness", w.equivocs, w.cosigned, w.exchanges, equivocations); err != nil {
		return nil, err
	}
	var err error
	if w.checkpointLimit, err = service.NewPeerLimiter(protocol.CheckpointProtocolID, witnessPeerLimit, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	if w.cosignLimit, err = service.NewPeerLimiter(protocol.CosignProtocolID, witnessPeerLimit, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	if w.witnessedLimit, err = service.NewPeerLimiter(protocol.WitnessedProtocolID, witnessPeerLimit, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	w.g.ServeStreams(cfg.Host, protocol.CheckpointProtocolID, w.handleCheckpoint)
	w.g.ServeStreams(cfg.Host, protocol.CosignProtocolID, w.handleCosign)
	w.g.ServeStreams(cfg.Host, protocol.WitnessedProtocolID, w.handleWitnessed)
	w.g.Go(w.loop)
	return w, nil
}

// Close stops witnessing and serving, and waits. It is idempotent.
func (w *Service) Close() { w.g.Close() }

func (w *Service) load() error {
	states, err := w.cfg.Store.WitnessStates()
	if err != nil {
		return fmt.Errorf("node: witness: %w", err)
	}
	for _, st := range states {
		if id, err := peer.Decode(st.Peer); err == nil {
			w.peers[id] = st
		}
	}
	evs, err := w.cfg.Store.WitnessEvidences()
	if err != nil {
		return fmt.Errorf("node: witness: %w", err)
	}
	for _, e := range evs {
		w.evidence[evidenceKey(e.Peer, e.Size)] = e
	}
	return nil
}

func (w *Service) loop(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range w.cfg.Host.Network().Peers() {
			if ctx.Err() != nil {
				return
			}
			err := w.Peer(ctx, p)
			if err != nil && !errors.Is(err, service.ErrEmptyLog) && ctx.Err() == nil {
				w.log.Debug("witnessing a peer failed", "peer", service.ShortID(p), "err", err)
			}
		}
	}
}

// Peer asks peer p for its latest checkpoint, observes it (Observe) and
// returns the cosigned note to p. It returns an error wrapping
// service.ErrEmptyLog when the peer has no checkpoint yet.
func (w *Service) Peer(ctx context.Context, p peer.ID) (err error) {
	defer func() {
		res := "ok"
		if err != nil {
			res = "error"
		}
		w.exchanges.WithLabelValues(res).Inc()
	}()
	var from uint64
	w.mu.Lock()
	if st, ok := w.peers[p]; ok {
		from = st.Size
	}
	w.mu.Unlock()
	answer, err := service.Exchange(ctx, w.cfg.Host, p, protocol.CheckpointProtocolID, serviceName,
		protocol.EncodeCheckpointRequest(from), protocol.MaxCheckpointAnswer, timeout)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", service.ShortID(p), err)
	}
	msg, proof, err := protocol.DecodeCheckpointAnswer(answer)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", service.ShortID(p), err)
	}
	if len(msg) == 0 {
		return fmt.Errorf("checkpoint of %s: %w", service.ShortID(p), service.ErrEmptyLog)
	}
	if _, err = w.Observe(ctx, p, msg, proof); err != nil {
		return err
	}
	cosigned, ok := w.Note(p)
	if !ok {
		return nil
	}
	if err := w.SendCosignature(ctx, p, cosigned); err != nil && !errors.Is(err, service.ErrStaleCosignature) {
		return err
	}
	return nil
}

func statusOf(st store.WitnessState) Status {
	if st.Size == 0 {
		return Status{PeerID: st.Peer}
	}
	return Status{PeerID: st.Peer, Size: st.Size, Root: st.Root.String(),
		At: time.UnixMilli(st.At).UTC().Format(time.RFC3339Nano)}
}

// Witnessed returns the last verified checkpoint of each peer, sorted by
// peer ID.
func (w *Service) Witnessed() []Status {
	out := []Status{}
	w.mu.Lock()
	for _, st := range w.peers {
		out = append(out, statusOf(st))
	}
	w.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].PeerID < out[j].PeerID })
	return out
}

// Note returns the kept note (with this node's cosignature) of the last
// verified checkpoint of p.
func (w *Service) Note(p peer.ID) ([]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ok := w.peers[p]
	return st.Note, ok
}

// Alerts returns the equivocations the node detected, sorted by peer and
// size.
func (w *Service) Alerts() []Alert {
	out := []Alert{}
	w.mu.Lock()
	for _, e := range w.evidence {
		a := Alert{PeerID: e.Peer, Size: e.Size, Kind: e.Kind, Sizes: e.Sizes, Roots: e.Roots,
			DetectedAt: time.UnixMilli(e.At).UTC().Format(time.RFC3339Nano), Incident: e.Incident, Notes: []string{}}
		for _, n := range e.Notes {
			a.Notes = append(a.Notes, string(n))
		}
		out = append(out, a)
	}
	w.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].PeerID != out[j].PeerID {
			return out[i].PeerID < out[j].PeerID
		}
		return out[i].Size < out[j].Size
	})
	return out
}

// Evidence returns the two notes kept as evidence of p's equivocation at
// size.
func (w *Service) Evidence(p peer.ID, size uint64) ([][]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.evidence[evidenceKey(p.String(), size)]
	return e.Notes, ok
}
