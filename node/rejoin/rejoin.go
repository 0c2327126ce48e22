// Package rejoin brings a node restored from a backup back to signing
// (DESIGN.md §6, "Restoring a node"). A restored node's log may be older
// than the checkpoints it had signed and its peers witnessed; signing a
// tree of one of those sizes, or one that does not extend them, would be
// equivocation. So the checkpoint service holds signing (and verify signs
// no receipt) until this service has:
//
//  1. asked every other member node of the federation, over
//     protocol.WitnessedProtocolID, for the latest checkpoint of this
//     node it verified, and checked each answer's signature with the
//     node's own key (a peer that is not connected is asked once it is;
//     one that never answers keeps signing held);
//  2. waited for the log to reach the largest of those sizes (sync brings
//     the records);
//  3. checked that the log's tree of that size has the root the peers
//     hold.
//
// Then it resumes signing from that checkpoint (checkpoint.Resume). When
// the roots differ the log took another order than the one the node had
// signed: it can never sign again under its key without equivocating,
// and stays held; the operator gives it a new key (docs/operating.md,
// "Replacing a node").
package rejoin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Checkpoints is the node's checkpoint service.
type Checkpoints interface {
	Held() bool
	Resume(peers *protocol.SignedCheckpoint) error
	Signer() *protocol.CheckpointSigner
}

// Witness asks a peer what it holds of a log (the witness service).
type Witness interface {
	HeldBy(ctx context.Context, p, id peer.ID) ([]byte, error)
}

// Log is the node's log (*store.Store).
type Log interface {
	TreeHead() (store.Tree, error)
	TreeHash(size uint64) (tlog.Hash, error)
}

// Config configures the service. Every field is required unless marked.
type Config struct {
	// Self is this node.
	Self        peer.ID
	Checkpoints Checkpoints
	Witness     Witness
	Log         Log
	// Members lists the federation's other member nodes now.
	Members func() []peer.ID
	// Connected reports whether a peer is connected now.
	Connected func(peer.ID) bool
	// Interval is how often the service asks the peers that have not
	// answered and looks at the log. Default 1s.
	Interval time.Duration
	// StallAfter is how long the log may stay below the peers' size
	// without growing before Status says it stalled. Default 1m.
	StallAfter time.Duration
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger // optional
}

const (
	defaultInterval   = time.Second
	defaultStallAfter = time.Minute
	askTimeout        = 15 * time.Second
)

// Status is where a restored node stands.
type Status struct {
	// Held is true while signing is held.
	Held bool `json:"held"`
	// Reason says why, in English.
	Reason string `json:"reason,omitempty"`
	// Waiting are the member nodes that have not said yet what they hold.
	Waiting []string `json:"waiting,omitempty"`
	// Target is the largest checkpoint size of this node its peers hold,
	// among the answers so far.
	Target uint64 `json:"target,omitempty"`
	// Diverged is true when the log's tree of Target's size is not the
	// one the peers hold: the node needs a new key.
	Diverged bool `json:"diverged,omitempty"`
	// Stalled is true when the log, below Target, has not grown for
	// Config.StallAfter: what it lacks may be what no peer sends (this
	// node's own receipts after the backup), and then it needs a new key.
	Stalled bool `json:"stalled,omitempty"`
}

// Service brings a restored node back to signing. Make one with New;
// Close stops it.
type Service struct {
	cfg  Config
	log  *slog.Logger
	g    *service.Group
	done chan struct{} // closed once there is nothing more to do

	mu       sync.Mutex
	answered map[peer.ID]uint64 // what each peer holds: a size, 0 for none
	best     *protocol.SignedCheckpoint
	status   Status

	// The log's size when step last saw it grow, and when (step's own).
	lastSize   uint64
	lastGrowth time.Time
}

