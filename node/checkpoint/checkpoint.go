// Package checkpoint signs and keeps the checkpoints of a node's log
// (DESIGN.md §6) in the C2SP tlog-checkpoint format (protocol:
// "Checkpoints and cosignatures"), and keeps the cosignatures witnesses
// return on the latest one.
//
// A checkpoint covers only durable leaves (the store's TreeHead reads the
// last durable commit), and the node never signs two for one size: it
// signs only when the log grew past the latest checkpoint, and it keeps
// that checkpoint in the store, durably, before anyone sees it. At start
// the service checks the kept checkpoint against the log and refuses to
// start if they disagree.
//
// A node restored from a backup (the store's restore mark) signs nothing
// until Resume: it may not know the largest of its checkpoints its peers
// hold, and a tree of that size or below other than the one it signed
// would be equivocation (DESIGN.md §6, "Restoring a node"; node/rejoin
// decides when). Until then Sign answers service.ErrSigningHeld, and
// Latest the checkpoint the backup held, if any.
package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Config configures the service. A zero field means the documented
// default.
type Config struct {
	Store      *store.Store   // required
	Key        crypto.PrivKey // required: the node's key
	Federation string         // required: the federation's name
	// Interval is how often the service signs a checkpoint, when the log
	// grew. Default 10s.
	Interval time.Duration
	Logger   *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

const defaultInterval = 10 * time.Second

// Service is the node's checkpoints. Make one with New; Close stops its
// signing loop.
type Service struct {
	cfg    Config
	log    *slog.Logger
	g      *service.Group
	signer *protocol.CheckpointSigner
	signed prometheus.Counter

	mu     sync.Mutex // held while signing and keeping a checkpoint
	latest atomic.Pointer[protocol.SignedCheckpoint]
	// held: restored from a backup, not resumed yet (Resume).
	held atomic.Bool
}

// New loads the kept checkpoint, checking it against the log, and starts
// signing on the interval.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil || cfg.Key == nil:
		return nil, errors.New("checkpoint: Store and Key are required")
	case cfg.Interval < 0:
		return nil, fmt.Errorf("checkpoint: Interval is negative (%s)", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = defaultInterval
	}
	service.Defaults(nil, &cfg.Logger)
	signer, err := protocol.NewCheckpointSigner(cfg.Federation, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("node: checkpoints: %w", err)
	}
	c := &Service{cfg: cfg, log: cfg.Logger, g: service.NewGroup(), signer: signer,
		signed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_checkpoints_signed_total",
			Help: "Checkpoints of the log this node signed.",
		}),
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	if err := c.loadHold(); err != nil {
		return nil, err
	}
	if err := service.Register(cfg.Registerer, "checkpoint", c.signed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_log_size",
			Help: "Records in the node's log (durable).",
		}, func() float64 { return float64(cfg.Store.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_log_checkpoint_size",
			Help: "Size of the latest checkpoint this node signed.",
		}, func() float64 { return float64(c.LatestSize()) }),
	); err != nil {
		return nil, err
	}
	c.g.Go(c.run)
	return c, nil
}

// Close stops the signing loop. It is idempotent.
func (c *Service) Close() { c.g.Close() }

// Signer is the node's checkpoint signer (it cosigns peers' checkpoints
// too).
func (c *Service) Signer() *protocol.CheckpointSigner { return c.signer }

