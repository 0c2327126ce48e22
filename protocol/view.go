package protocol

import (
	"errors"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// RecordView is the one in-memory DecisionView. It answers from the
// records it holds in memory, and, when it has a base view, reads what
// it lacks through the base and remembers the answer. Three uses share
// it:
//
//   - a receipt bundle's check: the bundle's records and the federation
//     file's trust, nothing else (NewRecordView);
//   - one decision at a node: the node's store as the base, read once per
//     question however often the procedure asks it, and optionally
//     through an AnswerCache shared between decisions (ReadThrough);
//   - a node rebuilding a receipt's bundle: the store as the base,
//     restricted to the records held before the receipt (Keep), and
//     recording every record returned (Record, Read).
//
// Not safe for concurrent use; lists it returns must not be modified.
type RecordView struct {
	anchors Anchors
	base    DecisionView // nil: only the records added
	cache   AnswerCache  // nil: none
	// keep, when set, hides the records it refuses.
	keep    func(*Record) (bool, error)
	records map[cid.Cid]*Record
	blocks  map[cid.Cid]*DecisionBlock
	answers map[Question][]*Record
	// record, when set, lists every record returned, in first-return
	// order.
	record bool
	seen   map[cid.Cid]bool
	read   []*Record
	err    error // the base's first error
}

// Anchors are the federation file's side of a TrustView: authorities and
// founding nodes of the recognised jurisdictions.
type Anchors interface {
	Authority(jurisdiction string) (peer.ID, bool)
	FoundingNode(id peer.ID) (jurisdiction string, ok bool)
}

// StaticAnchors are Anchors given as maps.
type StaticAnchors struct {
	Authorities   map[string]peer.ID
	FoundingNodes map[peer.ID]string
}

func (a StaticAnchors) Authority(j string) (peer.ID, bool) {
	id, ok := a.Authorities[j]
	return id, ok
}

func (a StaticAnchors) FoundingNode(id peer.ID) (string, bool) {
	j, ok := a.FoundingNodes[id]
	return j, ok
}

// Question is one of a DecisionView's record-list questions.
type Question struct {
	Op  byte   // 'a' AccreditationsOf, 'r' RulesetsOf, 'i' IncidentsAffecting, 'l' LinkedFrom
	Key string // the peer ID, jurisdiction or binary CID asked about
	// Kinds, for LinkedFrom: the kinds asked for, comma-terminated.
	Kinds string
}

// AnswerCache keeps answers of a base view for the views after one (a
// node's decisions share their store reads through one). Get reports
// false for an answer it does not have; Put may keep it or not.
type AnswerCache interface {
	Get(q Question) ([]*Record, bool)
	Put(q Question, rs []*Record)
}

// NewRecordView is a view of records alone, with anchors: it answers as a
// store holding only those records would.
func NewRecordView(anchors Anchors, records []*Record) *RecordView {
	v := newRecordView(anchors)
	for _, r := range records {
		if r == nil {
			continue
		}
		v.records[r.CID()] = r
		for _, l := range r.Links() {
			q := Question{Op: 'l', Key: l.KeyString()}
			v.answers[q] = append(v.answers[q], r)
		}
		switch b := r.Body().(type) {
		case *Accreditation:
			if id, err := peer.Decode(b.Subject); err == nil {
				q := Question{Op: 'a', Key: string(id)}
				v.answers[q] = append(v.answers[q], r)
			}
		case *Ruleset:
			q := Question{Op: 'r', Key: b.Jurisdiction}
			v.answers[q] = append(v.answers[q], r)
		case *Incident:
			for _, a := range b.Affected {
				if id, err := peer.Decode(a); err == nil {
					q := Question{Op: 'i', Key: string(id)}
					v.answers[q] = append(v.answers[q], r)
				}
			}
		}
	}
	return v
}

// ReadThrough is a view that reads through base, remembering each answer
// (and asking cache, if not nil, before base).
func ReadThrough(base DecisionView, cache AnswerCache) *RecordView {
	v := newRecordView(base)
	v.base, v.cache = base, cache
	return v
}

func newRecordView(anchors Anchors) *RecordView {
	return &RecordView{anchors: anchors, records: map[cid.Cid]*Record{}, blocks: map[cid.Cid]*DecisionBlock{}, answers: map[Question][]*Record{}}
}

// AddBlock adds a decision block to the view, under its CID c (which the
// caller has checked).
func (v *RecordView) AddBlock(c cid.Cid, b *DecisionBlock) { v.blocks[c] = b }

// DecisionBlock returns a block added to the view, or reads it through
// the base and remembers it.
func (v *RecordView) DecisionBlock(c cid.Cid) (*DecisionBlock, error) {
	if b, ok := v.blocks[c]; ok {
		return b, nil
	}
	if v.base == nil {
		return nil, ErrNotHeld
	}
	b, err := v.base.DecisionBlock(c)
	if err != nil {
		if !errors.Is(err, ErrNotHeld) {
			v.fail(err)
		}
		return nil, err
	}
	v.blocks[c] = b
	return b, nil
}

// Keep restricts the view to the records keep accepts, and makes it
// record what it returns (Read). It returns v.
func (v *RecordView) Keep(keep func(*Record) (bool, error)) *RecordView {
	v.keep, v.record, v.seen = keep, true, map[cid.Cid]bool{}
	return v
}

// Read lists the records the view returned, in first-return order (for a
// view made with Keep).
func (v *RecordView) Read() []*Record { return v.read }

// Err is the first error of the base view or of keep, if any.
func (v *RecordView) Err() error { return v.err }

func (v *RecordView) Authority(j string) (peer.ID, bool)     { return v.anchors.Authority(j) }
func (v *RecordView) FoundingNode(id peer.ID) (string, bool) { return v.anchors.FoundingNode(id) }

func (v *RecordView) Record(c cid.Cid) (*Record, error) {
	r, ok := v.records[c]
	if !ok {
		if v.base == nil {
			return nil, ErrNotHeld
		}
		var err error
		if r, err = v.base.Record(c); err != nil {
			if !errors.Is(err, ErrNotHeld) {
				v.fail(err)
			}
			return nil, err
		}
		v.records[c] = r
	}
	if v.keep == nil {
		return r, nil
	}
	kept, err := v.filter([]*Record{r})
	if err != nil {
		return nil, err
	}
	if len(kept) == 0 {
		return nil, ErrNotHeld
	}
	return r, nil
}

func (v *RecordView) AccreditationsOf(id peer.ID) ([]*Record, error) {
	return v.ask(Question{Op: 'a', Key: string(id)}, func() ([]*Record, error) { return v.base.AccreditationsOf(id) })
}

func (v *RecordView) RulesetsOf(j string) ([]*Record, error) {
	return v.ask(Question{Op: 'r', Key: j}, func() ([]*Record, error) { return v.base.RulesetsOf(j) })
}

func (v *RecordView) IncidentsAffecting(id peer.ID) ([]*Record, error) {
	return v.ask(Question{Op: 'i', Key: string(id)}, func() ([]*Record, error) { return v.base.IncidentsAffecting(id) })
}

func (v *RecordView) LinkedFrom(c cid.Cid, kinds ...Kind) ([]*Record, error) {
	if v.base == nil {
		// The records alone: every link is indexed, whatever its kind.
		all, err := v.filter(v.answers[Question{Op: 'l', Key: c.KeyString()}])
		if err != nil || len(kinds) == 0 {
			return all, err
		}
		var out []*Record
		for _, r := range all {
			if slices.Contains(kinds, r.Kind()) {
				out = append(out, r)
			}
		}
		return out, nil
	}
	q := Question{Op: 'l', Key: c.KeyString()}
	for _, k := range kinds {
		q.Kinds += string(k) + ","
	}
	return v.ask(q, func() ([]*Record, error) { return v.base.LinkedFrom(c, kinds...) })
}

// ask answers q from memory, then the cache, then the base. Errors are
// not remembered.
func (v *RecordView) ask(q Question, read func() ([]*Record, error)) ([]*Record, error) {
	rs, ok := v.answers[q]
	if !ok && v.base != nil {
		if v.cache != nil {
			rs, ok = v.cache.Get(q)
		}
		if !ok {
			var err error
			if rs, err = read(); err != nil {
				return nil, v.fail(err)
			}
			if v.cache != nil {
				v.cache.Put(q, rs)
			}
		}
		v.answers[q] = rs
	}
	return v.filter(rs)
}

// filter keeps what keep accepts, and records it.
func (v *RecordView) filter(rs []*Record) ([]*Record, error) {
	if v.keep == nil {
		return rs, nil
	}
	out := rs[:0:0]
	for _, r := range rs {
		ok, err := v.keep(r)
		if err != nil {
			return nil, v.fail(err)
		}
		if !ok {
			continue
		}
		out = append(out, r)
		if v.record && !v.seen[r.CID()] {
			v.seen[r.CID()] = true
			v.read = append(v.read, r)
		}
	}
	return out, nil
}

func (v *RecordView) fail(err error) error {
	if v.err == nil {
		v.err = err
	}
	return err
}
