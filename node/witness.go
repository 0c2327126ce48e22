package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Witnessing (DESIGN.md §6). Every WitnessInterval the node asks each
// connected peer for its latest checkpoint (protocol.CheckpointProtocolID),
// verifies the note with the peer's key, checks that it is consistent with
// the last checkpoint of that peer the node verified, cosigns it
// (cosignature/v1) and keeps the cosigned note per peer in the store. It
// then returns the cosigned note to the peer (protocol.CosignProtocolID),
// which adds the cosignature to its latest checkpoint's note if it is of
// that checkpoint (AddCosignature). The bytes are protocol's ("Wire
// protocols").
//
// Equivocation: a checkpoint of a peer with the size of the last verified
// one and another root, or a newer one whose consistency proof from the
// last verified one fails. The node keeps both notes as evidence, counts
// it (entente_equivocations_total, entente_equivocations), shows it in
// Status.Alerts and issues an incident (critical, open, TLP:AMBER,
// category "equivocation", affected the peer) — once per (peer, size).
// Checkpoints older than the last verified one are not checked.
const witnessTimeout = 15 * time.Second

// Kinds of equivocation, as WitnessAlert.Kind names them.
const (
	EquivocationSameSize     = "same-size"    // one size, two roots
	EquivocationInconsistent = "inconsistent" // a newer tree that does not extend the older
)