// load takes the kept checkpoint as the latest, after checking it: the
// store checks its tree against the log, and load that its note is this
// node's, signed, and states that tree.
func (c *Service) load() error {
	kept, ok, err := c.cfg.Store.LastCheckpoint()
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
			c.log.Info("the store's last checkpoint is another origin's (the node has a new key, or the federation a new name): this node signs its own from here",
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

// loadHold holds signing if the store was restored and not resumed since.
func (c *Service) loadHold() error {
	mark, ok, err := c.cfg.Store.Restored()
	if err != nil {
		return fmt.Errorf("node: reading the restore mark: %w", err)
	}
	if ok {
		c.held.Store(true)
		c.log.Warn("restored from a backup: signing no checkpoint until the peers say which of this node's checkpoints they hold",
			"restored_at", time.UnixMilli(mark.At).UTC().Format(time.RFC3339), "backup_taken_at", time.UnixMilli(mark.TakenAt).UTC().Format(time.RFC3339),
			"log_size", mark.Size, "checkpoint_size", mark.CheckpointSize)
	}
	return nil
}

// Held reports whether signing is held after a restore (until Resume).
func (c *Service) Held() bool { return c.held.Load() }

// Resume ends the hold after a restore. peers is the largest checkpoint
// of this node that its peers hold (nil when they hold none, or none
// larger than the node's own latest): it must be this node's, signed,
// and a tree of the log as it is now (the store checks its root), and
// becomes the latest checkpoint, so that the next one signed extends it.
// Resume then clears the store's restore mark. On error signing stays
// held.
func (c *Service) Resume(peers *protocol.SignedCheckpoint) error {
	if c.g.Closed() {
		return service.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held.Load() {
		return nil
	}
	if latest := c.latest.Load(); peers != nil && (latest == nil || peers.Size > latest.Size) {
		sc, err := protocol.OpenCheckpointWith(peers.Note, c.signer.Verifier())
		if err != nil {
			return fmt.Errorf("node: resuming: the peers' checkpoint: %w", err)
		}
		if err := c.cfg.Store.SaveCheckpoint(store.Checkpoint{Size: sc.Size, Root: sc.Root, Note: peers.Note}); err != nil {
			return fmt.Errorf("node: resuming: the peers' checkpoint of size %d: %w", sc.Size, err)
		}
		c.latest.Store(&protocol.SignedCheckpoint{LogCheckpoint: sc.LogCheckpoint, Note: peers.Note})
	}
	if err := c.cfg.Store.ClearRestored(); err != nil {
		return fmt.Errorf("node: resuming: %w", err)
	}
	c.held.Store(false)
	c.log.Info("signing resumes after the restore", "latest_checkpoint", c.LatestSize())
	return nil
}

// run signs a checkpoint now and then every interval, when the log grew.
func (c *Service) run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := c.sign(); err != nil && !errors.Is(err, service.ErrEmptyLog) && !errors.Is(err, service.ErrSigningHeld) && ctx.Err() == nil {
			c.log.Error("signing a checkpoint failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Latest returns the node's latest signed checkpoint, signing one first
// if the node has signed none yet; service.ErrEmptyLog while the log is empty.
// The service signs a newer one every Interval when the log grew.
func (c *Service) Latest() (protocol.SignedCheckpoint, error) {
	if c.g.Closed() {
		return protocol.SignedCheckpoint{}, service.ErrClosed
	}
	if sc := c.latest.Load(); sc != nil {
		return *sc, nil
	}
	return c.sign()
}

// Sign signs a checkpoint of the log as it is durable now, unless the
// latest checkpoint covers it already, and returns the latest checkpoint.
// It is for callers that need the newest records covered now (tests,
// bundles); the service signs on its own every Interval.
func (c *Service) Sign() (protocol.SignedCheckpoint, error) {
	if c.g.Closed() {
		return protocol.SignedCheckpoint{}, service.ErrClosed
	}
	return c.sign()
}

// sign signs a checkpoint of the durable log if it grew past the latest
// checkpoint, keeps it durably, and only then makes it the latest. It
// returns the latest checkpoint, new or not.
func (c *Service) sign() (protocol.SignedCheckpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	th, err := c.cfg.Store.TreeHead()
	if err != nil {
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: checkpoint: %w", err)
	}
	latest := c.latest.Load()
	if c.held.Load() && (latest == nil || th.Size != latest.Size) {
		return protocol.SignedCheckpoint{}, service.ErrSigningHeld
	}
	switch {
	case latest != nil && th.Size == latest.Size:
		return *latest, nil
	case latest != nil && th.Size < latest.Size:
		// The store checked the kept checkpoint against the log at start
		// and the log only grows: this is a bug, not a state to serve.
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: checkpoint: the log has %d records, the latest checkpoint %d", th.Size, latest.Size)
	case th.Size == 0:
		return protocol.SignedCheckpoint{}, service.ErrEmptyLog
	}
	sc, err := c.signer.Sign(protocol.LogCheckpoint{Origin: c.signer.Name(), Size: th.Size, Root: th.Root})
	if err != nil {
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: %w", err)
	}
	if err := c.cfg.Store.SaveCheckpoint(store.Checkpoint{Size: th.Size, Root: th.Root, Note: sc.Note}); err != nil {
		return protocol.SignedCheckpoint{}, fmt.Errorf("node: keeping checkpoint %d: %w", th.Size, err)
	}
	c.latest.Store(&sc)
	c.signed.Inc()
	c.log.Debug("checkpoint signed", "size", th.Size, "root", th.Root.String())
	return sc, nil
}

// LatestSize is the size of the latest checkpoint, 0 before the first.
func (c *Service) LatestSize() uint64 {
	if sc := c.latest.Load(); sc != nil {
		return sc.Size
	}
	return 0
}

// AddCosignature verifies msg, this node's checkpoint note carrying a
// cosignature of witness, and, when it is of the node's latest
// checkpoint, keeps that checkpoint's note with the cosignature added
// (protocol.MergeCosignature). Whether witness is a member is the
// caller's to check.
func (c *Service) AddCosignature(witness peer.ID, msg []byte) error {
	if c.g.Closed() {
		return service.ErrClosed
	}
	if name := protocol.CheckpointOrigin(c.cfg.Federation, witness); name == c.signer.Name() {
		return fmt.Errorf("%w: a cosignature by the node itself", protocol.ErrBadCosignature)
	}
	_, line, err := protocol.VerifyCosignature(msg, c.cfg.Federation, witness)
	if err != nil {
		return err
	}
	sc, err := protocol.OpenCheckpointWith(msg, c.signer.Verifier())
	if err != nil {
		return fmt.Errorf("%w: %v", protocol.ErrBadCosignature, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	latest := c.latest.Load()
	if latest == nil || latest.Size != sc.Size || latest.Root != sc.Root {
		return service.ErrStaleCosignature
	}
	out, err := protocol.MergeCosignature(latest.Note, line)
	if err != nil {
		return err
	}
	if err := c.cfg.Store.SaveCheckpoint(store.Checkpoint{Size: latest.Size, Root: latest.Root, Note: out}); err != nil {
		return fmt.Errorf("node: keeping a cosigned checkpoint: %w", err)
	}
	c.latest.Store(&protocol.SignedCheckpoint{LogCheckpoint: latest.LogCheckpoint, Note: out})
	return nil
}
