package node

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// ErrStaleCosignature is returned by AddCosignature for a cosignature of
// a checkpoint that is not the node's latest.
var ErrStaleCosignature = errors.New("node: cosignature of a checkpoint that is not the latest")

// AddCosignature verifies msg, this node's checkpoint note carrying a
// cosignature of witness (a federation member), and, when it is of the
// node's latest checkpoint, keeps that checkpoint's note with the
// cosignature added (protocol.MergeCosignature).
func (n *Node) AddCosignature(witness peer.ID, msg []byte) error {
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	if witness == n.id {
		return fmt.Errorf("%w: a cosignature by the node itself", protocol.ErrBadCosignature)
	}
	if !n.trust.isMember(witness, n.cfg.Now().UnixMilli()) {
		return fmt.Errorf("%w: %s is not a member of the federation", protocol.ErrBadCosignature, witness)
	}
	_, line, err := protocol.VerifyCosignature(msg, n.cfg.Federation.Name, witness)
	if err != nil {
		return err
	}
	c := n.checkpoints
	sc, err := protocol.OpenCheckpointWith(msg, c.signer.Verifier())
	if err != nil {
		return fmt.Errorf("%w: %v", protocol.ErrBadCosignature, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	latest := c.latest.Load()
	if latest == nil || latest.Size != sc.Size || latest.Root != sc.Root {
		return ErrStaleCosignature
	}
	out, err := protocol.MergeCosignature(latest.Note, line)
	if err != nil {
		return err
	}
	if err := c.store.SaveCheckpoint(store.Checkpoint{Size: latest.Size, Root: latest.Root, Note: out}); err != nil {
		return fmt.Errorf("node: keeping a cosigned checkpoint: %w", err)
	}
	c.latest.Store(&protocol.SignedCheckpoint{LogCheckpoint: latest.LogCheckpoint, Note: out})
	return nil
}
