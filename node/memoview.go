package node

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

// memoView is a protocol.DecisionView that remembers what it read, for one
// decision: the procedure asks the same questions several times (an
// accreditation's revocations at the consent's issued_at and at the
// decision time, a ruleset's for each side), and each is a store scan.
// Not safe for concurrent use; make one per decision.
type memoView struct {
	*trustView
	records   map[cid.Cid]*protocol.Record
	linked    map[linkQuery][]*protocol.Record
	accs      map[peer.ID][]*protocol.Record
	rulesets  map[string][]*protocol.Record
	incidents map[peer.ID][]*protocol.Record
}

func newMemoView(v *trustView) *memoView {
	return &memoView{trustView: v,
		records: map[cid.Cid]*protocol.Record{}, linked: map[linkQuery][]*protocol.Record{},
		accs: map[peer.ID][]*protocol.Record{}, rulesets: map[string][]*protocol.Record{},
		incidents: map[peer.ID][]*protocol.Record{}}
}

// memo returns m[k], reading it with read the first time. Errors are not
// remembered.
func memo[K comparable, V any](m map[K]V, k K, read func(K) (V, error)) (V, error) {
	if v, ok := m[k]; ok {
		return v, nil
	}
	v, err := read(k)
	if err == nil {
		m[k] = v
	}
	return v, err
}

func (v *memoView) Record(c cid.Cid) (*protocol.Record, error) {
	return memo(v.records, c, v.trustView.Record)
}

// linkQuery is a LinkedFrom question: the protocol asks for one kind at
// a time.
type linkQuery struct {
	c     cid.Cid
	kinds string
}

func (v *memoView) LinkedFrom(c cid.Cid, kinds ...protocol.Kind) ([]*protocol.Record, error) {
	q := linkQuery{c: c}
	for _, k := range kinds {
		q.kinds += string(k) + ","
	}
	return memo(v.linked, q, func(linkQuery) ([]*protocol.Record, error) { return v.trustView.LinkedFrom(c, kinds...) })
}

func (v *memoView) AccreditationsOf(id peer.ID) ([]*protocol.Record, error) {
	return memo(v.accs, id, v.trustView.AccreditationsOf)
}

func (v *memoView) RulesetsOf(j string) ([]*protocol.Record, error) {
	return memo(v.rulesets, j, v.trustView.RulesetsOf)
}

func (v *memoView) IncidentsAffecting(id peer.ID) ([]*protocol.Record, error) {
	return memo(v.incidents, id, v.trustView.IncidentsAffecting)
}
