// Package trust is the node's view of the federation: the federation file
// as the node recognises it and the records it holds, read as
// protocol.TrustView and protocol.DecisionView, and the membership
// questions the gate, gossip, fetch and witnessing ask of it.
package trust

import (
	"errors"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// View is protocol.DecisionView over the recognised part of the
// federation file and the node's store. It is safe for concurrent use.
type View struct {
	authorities   map[string]peer.ID
	founding      map[peer.ID]string
	jurisdictions []string
	store         *store.Store
	// blocks keeps decoded decision blocks: named by their content, they
	// never change, and a resale's decisions read their parent's again
	// and again. At most maxBlocks; when full it starts again empty.
	blocksMu sync.RWMutex
	blocks   map[cid.Cid]*protocol.DecisionBlock
}

// maxBlocks bounds View.blocks: at most 64 KiB each, a few hundred MiB
// in the worst case, a few MiB in practice (blocks are ~2 KiB).
const maxBlocks = 4096

// NewView is the view of fed (restricted to the recognised jurisdictions)
// over s.
func NewView(fed *config.Federation, s *store.Store) *View {
	v := &View{authorities: fed.Authorities(), founding: fed.FoundingNodes(), store: s, blocks: map[cid.Cid]*protocol.DecisionBlock{}}
	for _, j := range fed.Jurisdictions {
		v.jurisdictions = append(v.jurisdictions, j.Code)
	}
	return v
}

// Store is the store the view reads.
func (v *View) Store() *store.Store { return v.store }

// Jurisdictions are the recognised jurisdictions, in federation file
// order.
func (v *View) Jurisdictions() []string { return slices.Clone(v.jurisdictions) }

func (v *View) Authority(j string) (peer.ID, bool) {
	id, ok := v.authorities[j]
	return id, ok
}

func (v *View) FoundingNode(id peer.ID) (string, bool) {
	j, ok := v.founding[id]
	return j, ok
}

func (v *View) Record(c cid.Cid) (*protocol.Record, error) {
	r, err := v.store.Get(c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, protocol.ErrNotHeld
	}
	return r, err
}

func (v *View) AccreditationsOf(id peer.ID) ([]*protocol.Record, error) {
	return v.store.AccreditationsOf(id)
}

func (v *View) LinkedFrom(c cid.Cid, kinds ...protocol.Kind) ([]*protocol.Record, error) {
	return v.store.LinkedFrom(c, kinds...)
}

func (v *View) RulesetsOf(jurisdiction string) ([]*protocol.Record, error) {
	return v.store.RulesetsOf(jurisdiction)
}

func (v *View) IncidentsAffecting(id peer.ID) ([]*protocol.Record, error) {
	return v.store.IncidentsAffecting(id)
}

// DecisionBlock returns the held decision block c, decoded; the block is
// shared and must not be modified.
func (v *View) DecisionBlock(c cid.Cid) (*protocol.DecisionBlock, error) {
	v.blocksMu.RLock()
	blk, ok := v.blocks[c]
	v.blocksMu.RUnlock()
	if ok {
		return blk, nil
	}
	b, err := v.store.GetBlock(c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, protocol.ErrNotHeld
	}
	if err != nil {
		return nil, err
	}
	if blk, err = protocol.DecodeDecisionBlock(b); err != nil {
		return nil, err
	}
	v.KeepBlock(c, blk)
	return blk, nil
}

// KeepBlock puts a decision block the store now holds under c, decoded,
// in the cache (the verify service, which has just made it); blk must not
// be modified after.
func (v *View) KeepBlock(c cid.Cid, blk *protocol.DecisionBlock) {
	v.blocksMu.Lock()
	if len(v.blocks) >= maxBlocks {
		clear(v.blocks)
	}
	v.blocks[c] = blk
	v.blocksMu.Unlock()
}

// IsMember reports whether id may connect (DESIGN.md §3): a founding node
// of a recognised jurisdiction, or the holder of a live node
// accreditation of one at atMs.
func (v *View) IsMember(id peer.ID, atMs int64) bool {
	if _, ok := v.founding[id]; ok {
		return true
	}
	ok, err := protocol.IsMemberNode(v, id, v.jurisdictions, atMs)
	return err == nil && ok
}

// NodeJurisdiction is the jurisdiction of which id is a node at atMs (a
// founding node, or by a live node accreditation), or "".
func (v *View) NodeJurisdiction(id peer.ID, atMs int64) string {
	if j, ok := v.founding[id]; ok {
		return j
	}
	for _, j := range v.jurisdictions {
		if _, ok, _ := protocol.HasRole(v, id, j, protocol.RoleNode, atMs); ok {
			return j
		}
	}
	return ""
}
