package witness

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Observe verifies a checkpoint note of peer p, with proof its
// consistency proof from the last checkpoint of p the node verified, and,
// when it is newer and consistent, cosigns and keeps it. It returns the
// peer's witness status afterwards. A conflicting checkpoint is
// equivocation: the service keeps the evidence, raises the alert, issues
// an incident and returns an error wrapping ErrEquivocation. Peer uses it
// for what a peer answers; tests may feed it directly.
func (w *Service) Observe(ctx context.Context, p peer.ID, msg []byte, proof tlog.TreeProof) (Status, error) {
	if w.g.Closed() {
		return Status{}, service.ErrClosed
	}
	v, err := protocol.CheckpointVerifier(w.cfg.Federation, p)
	if err != nil {
		return Status{}, err
	}
	sc, err := protocol.OpenCheckpointWith(msg, v)
	if err != nil {
		return Status{}, err
	}
	nt, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Status{}, fmt.Errorf("checkpoint of %s: %w", service.ShortID(p), err)
	}
	w.mu.Lock()
	prev, seen := w.peers[p]
	var ev *store.WitnessEvidence
	switch {
	case seen && sc.Size <= prev.Size && (sc.Size < prev.Size || sc.Root == prev.Root):
		// Seen already, or older than what was verified: not checked.
		w.mu.Unlock()
		return statusOf(prev), nil
	case seen && sc.Size == prev.Size:
		ev = &store.WitnessEvidence{Kind: EquivocationSameSize}
	case seen:
		if err := tlog.CheckTree(proof, int64(sc.Size), sc.Root, int64(prev.Size), prev.Root); err != nil {
			ev = &store.WitnessEvidence{Kind: EquivocationInconsistent}
		}
	}
	if ev != nil {
		w.mu.Unlock()
		return statusOf(prev), w.equivocation(ctx, *ev, p, prev, sc, msg)
	}
	// Cosign: the peer's verified signature and this node's cosignature.
	cosigned, err := w.cfg.Checkpoints.Signer().Cosign(nt, w.cfg.Now())
	if err != nil {
		w.mu.Unlock()
		return Status{}, err
	}
	st := store.WitnessState{Peer: p.String(), Size: sc.Size, Root: sc.Root, Note: cosigned, At: w.cfg.Now().UnixMilli()}
	// Kept under the lock, so that a concurrent observer sees states in order.
	if err := w.cfg.Store.SaveWitnessState(st); err != nil {
		w.mu.Unlock()
		return Status{}, fmt.Errorf("keeping witness state: %w", err)
	}
	w.peers[p] = st
	w.mu.Unlock()
	w.cosigned.Inc()
	return statusOf(st), nil
}

// equivocation keeps the evidence of p's checkpoint sc conflicting with
// prev, the first time, and returns the error Observe reports.
func (w *Service) equivocation(ctx context.Context, ev store.WitnessEvidence, p peer.ID, prev store.WitnessState, sc protocol.SignedCheckpoint, msg []byte) error {
	ev.Peer, ev.Size, ev.At = p.String(), sc.Size, w.cfg.Now().UnixMilli()
	ev.Notes = [][]byte{prev.Note, msg}
	ev.Roots = []string{prev.Root.String(), sc.Root.String()}
	ev.Sizes = []uint64{prev.Size, sc.Size}
	key := evidenceKey(ev.Peer, ev.Size)
	w.mu.Lock()
	_, dup := w.evidence[key]
	if !dup {
		w.evidence[key] = ev
	}
	w.mu.Unlock()
	if !dup {
		w.equivocs.Inc()
		w.log.Error("equivocation detected", "peer", p.String(), "kind", ev.Kind, "sizes", ev.Sizes, "roots", ev.Roots)
		if err := w.cfg.Store.SaveWitnessEvidence(ev); err != nil {
			w.log.Error("keeping equivocation evidence failed", "err", err)
		}
		w.issueIncident(ctx, ev)
	}
	return fmt.Errorf("%w: %s: %s checkpoints of sizes %d and %d, roots %s and %s",
		ErrEquivocation, p, ev.Kind, ev.Sizes[0], ev.Sizes[1], ev.Roots[0], ev.Roots[1])
}

// issueIncident signs an incident about ev and ingests and publishes it
// like any record.
func (w *Service) issueIncident(ctx context.Context, ev store.WitnessEvidence) {
	now := w.cfg.Now()
	body := &protocol.Incident{
		Ref:          fmt.Sprintf("equivocation-%s-%d", service.ShortID(peerString(ev.Peer)), ev.Size),
		Jurisdiction: w.cfg.Jurisdiction,
		Severity:     protocol.SeverityCritical,
		Status:       protocol.StatusOpen,
		TLP:          protocol.TLPAmber,
		Affected:     []string{ev.Peer},
		Categories:   []string{"equivocation"},
		DetectedAt:   now.UnixMilli(),
		Summary: fmt.Sprintf("node %s equivocated (%s): checkpoint of size %d with root %s and checkpoint of size %d with root %s",
			ev.Peer, ev.Kind, ev.Sizes[0], ev.Roots[0], ev.Sizes[1], ev.Roots[1]),
	}
	r, err := protocol.Sign(w.cfg.Key, now.UnixMilli(), body)
	if err != nil {
		w.log.Error("signing an equivocation incident failed", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	acc, err := w.cfg.Ingest.Ingest(ctx, r, service.SourceLocal)
	if err != nil {
		w.log.Error("storing an equivocation incident failed", "err", err)
		return
	}
	w.mu.Lock()
	key := evidenceKey(ev.Peer, ev.Size)
	e := w.evidence[key]
	e.Incident = acc.CID.String()
	w.evidence[key] = e
	w.mu.Unlock()
	if err := w.cfg.Store.SaveWitnessEvidence(e); err != nil {
		w.log.Error("keeping equivocation evidence failed", "err", err)
	}
}

// peerString lets ShortID take a peer ID kept as a string.
type peerString string

func (s peerString) String() string { return string(s) }
