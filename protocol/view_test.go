package protocol

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// countingView is a DecisionView over a fakeView that counts the
// questions it is asked.
type countingView struct {
	*fakeView
	asked int
}

func (c *countingView) AccreditationsOf(id peer.ID) ([]*Record, error) {
	c.asked++
	return c.fakeView.AccreditationsOf(id)
}

func (c *countingView) LinkedFrom(l cid.Cid, kinds ...Kind) ([]*Record, error) {
	c.asked++
	return c.fakeView.LinkedFrom(l, kinds...)
}

func (c *countingView) RulesetsOf(string) ([]*Record, error)          { c.asked++; return nil, nil }
func (c *countingView) IncidentsAffecting(peer.ID) ([]*Record, error) { c.asked++; return nil, nil }
func (c *countingView) DecisionBlock(cid.Cid) (*DecisionBlock, error) {
	c.asked++
	return nil, ErrNotHeld
}

type mapCache map[Question][]*Record

func (m mapCache) Get(q Question) ([]*Record, bool) { rs, ok := m[q]; return rs, ok }
func (m mapCache) Put(q Question, rs []*Record)     { m[q] = rs }

// TestRecordViewAnswersAsItsBase: a view of records alone, a view reading
// through a store, and one through a shared cache give the same answers;
// the base is asked each question once, and not at all when the cache
// has it.
func TestRecordViewAnswersAsItsBase(t *testing.T) {
	fv := federation(t)
	c := consentBy(t, ctrlDE, t0, nil)
	rev := revoke(t, ctrlDE, c, t0+1)
	fv.hold(c, rev)
	var all []*Record
	for _, r := range fv.records {
		all = append(all, r)
	}
	base := &countingView{fakeView: fv}
	cache := mapCache{}
	views := []struct {
		name  string
		v     *RecordView
		asked int // questions it puts to the base
	}{
		{"records", NewRecordView(fv, all), 0},
		{"read through", ReadThrough(base, nil), 3},
		{"through a cold cache", ReadThrough(base, cache), 3},
		{"through a warm cache", ReadThrough(base, cache), 0},
	}
	for _, tc := range views {
		name, v, before := tc.name, tc.v, base.asked
		for range 2 {
			accs, err := v.AccreditationsOf(keyID(ctrlDE))
			if err != nil || len(accs) != 1 {
				t.Errorf("%s: accreditations %d, %v", name, len(accs), err)
			}
			links, err := v.LinkedFrom(c.CID(), KindRevocation)
			if err != nil || len(links) != 1 || !links[0].CID().Equals(rev.CID()) {
				t.Errorf("%s: revocations %v, %v", name, links, err)
			}
			if links, _ := v.LinkedFrom(c.CID(), KindConsent); len(links) != 0 {
				t.Errorf("%s: consents linking %v", name, links)
			}
			if r, err := v.Record(rev.CID()); err != nil || r != rev {
				t.Errorf("%s: Record: %v", name, err)
			}
			if _, err := v.Record(fakeCID("absent")); !errors.Is(err, ErrNotHeld) {
				t.Errorf("%s: an absent record: %v", name, err)
			}
		}
		if got := base.asked - before; got != tc.asked {
			t.Errorf("%s asked the base %d questions, want %d", name, got, tc.asked)
		}
	}
}

// TestRecordViewKeep: a restricted view hides what keep refuses and lists
// what it returned, in order, once each.
func TestRecordViewKeep(t *testing.T) {
	fv := federation(t)
	c := consentBy(t, ctrlDE, t0, nil)
	rev := revoke(t, ctrlDE, c, t0+1)
	fv.hold(c, rev)
	v := ReadThrough(&countingView{fakeView: fv}, nil).Keep(func(r *Record) (bool, error) { return r.Kind() != KindRevocation, nil })
	if links, err := v.LinkedFrom(c.CID()); err != nil || len(links) != 0 {
		t.Errorf("a hidden revocation was listed: %v %v", links, err)
	}
	if _, err := v.Record(rev.CID()); !errors.Is(err, ErrNotHeld) {
		t.Errorf("a hidden revocation was returned: %v", err)
	}
	v.Record(c.CID())
	v.AccreditationsOf(keyID(ctrlDE))
	v.Record(c.CID())
	if got := v.Read(); len(got) != 2 || got[0] != c || got[1].Kind() != KindAccreditation {
		t.Errorf("Read = %v, want the consent then the accreditation", got)
	}
	boom := errors.New("boom")
	bad := ReadThrough(&countingView{fakeView: fv}, nil).Keep(func(*Record) (bool, error) { return false, boom })
	if _, err := bad.Record(c.CID()); !errors.Is(err, boom) || !errors.Is(bad.Err(), boom) {
		t.Errorf("keep's error: %v, Err %v", err, bad.Err())
	}
}
