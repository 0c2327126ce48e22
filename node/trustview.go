package node

import (
	"errors"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// trustView is protocol.TrustView over the recognised part of the
// federation file and the node's store.
type trustView struct {
	authorities   map[string]peer.ID
	founding      map[peer.ID]string
	jurisdictions []string
	store         *store.Store
}

func newTrustView(fed *config.Federation, s *store.Store) *trustView {
	v := &trustView{authorities: fed.Authorities(), founding: fed.FoundingNodes(), store: s}
	for _, j := range fed.Jurisdictions {
		v.jurisdictions = append(v.jurisdictions, j.Code)
	}
	return v
}

func (v *trustView) Authority(j string) (peer.ID, bool) {
	id, ok := v.authorities[j]
	return id, ok
}

func (v *trustView) FoundingNode(id peer.ID) (string, bool) {
	j, ok := v.founding[id]
	return j, ok
}

func (v *trustView) Record(c cid.Cid) (*protocol.Record, error) {
	r, err := v.store.Get(c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, protocol.ErrNotHeld
	}
	return r, err
}

func (v *trustView) AccreditationsOf(id peer.ID) ([]*protocol.Record, error) {
	return v.store.AccreditationsOf(id)
}

func (v *trustView) LinkedFrom(c cid.Cid, kinds ...protocol.Kind) ([]*protocol.Record, error) {
	return v.store.LinkedFrom(c, kinds...)
}

// isMember reports whether id may connect: a founding node of a recognised
// jurisdiction, or the holder of a live node accreditation at now.
func (v *trustView) isMember(id peer.ID, nowMs int64) bool {
	if _, ok := v.founding[id]; ok {
		return true
	}
	ok, err := protocol.IsMemberNode(v, id, v.jurisdictions, nowMs)
	return err == nil && ok
}

func isNodeOf(v *trustView, id peer.ID, j string, nowMs int64) (bool, error) {
	_, ok, err := protocol.HasRole(v, id, j, protocol.RoleNode, nowMs)
	return ok, err
}

// RulesetsOf and IncidentsAffecting make trustView a
// protocol.DecisionView.
func (v *trustView) RulesetsOf(jurisdiction string) ([]*protocol.Record, error) {
	return v.store.RulesetsOf(jurisdiction)
}

func (v *trustView) IncidentsAffecting(id peer.ID) ([]*protocol.Record, error) {
	return v.store.IncidentsAffecting(id)
}
