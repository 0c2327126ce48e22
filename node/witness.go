package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Witnessing (DESIGN.md §6). Every WitnessInterval the node asks each
// connected peer for its latest checkpoint over /entente/checkpoint/1.0.0,
// verifies the note with the peer's key, checks that it is consistent with
// the last checkpoint of that peer the node verified, and cosigns it.
//
// Wire: the asker writes one unsigned varint, the size of the last
// checkpoint of the peer it verified (0 for none). The peer answers with
// an unsigned varint length and its latest checkpoint note (length 0 when
// its log is empty), then an unsigned varint count and that many 32-byte
// hashes: the consistency proof (tlog.ProveTree) from the asked size to
// the note's, empty when the asked size is 0 or not smaller.
//
// Cosignature: the node adds to the peer's note (the peer's own signature
// only) a C2SP tlog-cosignature "cosignature/v1" signature of its own
// (cosignature.go), with its checkpoint key and name
// CheckpointOrigin(federation, own ID), over the checkpoint body and the
// time of verification. The cosigned note is kept per peer in the store.
//
// Returning cosignatures: after a checkpoint exchange the asker opens a
// second stream of the same protocol and sends the cosigned note back:
// the unsigned varint 2^64-1 (cosignatureRequest; never a size, which
// fits an int64), then an unsigned varint length and the note. The peer
// verifies that the note is its checkpoint and that it carries a valid
// cosignature of the asker (VerifyCosignature), adds the cosignature to
// its latest checkpoint's note if it is of that checkpoint
// (AddCosignature), and answers one byte: 0 kept, 1 stale (not its latest
// checkpoint), 2 refused.
//
// Equivocation: a checkpoint of a peer with the size of the last verified
// one and another root, or a newer one whose consistency proof from the
// last verified one fails. The node keeps both notes as evidence, counts
// it (entente_equivocations_total, entente_equivocations), shows it in
// Status.Alerts and issues an incident (critical, open, TLP:AMBER,
// category "equivocation", affected the peer) — once per (peer, size).
// Checkpoints older than the last verified one are not checked.
const (
	witnessMaxNote  = store.MaxCheckpointNote
	witnessMaxProof = 64
	witnessTimeout  = 15 * time.Second
)

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

// handleCheckpointStream answers a checkpoint request with the latest checkpoint
// and a consistency proof from the asked size.
func (n *Node) handleCheckpointStream(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(witnessTimeout))
	from, err := binary.ReadUvarint(bufio.NewReaderSize(io.LimitReader(s, binary.MaxVarintLen64), binary.MaxVarintLen64))
	if err != nil {
		s.Reset()
		return
	}
	if from == cosignatureRequest {
		n.handleCosignature(s)
		return
	}
	var msg []byte
	var proof tlog.TreeProof
	sc, err := n.LatestCheckpoint()
	switch {
	case errors.Is(err, ErrEmptyLog):
	case err != nil:
		s.Reset()
		return
	default:
		msg = sc.Note
		if from > 0 && from < sc.Size {
			if proof, err = n.store.ConsistencyProof(from, sc.Size); err != nil {
				s.Reset()
				return
			}
		}
	}
	if len(msg) > witnessMaxNote || len(proof) > witnessMaxProof {
		s.Reset()
		return
	}
	b := binary.AppendUvarint(nil, uint64(len(msg)))
	b = append(b, msg...)
	b = binary.AppendUvarint(b, uint64(len(proof)))
	for _, h := range proof {
		b = append(b, h[:]...)
	}
	if _, err := s.Write(b); err != nil {
		s.Reset()
	}
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
	s, err := n.host.NewStream(ctx, p, protocol.CheckpointProtocolID)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", shortID(p), err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	msg, proof, err := readCheckpointAnswer(s, from)
	if err != nil {
		s.Reset()
		return fmt.Errorf("checkpoint of %s: %w", shortID(p), err)
	}
	s.Close()
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

// cosignatureRequest is the first varint of a request that returns a
// cosignature (see the wire format above).
const cosignatureRequest = math.MaxUint64

// Answers to a cosignature request.
const (
	cosignatureKept    = 0
	cosignatureStale   = 1
	cosignatureRefused = 2
)