// WitnessStatus is the last verified checkpoint of one peer.
type WitnessStatus struct {
	PeerID string `json:"peer_id"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
	At     string `json:"at"`
}

// WitnessAlert is an equivocation the node saw.
type WitnessAlert struct {
	PeerID     string   `json:"peer_id"`
	Size       uint64   `json:"size"`
	Kind       string   `json:"kind"`
	Sizes      []uint64 `json:"sizes"`
	Roots      []string `json:"roots"`
	DetectedAt string   `json:"detected_at"`
	Incident   string   `json:"incident,omitempty"`
}

// witness is the node's witnessing state (witness.go).
type witness struct {
	mu        sync.Mutex
	peers     map[peer.ID]store.WitnessState
	evidence  map[string]store.WitnessEvidence // by peer "/" size
	equivocs  prometheus.Counter
	cosigned  prometheus.Counter
	exchanges *prometheus.CounterVec
}

func evidenceKey(p string, size uint64) string { return fmt.Sprintf("%s/%d", p, size) }

func (n *Node) startWitness() error {
	w := &witness{
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
	states, err := n.store.WitnessStates()
	if err != nil {
		return fmt.Errorf("node: witness: %w", err)
	}
	for _, st := range states {
		if id, err := peer.Decode(st.Peer); err == nil {
			w.peers[id] = st
		}
	}
	evs, err := n.store.WitnessEvidences()
	if err != nil {
		return fmt.Errorf("node: witness: %w", err)
	}
	for _, e := range evs {
		w.evidence[evidenceKey(e.Peer, e.Size)] = e
	}
	n.witness = w
	n.metrics.reg.MustRegister(w.equivocs, w.cosigned, w.exchanges,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_equivocations",
			Help: "Equivocations this node holds evidence of.",
		}, func() float64 {
			w.mu.Lock()
			defer w.mu.Unlock()
			return float64(len(w.evidence))
		}))
	n.serveStreams(protocol.CheckpointProtocolID, n.handleCheckpointStream)
	n.serveStreams(protocol.CosignProtocolID, n.handleCosign)
	n.wg.Add(1)
	go n.witnessLoop()
	return nil
}

func (n *Node) witnessLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.WitnessInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range n.host.Network().Peers() {
			if n.ctx.Err() != nil {
				return
			}
			err := n.WitnessPeer(n.ctx, p)
			if err != nil && !errors.Is(err, ErrEmptyLog) && n.ctx.Err() == nil {
				n.log.Debug("witnessing a peer failed", "peer", shortID(p), "err", err)
			}
		}
	}
}

// handleCheckpointStream answers a checkpoint request with the latest
// checkpoint and a consistency proof from the asked size.
func (n *Node) handleCheckpointStream(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(witnessTimeout))
	if err := n.answerCheckpoint(s); err != nil {
		s.Reset()
		n.log.Debug("checkpoint request refused", "peer", shortID(s.Conn().RemotePeer()), "err", err)
		return
	}
	s.Close()
}

func (n *Node) answerCheckpoint(s network.Stream) error {
	req, err := readAll(s, protocol.MaxCheckpointRequest)
	if err != nil {
		return err
	}
	from, err := protocol.DecodeCheckpointRequest(req)
	if err != nil {
		return err
	}
	var msg []byte
	var proof tlog.TreeProof
	sc, err := n.LatestCheckpoint()
	switch {
	case errors.Is(err, ErrEmptyLog):
	case err != nil:
		return err
	default:
		msg = sc.Note
		if from > 0 && from < sc.Size {
			if proof, err = n.store.ConsistencyProof(from, sc.Size); err != nil {
				return err
			}
		}
	}
	answer, err := protocol.EncodeCheckpointAnswer(msg, proof)
	if err != nil {
		return err
	}
	_, err = s.Write(answer)
	return err
}

// readAll reads what the peer wrote until it closed its side, at most
// limit bytes; more is an error.
func readAll(s network.Stream, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(s, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("a message over %d bytes", limit)
	}
	return b, nil
}

// WitnessPeer asks peer p for its latest checkpoint and observes it
// (ObserveCheckpoint). It returns an error wrapping ErrEmptyLog when the
// peer has no checkpoint yet.
func (n *Node) WitnessPeer(ctx context.Context, p peer.ID) (err error) {
	defer func() {
		res := "ok"
		if err != nil {
			res = "error"
		}
		n.witness.exchanges.WithLabelValues(res).Inc()
	}()
	ctx, cancel := context.WithTimeout(ctx, witnessTimeout)
	defer cancel()
	var from uint64
	n.witness.mu.Lock()
	if st, ok := n.witness.peers[p]; ok {
		from = st.Size
	}
	n.witness.mu.Unlock()
	answer, err := n.exchange(ctx, p, protocol.CheckpointProtocolID, protocol.EncodeCheckpointRequest(from), protocol.MaxCheckpointAnswer)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", shortID(p), err)
	}
	msg, proof, err := protocol.DecodeCheckpointAnswer(answer)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", shortID(p), err)
	}
	if len(msg) == 0 {
		return fmt.Errorf("checkpoint of %s: %w", shortID(p), ErrEmptyLog)
	}
	if _, err = n.ObserveCheckpoint(ctx, p, msg, proof); err != nil {
		return err
	}
	cosigned, ok := n.WitnessedNote(p)
	if !ok {
		return nil
	}
	if err := n.SendCosignature(ctx, p, cosigned); err != nil && !errors.Is(err, ErrStaleCosignature) {
		return err
	}
	return nil
}

// exchange opens a stream of proto to p, writes req, closes its side and
// reads the answer until the peer closes, at most limit bytes.
func (n *Node) exchange(ctx context.Context, p peer.ID, proto libp2pprotocol.ID, req []byte, limit int) (_ []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, witnessTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, proto)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Reset()
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err := s.Write(req); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	answer, err := readAll(s, limit)
	if err != nil {
		return nil, err
	}
	return answer, s.Close()
}

// SendCosignature sends msg, a checkpoint note of peer p carrying this
// node's cosignature, back to p. It returns an error wrapping
// ErrStaleCosignature when p has a newer checkpoint,
// protocol.ErrBadCosignature when p refused it.
func (n *Node) SendCosignature(ctx context.Context, p peer.ID, msg []byte) error {
	req, err := protocol.EncodeCosignRequest(msg)
	if err != nil {
		return fmt.Errorf("cosignature for %s: %w", shortID(p), err)
	}
	b, err := n.exchange(ctx, p, protocol.CosignProtocolID, req, 1)
	if err != nil {
		return fmt.Errorf("cosignature for %s: %w", shortID(p), err)
	}
	ans, err := protocol.DecodeCosignAnswer(b)
	switch {
	case err != nil:
		return fmt.Errorf("cosignature for %s: %w", shortID(p), err)
	case ans == protocol.CosignStale:
		return fmt.Errorf("cosignature for %s: %w", shortID(p), ErrStaleCosignature)
	case ans == protocol.CosignRefused:
		return fmt.Errorf("cosignature for %s: %w: refused", shortID(p), protocol.ErrBadCosignature)
	}
	return nil
}

// handleCosign answers a cosign request.
func (n *Node) handleCosign(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(witnessTimeout))
	from := s.Conn().RemotePeer()
	req, err := readAll(s, protocol.MaxCosignRequest)
	if err == nil {
		var msg []byte
		if msg, err = protocol.DecodeCosignRequest(req); err == nil {
			ans := protocol.CosignKept
			switch err := n.AddCosignature(from, msg); {
			case err == nil:
			case errors.Is(err, ErrStaleCosignature):
				ans = protocol.CosignStale
			default:
				ans = protocol.CosignRefused
				n.log.Debug("refused a cosignature", "peer", shortID(from), "err", err)
			}
			if _, err := s.Write([]byte{byte(ans)}); err == nil {
				s.Close()
				return
			}
		}
	}
	n.log.Debug("cosign request refused", "peer", shortID(from), "err", err)
	s.Reset()
}

// ErrEquivocation is returned by ObserveCheckpoint for a checkpoint that
// conflicts with one the node verified earlier.
var ErrEquivocation = errors.New("node: equivocation")

// ObserveCheckpoint verifies a checkpoint note of peer p, with proof its
// consistency proof from the last checkpoint of p the node verified, and,
// when it is newer and consistent, cosigns and keeps it. It returns the
// peer's witness status afterwards. A conflicting checkpoint is
// equivocation: the node keeps the evidence, raises the alert, issues an
// incident and returns an error wrapping ErrEquivocation. WitnessPeer
// uses it for what a peer answers; tests may feed it directly.
func (n *Node) ObserveCheckpoint(ctx context.Context, p peer.ID, msg []byte, proof tlog.TreeProof) (WitnessStatus, error) {
	if n.ctx.Err() != nil {
		return WitnessStatus{}, ErrClosed
	}
	v, err := protocol.CheckpointVerifier(n.cfg.Federation.Name, p)
	if err != nil {
		return WitnessStatus{}, err
	}
	sc, err := protocol.OpenCheckpointWith(msg, v)
	if err != nil {
		return WitnessStatus{}, err
	}
	nt, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return WitnessStatus{}, fmt.Errorf("checkpoint of %s: %w", shortID(p), err)
	}
	w := n.witness
	w.mu.Lock()
	prev, seen := w.peers[p]
	var ev *store.WitnessEvidence
	switch {
	case seen && sc.Size == prev.Size && sc.Root == prev.Root:
		st := witnessStatusOf(prev)
		w.mu.Unlock()
		return st, nil
	case seen && sc.Size < prev.Size:
		st := witnessStatusOf(prev)
		w.mu.Unlock()
		return st, nil
	case seen && sc.Size == prev.Size:
		ev = &store.WitnessEvidence{Kind: EquivocationSameSize}
	case seen:
		if err := tlog.CheckTree(proof, int64(sc.Size), sc.Root, int64(prev.Size), prev.Root); err != nil {
			ev = &store.WitnessEvidence{Kind: EquivocationInconsistent}
		}
	}
	if ev != nil {
		ev.Peer, ev.Size, ev.At = p.String(), sc.Size, n.cfg.Now().UnixMilli()
		ev.Notes = [][]byte{prev.Note, msg}
		ev.Roots = []string{prev.Root.String(), sc.Root.String()}
		ev.Sizes = []uint64{prev.Size, sc.Size}
		key := evidenceKey(ev.Peer, ev.Size)
		_, dup := w.evidence[key]
		st := witnessStatusOf(prev)
		if !dup {
			w.evidence[key] = *ev
		}
		w.mu.Unlock()
		if !dup {
			w.equivocs.Inc()
			n.log.Error("equivocation detected", "peer", p.String(), "kind", ev.Kind,
				"sizes", ev.Sizes, "roots", ev.Roots)
			if err := n.store.SaveWitnessEvidence(*ev); err != nil {
				n.log.Error("keeping equivocation evidence failed", "err", err)
			}
			n.issueEquivocationIncident(ctx, *ev)
		}
		return st, fmt.Errorf("%w: %s: %s checkpoints of sizes %d and %d, roots %s and %s",
			ErrEquivocation, p, ev.Kind, ev.Sizes[0], ev.Sizes[1], ev.Roots[0], ev.Roots[1])
	}
	// Cosign: the peer's verified signature and this node's cosignature.
	cosigned, err := n.checkpoints.signer.Cosign(nt, n.cfg.Now())
	if err != nil {
		w.mu.Unlock()
		return WitnessStatus{}, err
	}
	st := store.WitnessState{Peer: p.String(), Size: sc.Size, Root: sc.Root, Note: cosigned, At: n.cfg.Now().UnixMilli()}
	// Kept under the lock, so that a concurrent observer sees states in order.
	if err := n.store.SaveWitnessState(st); err != nil {
		w.mu.Unlock()
		return WitnessStatus{}, fmt.Errorf("keeping witness state: %w", err)
	}
	w.peers[p] = st
	w.mu.Unlock()
	w.cosigned.Inc()
	return witnessStatusOf(st), nil
}

func witnessStatusOf(st store.WitnessState) WitnessStatus {
	if st.Size == 0 {
		return WitnessStatus{PeerID: st.Peer}
	}
	return WitnessStatus{PeerID: st.Peer, Size: st.Size, Root: st.Root.String(),
		At: time.UnixMilli(st.At).UTC().Format(time.RFC3339Nano)}
}

// issueEquivocationIncident signs an incident about ev and ingests and
// publishes it like any record.
func (n *Node) issueEquivocationIncident(ctx context.Context, ev store.WitnessEvidence) {
	now := n.cfg.Now()
	body := &protocol.Incident{
		Ref:          fmt.Sprintf("equivocation-%s-%d", shortPeer(ev.Peer), ev.Size),
		Jurisdiction: n.cfg.Jurisdiction,
		Severity:     protocol.SeverityCritical,
		Status:       protocol.StatusOpen,
		TLP:          protocol.TLPAmber,
		Affected:     []string{ev.Peer},
		Categories:   []string{"equivocation"},
		DetectedAt:   now.UnixMilli(),
		Summary: fmt.Sprintf("node %s equivocated (%s): checkpoint of size %d with root %s and checkpoint of size %d with root %s",
			ev.Peer, ev.Kind, ev.Sizes[0], ev.Roots[0], ev.Sizes[1], ev.Roots[1]),
	}
	r, err := protocol.Sign(n.cfg.Key, now.UnixMilli(), body)
	if err != nil {
		n.log.Error("signing an equivocation incident failed", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), witnessTimeout)
	defer cancel()
	acc, err := n.ingestCounted(ctx, r, SourceLocal)
	if err != nil {
		n.log.Error("storing an equivocation incident failed", "err", err)
		return
	}
	n.witness.mu.Lock()
	key := evidenceKey(ev.Peer, ev.Size)
	e := n.witness.evidence[key]
	e.Incident = acc.CID.String()
	n.witness.evidence[key] = e
	n.witness.mu.Unlock()
	if err := n.store.SaveWitnessEvidence(e); err != nil {
		n.log.Error("keeping equivocation evidence failed", "err", err)
	}
}

func shortPeer(s string) string {
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return s
}

// Witnessed returns the last verified checkpoint of each peer, sorted by
// peer ID.
func (n *Node) Witnessed() []WitnessStatus {
	out := []WitnessStatus{}
	if n.witness == nil {
		return out
	}
	n.witness.mu.Lock()
	for _, st := range n.witness.peers {
		out = append(out, witnessStatusOf(st))
	}
	n.witness.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].PeerID < out[j].PeerID })
	return out
}

// WitnessedNote returns the kept note (with this node's cosignature) of
// the last verified checkpoint of p.
func (n *Node) WitnessedNote(p peer.ID) ([]byte, bool) {
	n.witness.mu.Lock()
	defer n.witness.mu.Unlock()
	st, ok := n.witness.peers[p]
	return st.Note, ok
}

// Alerts returns the equivocations the node detected, sorted by peer and
// size.
func (n *Node) Alerts() []WitnessAlert {
	out := []WitnessAlert{}
	if n.witness == nil {
		return out
	}
	n.witness.mu.Lock()
	for _, e := range n.witness.evidence {
		out = append(out, WitnessAlert{PeerID: e.Peer, Size: e.Size, Kind: e.Kind, Sizes: e.Sizes, Roots: e.Roots,
			DetectedAt: time.UnixMilli(e.At).UTC().Format(time.RFC3339Nano), Incident: e.Incident})
	}
	n.witness.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].PeerID != out[j].PeerID {
			return out[i].PeerID < out[j].PeerID
		}
		return out[i].Size < out[j].Size
	})
	return out
}

// EquivocationEvidence returns the two notes kept as evidence of p's
// equivocation at size.
func (n *Node) EquivocationEvidence(p peer.ID, size uint64) ([][]byte, bool) {
	n.witness.mu.Lock()
	defer n.witness.mu.Unlock()
	e, ok := n.witness.evidence[evidenceKey(p.String(), size)]
	return e.Notes, ok
}
