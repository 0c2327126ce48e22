package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

// runConformance checks the behaviour every store must show, whatever its
// backing. open returns a fresh, empty store that the test owns; the suite
// closes it (again) at cleanup.
func runConformance(t *testing.T, open func(t *testing.T) *Store) {
	ctx := context.Background()
	fresh := func(t *testing.T) *Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("PutGetHas", func(t *testing.T) {
		s := fresh(t)
		auth := newSigner(t)
		r := auth.accreditation(t, peerID(t), "DE")
		res, err := s.Put(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if res != (PutResult{Seq: 1, New: true}) {
			t.Fatalf("Put = %+v, want seq 1, new", res)
		}
		got, err := s.Get(r.CID())
		if err != nil {
			t.Fatal(err)
		}
		mustSameRecord(t, got, r)
		b, err := s.GetBytes(r.CID())
		if err != nil || string(b) != string(r.Bytes()) {
			t.Fatalf("GetBytes = %x, %v; want the record's bytes", b, err)
		}
		if ok, err := s.Has(r.CID()); !ok || err != nil {
			t.Fatalf("Has = %v, %v; want true", ok, err)
		}
		if seq, err := s.Seq(r.CID()); seq != 1 || err != nil {
			t.Fatalf("Seq = %d, %v; want 1", seq, err)
		}

		// Read back from Badger, not from the cache.
		s.cache = newRecordCache(DefaultCacheBytes)
		got, err = s.Get(r.CID())
		if err != nil {
			t.Fatal(err)
		}
		mustSameRecord(t, got, r)
		if s.cache.len() != 1 {
			t.Errorf("after a Get from Badger the cache holds %d records, want 1", s.cache.len())
		}
		s.cache = newRecordCache(DefaultCacheBytes)
		b, err = s.GetBytes(r.CID())
		if err != nil || string(b) != string(r.Bytes()) {
			t.Fatalf("GetBytes from Badger = %x, %v; want the record's bytes", b, err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := fresh(t)
		auth := newSigner(t)
		if _, err := s.Put(ctx, auth.consent(t, "DE")); err != nil {
			t.Fatal(err)
		}
		missing := auth.consent(t, "DE").CID()
		if _, err := s.Get(missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := s.GetBytes(missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetBytes(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := s.Seq(missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Seq(missing) error = %v, want ErrNotFound", err)
		}
		if ok, err := s.Has(missing); ok || err != nil {
			t.Errorf("Has(missing) = %v, %v; want false, nil", ok, err)
		}
		if rs, err := s.AccreditationsOf(peerID(t)); len(rs) != 0 || err != nil {
			t.Errorf("AccreditationsOf(unknown) = %v, %v; want none", rs, err)
		}
		if rs, err := s.LinkedFrom(missing); len(rs) != 0 || err != nil {
			t.Errorf("LinkedFrom(missing) = %v, %v; want none", rs, err)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s := fresh(t)
		auth := newSigner(t)
		a, b, c := auth.consent(t, "DE"), auth.consent(t, "FR"), auth.consent(t, "BR")
		if _, err := s.Put(ctx, a); err != nil {
			t.Fatal(err)
		}
		res, err := s.Put(ctx, a)
		if err != nil || res != (PutResult{Seq: 1}) {
			t.Fatalf("second Put = %+v, %v; want seq 1, not new", res, err)
		}
		// A held record, a new one listed twice, and another new one: the
		// duplicate within the batch reaches the writer's own check.
		many, err := s.PutMany(ctx, []*protocol.Record{a, b, b, c})
		if err != nil {
			t.Fatal(err)
		}
		want := []PutResult{{Seq: 1}, {Seq: 2, New: true}, {Seq: 2}, {Seq: 3, New: true}}
		if !slices.Equal(many, want) {
			t.Fatalf("PutMany = %+v, want %+v", many, want)
		}
		if s.Len() != 3 {
			t.Errorf("Len = %d, want 3", s.Len())
		}
		if n := s.Counts()[protocol.KindConsent]; n != 3 {
			t.Errorf("consent count = %d, want 3", n)
		}
		if st := s.WriteStats(); st.Written != 3 {
			t.Errorf("WriteStats.Written = %d, want 3", st.Written)
		}

		// The same new record from many callers at once: one write.
		d := auth.consent(t, "DE")
		results := make([]PutResult, 16)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				res, err := s.Put(ctx, d)
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			})
		}
		wg.Wait()
		news := 0
		for _, res := range results {
			if res.Seq != 4 {
				t.Errorf("concurrent Put of one record: seq %d, want 4", res.Seq)
			}
			if res.New {
				news++
			}
		}
		if news != 1 {
			t.Errorf("concurrent Put of one record: %d results say new, want 1", news)
		}
		if s.Len() != 4 {
			t.Errorf("Len = %d, want 4", s.Len())
		}
	})

	t.Run("DenseSeqs", func(t *testing.T) {
		s := fresh(t)
		auth := newSigner(t)
		var rs []*protocol.Record
		for i := range 30 {
			rs = append(rs, auth.incident(t, "DE", cid.Undef))
			if i%3 == 0 {
				if _, err := s.Put(ctx, rs[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := s.PutMany(ctx, rs); err != nil {
			t.Fatal(err)
		}
		if s.Len() != 30 {
			t.Fatalf("Len = %d, want 30", s.Len())
		}
		seen := make(map[uint64]bool)
		for _, r := range rs {
			seq, err := s.Seq(r.CID())
			if err != nil {
				t.Fatal(err)
			}
			if seq < 1 || seq > 30 || seen[seq] {
				t.Fatalf("seq %d out of 1..30 or repeated", seq)
			}
			seen[seq] = true
		}
		entries, next, err := s.List(Query{})
		if err != nil || next != 0 || len(entries) != 30 {
			t.Fatalf("List = %d entries, next %d, %v; want 30, 0", len(entries), next, err)
		}
		for i, e := range entries {
			if e.Seq != uint64(i+1) {
				t.Fatalf("entry %d has seq %d", i, e.Seq)
			}
			if seq, _ := s.Seq(e.Record.CID()); seq != e.Seq {
				t.Fatalf("entry seq %d, Seq() %d", e.Seq, seq)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		s := fresh(t)
		w := newWorld(t)
		w.populate(t, s)
		w.checkCounts(t, s)
		queries := []Query{
			{},
			{Kind: protocol.KindAccreditation},
			{Kind: protocol.KindIncident},
			{Kind: protocol.KindRevocation},
			{Kind: protocol.KindConsent},
			{Kind: protocol.KindRuleset}, // none held
			{Issuer: w.de.id},
			{Issuer: w.fr.id},
			{Issuer: w.platform.id},
			{Issuer: peerID(t)}, // no records
			{Jurisdiction: "DE"},
			{Jurisdiction: "FR"},
			{Jurisdiction: "XX"},
			{Kind: protocol.KindIncident, Issuer: w.fr.id},
			{Kind: protocol.KindIncident, Jurisdiction: "DE"},
			{Kind: protocol.KindRevocation, Jurisdiction: "DE"}, // revocations name none
			{Issuer: w.de.id, Jurisdiction: "FR"},
			{Issuer: w.platform.id, Jurisdiction: "DE"},
			{Kind: protocol.KindConsent, Issuer: w.platform.id, Jurisdiction: "FR"},
			{Kind: protocol.KindAccreditation, Issuer: w.fr.id, Jurisdiction: "FR"},
		}
		for _, q := range queries {
			want := w.match(q)
			for _, limit := range []int{0, 1, 3, 7} {
				q := q
				q.Limit = limit
				t.Run(fmt.Sprintf("%s/limit=%d", describeQuery(q), limit), func(t *testing.T) {
					got := listAll(t, s, q)
					if !slices.Equal(got, want) {
						t.Fatalf("seqs %v, want %v", got, want)
					}
				})
			}
			// Starting mid-way.
			if len(want) > 2 {
				q := q
				q.After = want[1]
				entries, _, err := s.List(q)
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) != len(want)-2 || len(entries) > 0 && entries[0].Seq != want[2] {
					t.Errorf("%s after %d: got %d entries, want %d from seq %d",
						describeQuery(q), q.After, len(entries), len(want)-2, want[2])
				}
			}
		}
		if _, _, err := s.List(Query{Kind: "gossip"}); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("List of an unknown kind: %v, want ErrInvalidQuery", err)
		}
		if _, _, err := s.List(Query{Limit: -1}); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("List with a negative limit: %v, want ErrInvalidQuery", err)
		}
		if entries, next, err := s.List(Query{After: ^uint64(0)}); len(entries) != 0 || next != 0 || err != nil {
			t.Errorf("List after the last possible seq: %d entries, next %d, %v", len(entries), next, err)
		}
	})

	t.Run("ListLimits", func(t *testing.T) {
		s := fresh(t)
		rs := manyRecords(t, MaxListLimit+50)
		if _, err := s.PutMany(ctx, rs); err != nil {
			t.Fatal(err)
		}
		entries, next, err := s.List(Query{})
		if err != nil || len(entries) != DefaultListLimit || next != DefaultListLimit {
			t.Fatalf("default page: %d entries, next %d, %v; want %d, %d", len(entries), next, err, DefaultListLimit, DefaultListLimit)
		}
		entries, next, err = s.List(Query{Limit: 5000, Kind: protocol.KindAccreditation})
		if err != nil || len(entries) != MaxListLimit || next != MaxListLimit {
			t.Fatalf("over-large page: %d entries, next %d, %v; want %d, %d", len(entries), next, err, MaxListLimit, MaxListLimit)
		}
		entries, next, err = s.List(Query{Limit: 5000, After: next})
		if err != nil || len(entries) != 50 || next != 0 {
			t.Fatalf("last page: %d entries, next %d, %v; want 50, 0", len(entries), next, err)
		}
		// A page that ends exactly at the last record says so.
		entries, next, err = s.List(Query{Limit: 50, After: MaxListLimit})
		if err != nil || len(entries) != 50 || next != 0 {
			t.Fatalf("exact last page: %d entries, next %d, %v; want 50, 0", len(entries), next, err)
		}
	})

	// Recent answers from memory what List answers, for as far back as it
	// remembers, and says when it does not.
	t.Run("Recent", func(t *testing.T) {
		s := fresh(t)
		w := newWorld(t)
		w.populate(t, s)
		for _, k := range protocol.Kinds {
			want, _, err := s.List(Query{Kind: k, Limit: MaxListLimit})
			if err != nil {
				t.Fatal(err)
			}
			for _, after := range []uint64{0, 5, uint64(len(w.records))} {
				got, ok := s.Recent(k, after, MaxListLimit)
				if !ok {
					t.Fatalf("Recent(%s, %d): not remembered in a store of %d records", k, after, len(w.records))
				}
				var wantAfter []Entry
				for _, e := range want {
					if e.Seq > after {
						wantAfter = append(wantAfter, e)
					}
				}
				if len(got) != len(wantAfter) {
					t.Fatalf("Recent(%s, %d) = %d entries, List %d", k, after, len(got), len(wantAfter))
				}
				for i := range got {
					if got[i].Seq != wantAfter[i].Seq || !got[i].Record.CID().Equals(wantAfter[i].Record.CID()) {
						t.Fatalf("Recent(%s, %d)[%d] = seq %d, List seq %d", k, after, i, got[i].Seq, wantAfter[i].Seq)
					}
				}
			}
			if got, ok := s.Recent(k, 0, 2); ok && len(want) >= 2 && len(got) != 2 {
				t.Errorf("Recent(%s, 0, 2) = %d entries, want the limit", k, len(got))
			}
		}
		// Past its memory it says so: 300 more accreditations push the
		// first ones out.
		many := manyRecords(t, tailLen+44)
		if _, err := s.PutMany(context.Background(), many); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Recent(protocol.KindAccreditation, 0, MaxListLimit); ok {
			t.Error("Recent of accreditations from 0 answered after more than it keeps were added")
		}
		last := s.Len()
		got, ok := s.Recent(protocol.KindAccreditation, last-tailLen/2, MaxListLimit)
		if !ok || len(got) != tailLen/2 || got[len(got)-1].Seq != last || !got[len(got)-1].Record.CID().Equals(many[len(many)-1].CID()) {
			t.Errorf("Recent of the last %d accreditations (it keeps at least those): %d entries, %v", tailLen/2, len(got), ok)
		}
	})

	t.Run("AccreditationsOf", func(t *testing.T) {
		s := fresh(t)
		w := newWorld(t)
		w.populate(t, s)
		got, err := s.AccreditationsOf(w.platform.id)
		if err != nil {
			t.Fatal(err)
		}
		mustSameRecords(t, got, w.platformAccreditations)
		for _, r := range got {
			a, _ := r.Accreditation()
			if a.Subject != w.platform.id.String() {
				t.Errorf("accreditation of %s listed for %s", a.Subject, w.platform.id)
			}
		}
	})

	// The answers that authorisation asks for again and again are
	// cached (scanCache): each commit that changes one is seen by the
	// next question, whether or not it was asked before.
	t.Run("cached scans follow commits", func(t *testing.T) {
		s := fresh(t)
		w := newWorld(t)
		ctx := context.Background()
		acc, other := w.platformAccreditations[0], w.platformAccreditations[1]
		revocations := func(c cid.Cid) []*protocol.Record {
			t.Helper()
			got, err := s.LinkedFrom(c, protocol.KindRevocation)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		accreditations := func() []*protocol.Record {
			t.Helper()
			got, err := s.AccreditationsOf(w.platform.id)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		mustSameRecords(t, accreditations(), nil)
		mustSameRecords(t, revocations(acc.CID()), nil)
		rev := w.de.revocation(t, acc.CID())
		for i, step := range []struct {
			put       *protocol.Record
			accs      []*protocol.Record
			revokedBy []*protocol.Record
		}{
			{acc, []*protocol.Record{acc}, nil},
			{other, []*protocol.Record{acc, other}, nil},
			{w.de.consent(t, "DE"), []*protocol.Record{acc, other}, nil},
			{rev, []*protocol.Record{acc, other}, []*protocol.Record{rev}},
		} {
			if _, err := s.Put(ctx, step.put); err != nil {
				t.Fatal(err)
			}
			got := accreditations()
			if len(got) != len(step.accs) {
				t.Fatalf("step %d: %d accreditations, want %d", i, len(got), len(step.accs))
			}
			mustSameRecords(t, got, step.accs)
			mustSameRecords(t, revocations(acc.CID()), step.revokedBy)
			mustSameRecords(t, revocations(other.CID()), nil)
			got[0] = nil // a caller's copy: the next answer is whole
		}
	})

	// Readers refilling the cache while commits land never leave an
	// answer older than a commit already acknowledged.
	t.Run("cached scans with readers racing commits", func(t *testing.T) {
		s := fresh(t)
		subject := peerID(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.AccreditationsOf(subject); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		defer func() { close(stop); wg.Wait() }()
		for i := 1; i <= 100; i++ {
			if _, err := s.Put(context.Background(), newSigner(t).accreditation(t, subject, "DE")); err != nil {
				t.Fatal(err)
			}
			got, err := s.AccreditationsOf(subject)
			if err != nil || len(got) != i {
				t.Fatalf("after %d accreditations were stored, AccreditationsOf = %d, %v", i, len(got), err)
			}
		}
	})

	t.Run("LinkedFrom", func(t *testing.T) {
		s := fresh(t)
		w := newWorld(t)
		w.populate(t, s)
		for _, tc := range []struct {
			name   string
			target cid.Cid
			kinds  []protocol.Kind
			want   []*protocol.Record
		}{
			{"consent", w.consentDE.CID(), nil, []*protocol.Record{w.consentRevocation}},
			{"incident", w.incident.CID(), nil, []*protocol.Record{w.followUp, w.incidentRevocation}},
			{"incident/revocations", w.incident.CID(), []protocol.Kind{protocol.KindRevocation}, []*protocol.Record{w.incidentRevocation}},
			{"incident/incidents", w.incident.CID(), []protocol.Kind{protocol.KindIncident}, []*protocol.Record{w.followUp}},
			{"incident/receipts", w.incident.CID(), []protocol.Kind{protocol.KindReceipt}, nil},
			{"follow-up", w.followUp.CID(), nil, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.LinkedFrom(tc.target, tc.kinds...)
				if err != nil {
					t.Fatal(err)
				}
				mustSameRecords(t, got, tc.want)
			})
		}
		if _, err := s.LinkedFrom(w.incident.CID(), "gossip"); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("LinkedFrom with an unknown kind: %v, want ErrInvalidQuery", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := fresh(t)
		const callers, each = 64, 20
		rs := manyRecords(t, callers*each)
		seqs := make([]uint64, len(rs))
		var wg sync.WaitGroup
		for g := range callers {
			wg.Go(func() {
				for i := g; i < len(rs); i += callers {
					res, err := s.Put(ctx, rs[i])
					if err != nil {
						t.Error(err)
						return
					}
					if !res.New {
						t.Errorf("record %d: not new", i)
					}
					seqs[i] = res.Seq
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		sorted := slices.Sorted(slices.Values(seqs))
		for i, seq := range sorted {
			if seq != uint64(i+1) {
				t.Fatalf("seqs are not 1..%d: position %d holds %d", len(rs), i, seq)
			}
		}
		if s.Len() != uint64(len(rs)) {
			t.Errorf("Len = %d, want %d", s.Len(), len(rs))
		}
		for i, r := range rs {
			if seq, err := s.Seq(r.CID()); err != nil || seq != seqs[i] {
				t.Fatalf("record %d: Seq = %d, %v; Put said %d", i, seq, err, seqs[i])
			}
		}
		st := s.WriteStats()
		if st.Written != uint64(len(rs)) || st.Txns > st.Written {
			t.Errorf("WriteStats = %+v", st)
		}
		t.Logf("%d records in %d group commits", st.Written, st.Txns)
	})

	t.Run("Context", func(t *testing.T) {
		s := fresh(t)
		auth := newSigner(t)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		r := auth.consent(t, "DE")
		if _, err := s.Put(cancelled, r); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
		}
		if ok, _ := s.Has(r.CID()); ok {
			t.Error("a Put refused for its context stored the record")
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		auth := newSigner(t)
		r := auth.consent(t, "DE")
		if _, err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		checks := map[string]error{}
		checks["Put"] = second(s.Put(ctx, r))
		checks["PutMany"] = second(s.PutMany(ctx, []*protocol.Record{r}))
		checks["Get"] = second(s.Get(r.CID()))
		checks["GetBytes"] = second(s.GetBytes(r.CID()))
		checks["Has"] = second(s.Has(r.CID()))
		checks["Seq"] = second(s.Seq(r.CID()))
		_, _, checks["List"] = s.List(Query{})
		checks["AccreditationsOf"] = second(s.AccreditationsOf(auth.id))
		checks["LinkedFrom"] = second(s.LinkedFrom(r.CID()))
		for name, err := range checks {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", name, err)
			}
		}
		if c := s.Counts(); c != nil {
			t.Errorf("Counts after Close = %v, want nil", c)
		}
		if n := s.Len(); n != 0 {
			t.Errorf("Len after Close = %d, want 0", n)
		}
		if lsm, vlog := s.Size(); lsm != 0 || vlog != 0 {
			t.Errorf("Size after Close = %d, %d", lsm, vlog)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})

	t.Run("CloseDuringPuts", func(t *testing.T) {
		s := open(t)
		rs := manyRecords(t, 2000)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var stored []*protocol.Record
		for g := range 32 {
			wg.Go(func() {
				for i := g; i < len(rs); i += 32 {
					res, err := s.Put(ctx, rs[i])
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Put during Close: %v", err)
						return
					}
					if !res.New {
						t.Errorf("record %d: not new", i)
					}
					mu.Lock()
					stored = append(stored, rs[i])
					mu.Unlock()
				}
			})
		}
		for deadline := time.Now().Add(10 * time.Second); s.Len() < 100; {
			if time.Now().After(deadline) {
				t.Fatalf("only %d records stored after 10s", s.Len())
			}
			time.Sleep(time.Millisecond)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if len(stored) < 100 {
			t.Fatalf("only %d puts succeeded", len(stored))
		}
		t.Logf("%d of %d puts succeeded before Close", len(stored), len(rs))
	})
}

func second[T any](_ T, err error) error { return err }

// world is a small federation's worth of records, with a model of what the
// store should answer about them.
type world struct {
	de, fr, platform *signer
	records          []*protocol.Record // in put order: record i gets seq i+1

	platformAccreditations                 []*protocol.Record
	consentDE, consentRevocation           *protocol.Record
	incident, followUp, incidentRevocation *protocol.Record
}

func newWorld(t *testing.T) *world {
	w := &world{de: newSigner(t), fr: newSigner(t), platform: newSigner(t)}
	add := func(r *protocol.Record) *protocol.Record {
		w.records = append(w.records, r)
		return r
	}
	accDE := add(w.de.accreditation(t, w.platform.id, "DE"))
	for range 5 {
		add(w.de.accreditation(t, peerID(t), "DE"))
		add(w.fr.accreditation(t, peerID(t), "FR"))
	}
	accFR := add(w.fr.accreditation(t, w.platform.id, "FR"))
	w.platformAccreditations = []*protocol.Record{accDE, accFR}
	w.consentDE = add(w.platform.consent(t, "DE"))
	for range 4 {
		add(w.platform.consent(t, "FR"))
		add(w.platform.consent(t, "DE"))
	}
	w.incident = add(w.fr.incident(t, "FR", cid.Undef))
	for range 3 {
		add(w.de.incident(t, "DE", cid.Undef))
		add(w.fr.incident(t, "DE", cid.Undef))
	}
	w.consentRevocation = add(w.platform.revocation(t, w.consentDE.CID()))
	w.followUp = add(w.fr.incident(t, "FR", w.incident.CID()))
	w.incidentRevocation = add(w.fr.revocation(t, w.incident.CID()))
	add(w.de.revocation(t, accDE.CID()))
	return w
}

// populate puts the world's records, some singly and some in batches.
func (w *world) populate(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(w.records); {
		n := min(1+i%4, len(w.records)-i)
		res, err := s.PutMany(ctx, w.records[i:i+n])
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range res {
			if r != (PutResult{Seq: uint64(i + j + 1), New: true}) {
				t.Fatalf("record %d: %+v", i+j, r)
			}
		}
		i += n
	}
}

// match is the model's answer to q: the seqs that match, ignoring paging.
func (w *world) match(q Query) []uint64 {
	var out []uint64
	for i, r := range w.records {
		if (q.Kind == "" || r.Kind() == q.Kind) &&
			(q.Issuer == "" || r.Issuer() == q.Issuer) &&
			(q.Jurisdiction == "" || r.Jurisdiction() == q.Jurisdiction) {
			out = append(out, uint64(i+1))
		}
	}
	return out
}

func (w *world) checkCounts(t *testing.T, s *Store) {
	t.Helper()
	want := map[protocol.Kind]int64{}
	for _, k := range protocol.Kinds {
		want[k] = 0
	}
	for _, r := range w.records {
		want[r.Kind()]++
	}
	got := s.Counts()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Counts = %v, want %v", got, want)
	}
	for k, n := range want {
		if c := s.Count(k); c != n {
			t.Errorf("Count(%s) = %d, want %d", k, c, n)
		}
	}
	if s.Len() != uint64(len(w.records)) {
		t.Errorf("Len = %d, want %d", s.Len(), len(w.records))
	}
}

// listAll pages through q and returns the seqs listed, checking each page
// against the paging contract on the way.
func listAll(t *testing.T, s *Store, q Query) []uint64 {
	t.Helper()
	limit := q.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	var seqs []uint64
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		entries, next, err := s.List(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > limit {
			t.Fatalf("page of %d entries over limit %d", len(entries), limit)
		}
		for _, e := range entries {
			if e.Seq <= q.After {
				t.Fatalf("entry seq %d not after %d", e.Seq, q.After)
			}
			if seq, err := s.Seq(e.Record.CID()); err != nil || seq != e.Seq {
				t.Fatalf("entry seq %d but Seq = %d, %v", e.Seq, seq, err)
			}
			seqs = append(seqs, e.Seq)
		}
		if next == 0 {
			return seqs
		}
		if len(entries) != limit || next != entries[len(entries)-1].Seq {
			t.Fatalf("next %d after a page of %d (limit %d)", next, len(entries), limit)
		}
		q.After = next
	}
}

func describeQuery(q Query) string {
	s := "all"
	if q.Kind != "" {
		s = string(q.Kind)
	}
	if q.Issuer != "" {
		s += "/issuer=" + shortID(q.Issuer)
	}
	if q.Jurisdiction != "" {
		s += "/" + q.Jurisdiction
	}
	return s
}

func shortID(id peer.ID) string {
	str := id.String()
	return str[len(str)-6:]
}

func mustSameRecord(t *testing.T, got, want *protocol.Record) {
	t.Helper()
	if !got.CID().Equals(want.CID()) || string(got.Bytes()) != string(want.Bytes()) ||
		got.Kind() != want.Kind() || got.Issuer() != want.Issuer() {
		t.Fatalf("got record %s, want %s", got, want)
	}
}

func mustSameRecords(t *testing.T, got, want []*protocol.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		mustSameRecord(t, got[i], want[i])
	}
}