// SendCosignature sends msg, a checkpoint note of peer p carrying this
// node's cosignature, back to p. It returns an error wrapping
// ErrStaleCosignature when p has a newer checkpoint, ErrBadCosignature
// when p refused it.
func (n *Node) SendCosignature(ctx context.Context, p peer.ID, msg []byte) error {
	if len(msg) > witnessMaxNote {
		return fmt.Errorf("cosignature for %s: note of %d bytes (at most %d)", shortID(p), len(msg), witnessMaxNote)
	}
	ctx, cancel := context.WithTimeout(ctx, witnessTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, protocol.CheckpointProtocolID)
	if err != nil {
		return fmt.Errorf("cosignature for %s: %w", shortID(p), err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	b := binary.AppendUvarint(nil, cosignatureRequest)
	b = binary.AppendUvarint(b, uint64(len(msg)))
	b = append(b, msg...)
	var ans [1]byte
	if _, err := s.Write(b); err == nil {
		if err = s.CloseWrite(); err == nil {
			_, err = io.ReadFull(s, ans[:])
		}
	}
	if err != nil {
		s.Reset()
		return fmt.Errorf("cosignature for %s: %w", shortID(p), err)
	}
	s.Close()
	switch ans[0] {
	case cosignatureKept:
		return nil
	case cosignatureStale:
		return fmt.Errorf("cosignature for %s: %w", shortID(p), ErrStaleCosignature)
	default:
		return fmt.Errorf("cosignature for %s: %w: refused", shortID(p), ErrBadCosignature)
	}
}

// handleCosignature answers a cosignature request (after its first
// varint).
func (n *Node) handleCosignature(s network.Stream) {
	r := bufio.NewReader(io.LimitReader(s, binary.MaxVarintLen64+witnessMaxNote))
	ln, err := binary.ReadUvarint(r)
	if err != nil || ln > witnessMaxNote {
		s.Reset()
		return
	}
	msg := make([]byte, ln)
	if _, err := io.ReadFull(r, msg); err != nil {
		s.Reset()
		return
	}
	ans := byte(cosignatureKept)
	from := s.Conn().RemotePeer()
	switch err := n.AddCosignature(from, msg); {
	case err == nil:
	case errors.Is(err, ErrStaleCosignature):
		ans = cosignatureStale
	default:
		ans = cosignatureRefused
		n.log.Debug("refused a cosignature", "peer", shortID(from), "err", err)
	}
	if _, err := s.Write([]byte{ans}); err != nil {
		s.Reset()
	}
}

func readCheckpointAnswer(s network.Stream, from uint64) ([]byte, tlog.TreeProof, error) {
	if _, err := s.Write(binary.AppendUvarint(nil, from)); err != nil {
		return nil, nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, nil, err
	}
	r := bufio.NewReader(io.LimitReader(s, witnessMaxNote+witnessMaxProof*tlog.HashSize+2*binary.MaxVarintLen64))
	ln, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, nil, err
	}
	if ln > witnessMaxNote {
		return nil, nil, fmt.Errorf("note of %d bytes (at most %d)", ln, witnessMaxNote)
	}
	msg := make([]byte, ln)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, nil, err
	}
	cnt, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, nil, err
	}
	if cnt > witnessMaxProof {
		return nil, nil, fmt.Errorf("proof of %d hashes (at most %d)", cnt, witnessMaxProof)
	}
	proof := make(tlog.TreeProof, cnt)
	for i := range proof {
		if _, err := io.ReadFull(r, proof[i][:]); err != nil {
			return nil, nil, err
		}
	}
	return msg, proof, nil
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
	if len(msg) > witnessMaxNote {
		return WitnessStatus{}, fmt.Errorf("%w: note of %d bytes (at most %d)", ErrMalformedCheckpoint, len(msg), witnessMaxNote)
	}
	vkey, err := CheckpointVerifierKey(n.cfg.Federation.Name, p)
	if err != nil {
		return WitnessStatus{}, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return WitnessStatus{}, err
	}
	nt, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return WitnessStatus{}, fmt.Errorf("checkpoint of %s: %w", shortID(p), err)
	}
	sc, err := openCheckpoint(msg, v)
	if err != nil {
		return WitnessStatus{}, err
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
	signed, err := note.Sign(&note.Note{Text: nt.Text, Sigs: nt.Sigs})
	if err != nil {
		w.mu.Unlock()
		return WitnessStatus{}, fmt.Errorf("cosigning: %w", err)
	}
	cosigned := append(signed, cosignatureLine(n.checkpoints.signer.name, n.checkpoints.signer.key, []byte(nt.Text), n.cfg.Now())...)
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