// New starts the service if signing is held, and otherwise makes one
// with nothing to do.
func New(cfg Config) (*Service, error) {
	if cfg.Self == "" || cfg.Checkpoints == nil || cfg.Witness == nil || cfg.Log == nil || cfg.Members == nil || cfg.Connected == nil {
		return nil, errors.New("rejoin: Self, Checkpoints, Witness, Log, Members and Connected are required")
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("rejoin: Interval is negative (%s)", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = defaultInterval
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = defaultStallAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	service.Defaults(nil, &cfg.Logger)
	s := &Service{cfg: cfg, log: cfg.Logger, g: service.NewGroup(), done: make(chan struct{}), answered: map[peer.ID]uint64{}}
	if !cfg.Checkpoints.Held() {
		close(s.done)
		return s, nil
	}
	s.status = Status{Held: true, Reason: "restored from a backup: asking the peers which of this node's checkpoints they hold"}
	s.g.Go(s.run)
	return s, nil
}

// Done is closed once the service has nothing more to do: signing
// resumed, or the log diverged (Status says which), or it never was held.
func (s *Service) Done() <-chan struct{} { return s.done }

// Close stops the service and waits for it. It is idempotent.
func (s *Service) Close() { s.g.Close() }

// Status returns where the node stands.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Waiting = slices.Clone(st.Waiting)
	return st
}

func (s *Service) run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for !s.step(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	if ctx.Err() == nil {
		close(s.done)
	}
}

// step asks the peers that have not answered, then decides: it returns
// true once there is nothing more to do (resumed, or diverged).
func (s *Service) step(ctx context.Context) bool {
	if !s.cfg.Checkpoints.Held() {
		s.setStatus(Status{})
		return true
	}
	var waiting []string
	for _, p := range s.cfg.Members() {
		if p == s.cfg.Self {
			continue
		}
		s.mu.Lock()
		_, done := s.answered[p]
		s.mu.Unlock()
		if done {
			continue
		}
		if !s.cfg.Connected(p) || !s.ask(ctx, p) {
			waiting = append(waiting, p.String())
		}
		if ctx.Err() != nil {
			return true
		}
	}
	slices.Sort(waiting)
	s.mu.Lock()
	best := s.best
	s.mu.Unlock()
	var target uint64
	if best != nil {
		target = best.Size
	}
	if len(waiting) > 0 {
		s.setStatus(Status{Held: true, Waiting: waiting, Target: target,
			Reason: fmt.Sprintf("restored from a backup: waiting for %d member nodes to say which of this node's checkpoints they hold "+
				"(one that never answers keeps signing held: bring it back, or if it is gone for good revoke its node accreditation, "+
				"or for a founding node change the federation file; docs/operating.md, \"Restoring\")", len(waiting))})
		return false
	}
	th, err := s.cfg.Log.TreeHead()
	if err != nil {
		s.log.Error("reading the log", "err", err)
		return false
	}
	if best != nil && best.Size > th.Size {
		now := s.cfg.Now()
		if s.lastGrowth.IsZero() || th.Size != s.lastSize {
			s.lastSize, s.lastGrowth = th.Size, now
		}
		st := Status{Held: true, Target: target,
			Reason: fmt.Sprintf("restored from a backup: the peers hold this node's checkpoint of size %d; waiting for the log (%d records) to reach it", best.Size, th.Size)}
		if idle := now.Sub(s.lastGrowth); idle >= s.cfg.StallAfter {
			st.Stalled = true
			st.Reason = fmt.Sprintf("restored from a backup: the peers hold this node's checkpoint of size %d, and the log (%d records) has not grown for %s: "+
				"what it lacks may be what no peer sends (this node's own receipts signed after the backup); if it stays so, this node "+
				"can never sign again under its key without equivocating: restore a more recent backup, or give it a new node key "+
				"(docs/operating.md, \"Replacing a node\")", best.Size, th.Size, s.cfg.StallAfter)
			if !s.Status().Stalled {
				s.log.Warn("the restored log stopped short of the checkpoints the peers hold", "size", th.Size, "peers_size", best.Size, "for", idle.Truncate(time.Second))
			}
		}
		s.setStatus(st)
		return false
	}
	if best != nil {
		root, err := s.cfg.Log.TreeHash(best.Size)
		if err != nil {
			s.log.Error("reading the log", "err", err)
			return false
		}
		if root != best.Root {
			s.setStatus(Status{Held: true, Target: target, Diverged: true,
				Reason: fmt.Sprintf("restored from a backup: the log's tree of size %d is not the one this node signed and its peers hold; this node can never sign again under its key without equivocating: it needs a new node key", best.Size)})
			s.log.Error("the restored log diverged from the checkpoints the peers hold: signing stays held for good; give this node a new key (docs/operating.md, \"Replacing a node\")",
				"size", best.Size, "peers_root", best.Root.String(), "log_root", root.String())
			return true
		}
	}
	if err := s.cfg.Checkpoints.Resume(best); err != nil {
		s.log.Error("resuming signing after the restore failed; trying again", "err", err)
		return false
	}
	s.setStatus(Status{})
	return true
}

// ask asks p what it holds of this node's log and keeps the answer; it
// reports whether p answered.
func (s *Service) ask(ctx context.Context, p peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	msg, err := s.cfg.Witness.HeldBy(ctx, p, s.cfg.Self)
	if err != nil {
		s.log.Debug("asking a peer which of this node's checkpoints it holds", "peer", service.ShortID(p), "err", err)
		return false
	}
	var size uint64
	if msg != nil {
		sc, err := protocol.OpenCheckpointWith(msg, s.cfg.Checkpoints.Signer().Verifier())
		if err != nil {
			s.log.Warn("a peer answered with a checkpoint this node did not sign; asking it again later", "peer", p.String(), "err", err)
			return false
		}
		size = sc.Size
		s.mu.Lock()
		if s.best == nil || sc.Size > s.best.Size {
			s.best = &protocol.SignedCheckpoint{LogCheckpoint: sc.LogCheckpoint, Note: msg}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.answered[p] = size
	s.mu.Unlock()
	s.log.Info("a peer said which of this node's checkpoints it holds", "peer", p.String(), "size", size)
	return true
}

func (s *Service) setStatus(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Reason != s.status.Reason && st.Reason != "" && !st.Diverged {
		s.log.Info("signing held", "why", st.Reason)
	}
	s.status = st
}
