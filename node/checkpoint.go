package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// A node signs checkpoints of its log (DESIGN.md §6) in the C2SP
// tlog-checkpoint format (protocol: "Checkpoints and cosignatures").
//
// A checkpoint covers only durable leaves (the store's TreeHead reads the
// last durable commit), and the node never signs two for one size: it
// signs only when the log grew past the latest checkpoint, and it keeps
// that checkpoint in the store, durably, before anyone sees it. At start
// the node checks the kept checkpoint against its log and refuses to
// start if they disagree.

// ErrEmptyLog is returned when a checkpoint is asked of a node whose log
// has no records: there is nothing to sign.
var ErrEmptyLog = errors.New("node: the log is empty")

// checkpointer signs the node's checkpoints and keeps the latest.
type checkpointer struct {
	store  *store.Store
	log    *slog.Logger
	signer *protocol.CheckpointSigner
	signed prometheus.Counter

	mu     sync.Mutex // held while signing and keeping a checkpoint
	latest atomic.Pointer[protocol.SignedCheckpoint]
}

// startCheckpoints loads the kept checkpoint, checking it against the
// log, and starts signing on the interval.
func (n *Node) startCheckpoints() error {
	signer, err := protocol.NewCheckpointSigner(n.cfg.Federation.Name, n.cfg.Key)
	if err != nil {
		return fmt.Errorf("node: checkpoints: %w", err)
	}
	c := &checkpointer{
		store:  n.store,
		log:    n.log.With("component", "checkpoints"),
		signer: signer,
		signed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_checkpoints_signed_total",
			Help: "Checkpoints of the log this node signed.",
		}),
	}
	if err := c.load(); err != nil {
		return err
	}
	n.checkpoints = c
	n.metrics.reg.MustRegister(c.signed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_log_size",
			Help: "Records in the node's log (durable).",
		}, func() float64 { return float64(n.store.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_log_checkpoint_size",
			Help: "Size of the latest checkpoint this node signed.",
		}, func() float64 { return float64(c.latestSize()) }),
	)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		c.run(n.ctx, n.cfg.CheckpointInterval)
	}()
	return nil
}

// load takes the kept checkpoint as the latest, after checking it: the
// store checks its tree against the log, and load that its note is this
// node's, signed, and states that tree.
func (c *checkpointer) load() error {
	kept, ok, err := c.store.LastCheckpoint()
	if errors.Is(err, store.ErrCheckpointMismatch) {
		return fmt.Errorf("node: refusing to start: %w; the log no longer holds the records this node signed (was the store restored from an older copy, or changed?)", err)
	}
	if err != nil {
		return fmt.Errorf("node: reading the last signed checkpoint: %w", err)
	}
	if !ok {
		return nil
	}
	sc, err := protocol.OpenCheckpointWith(kept.Note, c.signer.Verifier())
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		if other, perr := protocol.ParseCheckpoint(unverified.Note.Text); perr == nil && other.Origin != c.signer.Name() {
			// Signed under another identity (the node's key or the
			// federation's name changed): not this origin's checkpoint.
			c.log.Warn("the store's last checkpoint was signed under another origin; ignoring it",
				"origin", other.Origin, "size", other.Size)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("node: refusing to start: the last signed checkpoint in the store does not verify: %w", err)
	}
	if sc.Size != kept.Size || sc.Root != kept.Root {
		return fmt.Errorf("node: refusing to start: %w: the last signed checkpoint's note states size %d root %s, the store kept it for size %d root %s",
			store.ErrCheckpointMismatch, sc.Size, sc.Root, kept.Size, kept.Root)
	}
	c.latest.Store(&sc)
	c.log.Debug("checkpoint loaded", "size", sc.Size, "root", sc.Root.String())
	return nil
}

// run signs a checkpoint now and then every interval, when the log grew.
func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.sign(); err != nil && !errors.Is(err, ErrEmptyLog) && ctx.Err() == nil {
			c.log.Error("signing a checkpoint failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sign signs a checkpoint of the durable log if it grew past the latest
// checkpoint, keeps it durably, and only then makes it the latest. It
// returns the latest checkpoint, new or not.
func (c *checkpointer) sign() (protocol.SignedCheckpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	th, err := c.store.TreeHead()
	if err != nil {
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: checkpoint: %w", err)
	}
	latest := c.latest.Load()
	switch {
	case latest != nil && th.Size == latest.Size:
		return *latest, nil
	case latest != nil && th.Size < latest.Size:
		// The store checked the kept checkpoint against the log at start
		// and the log only grows: this is a bug, not a state to serve.
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: checkpoint: the log has %d records, the latest checkpoint %d", th.Size, latest.Size)
	case th.Size == 0:
		return protocol.SignedCheckpoint{}, ErrEmptyLog
	}
	sc, err := c.signer.Sign(protocol.LogCheckpoint{Origin: c.signer.Name(), Size: th.Size, Root: th.Root})
	if err != nil {
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: %w", err)
	}
	if err := c.store.SaveCheckpoint(store.Checkpoint{Size: th.Size, Root: th.Root, Note: sc.Note}); err != nil {
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: keeping checkpoint %d: %w", th.Size, err)
	}
	c.latest.Store(&sc)
	c.signed.Inc()
	c.log.Debug("checkpoint signed", "size", th.Size, "root", th.Root.String())
	return sc, nil
}

// latestSize is the size of the latest checkpoint, 0 before the first.
func (c *checkpointer) latestSize() uint64 {
	if sc := c.latest.Load(); sc != nil {
		return sc.Size
	}
	return 0
}

// LatestCheckpoint returns the node's latest signed checkpoint, signing
// one first if the node has signed none yet; ErrEmptyLog while the log is
// empty. The node signs a newer one every Config.CheckpointInterval when
// its log grew.
func (n *Node) LatestCheckpoint() (protocol.SignedCheckpoint, error) {
	if n.ctx.Err() != nil {
		return protocol.SignedCheckpoint{}, ErrClosed
	}
	if sc := n.checkpoints.latest.Load(); sc != nil {
		return *sc, nil
	}
	return n.checkpoints.sign()
}

// SignCheckpoint signs a checkpoint of the log as it is durable now,
// unless the latest checkpoint covers it already, and returns the latest
// checkpoint. It is for callers that need the newest records covered now
// (tests, receipts); the node signs on its own every CheckpointInterval.
func (n *Node) SignCheckpoint() (protocol.SignedCheckpoint, error) {
	if n.ctx.Err() != nil {
		return protocol.SignedCheckpoint{}, ErrClosed
	}
	return n.checkpoints.sign()
}

// logStatus is the log as GET /v1/status shows it.
func (n *Node) logStatus() LogStatus {
	st := LogStatus{Size: n.store.Len()}
	if th, err := n.store.TreeHead(); err == nil {
		st.Size = th.Size
		if th.Size > 0 {
			st.Root = th.Root.String()
		}
	}
	if n.checkpoints != nil {
		st.CheckpointSize = n.checkpoints.latestSize()
	}
	return st
}
