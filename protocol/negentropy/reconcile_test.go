package negentropy

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// reconcileCase describes two sets: common items both sides hold, and items
// only the initiator (a) or only the responder (b) holds.
type reconcileCase struct {
	name                 string
	common, onlyA, onlyB int
	spread               uint64 // timestamp spread; 1 puts every item at one timestamp
	sharedPrefix         int
}

func reconcileCases(short bool) []reconcileCase {
	cases := []reconcileCase{
		{name: "both empty"},
		{name: "identical", common: 10_000, spread: 1e6},
		{name: "disjoint", onlyA: 5_000, onlyB: 5_000, spread: 1e6},
		{name: "initiator empty", onlyB: 10_000, spread: 1e6},
		{name: "responder empty", onlyA: 10_000, spread: 1e6},
		{name: "initiator has one more", common: 10_000, onlyA: 1, spread: 1e6},
		{name: "responder has one more", common: 10_000, onlyB: 1, spread: 1e6},
		{name: "31 vs 32", common: 31, onlyB: 1, spread: 1e6},
		{name: "32 vs 33", common: 32, onlyA: 1, spread: 1e6},
		{name: "small and scattered", common: 40, onlyA: 7, onlyB: 9, spread: 1e6},
		{name: "one timestamp", common: 5_000, onlyA: 50, onlyB: 50, spread: 1},
		{name: "few timestamps, long shared ID prefixes", common: 5_000, onlyA: 40, onlyB: 60, spread: 3, sharedPrefix: 30},
		{name: "1000 of 100k", common: 99_000, onlyA: 500, onlyB: 500, spread: 1e7},
	}
	if short {
		cases = cases[:len(cases)-1]
	}
	return cases
}

// TestReconcileProperty checks that the initiator ends with have = A\B and
// need = B\A exactly, each ID once, with and without frame size limits.
func TestReconcileProperty(t *testing.T) {
	for i, tc := range reconcileCases(testing.Short()) {
		for _, limit := range []int{0, MinFrameSizeLimit} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				g := newItemGen(uint64(i)+1, tc.spread)
				g.sharedPrefix = tc.sharedPrefix
				common, onlyA, onlyB := g.items(tc.common), g.items(tc.onlyA), g.items(tc.onlyB)
				a := mustVector(t, append(append([]Item(nil), common...), onlyA...))
				b := mustVector(t, append(append([]Item(nil), common...), onlyB...))

				have, need, st := reconcileInMemory(t, a, b, limit, limit)
				if !sameIDs(have, idsOf(onlyA)) {
					t.Errorf("have: %d IDs, want exactly the %d only the initiator holds", len(have), len(onlyA))
				}
				if !sameIDs(need, idsOf(onlyB)) {
					t.Errorf("need: %d IDs, want exactly the %d only the responder holds", len(need), len(onlyB))
				}
				t.Logf("%d round trips, %d B sent, %d B received, largest message %d B",
					st.roundTrips, st.initiatorBytes, st.responderBytes, st.largest)
			})
		}
	}
}

// TestReconcileLargerLimit checks a larger frame size limit: the same
// result as with 4096, in fewer round trips.
func TestReconcileLargerLimit(t *testing.T) {
	g := newItemGen(99, 1e6)
	common, onlyA, onlyB := g.items(20_000), g.items(300), g.items(400)
	a := mustVector(t, append(append([]Item(nil), common...), onlyA...))
	b := mustVector(t, append(append([]Item(nil), common...), onlyB...))
	var trips []int
	for _, limit := range []int{MinFrameSizeLimit, 64 << 10} {
		have, need, st := reconcileInMemory(t, a, b, limit, limit)
		if !sameIDs(have, idsOf(onlyA)) || !sameIDs(need, idsOf(onlyB)) {
			t.Errorf("limit %d: have %d / need %d, want %d / %d", limit, len(have), len(need), len(onlyA), len(onlyB))
		}
		trips = append(trips, st.roundTrips)
	}
	if trips[1] >= trips[0] {
		t.Errorf("round trips: %d with 4 KiB frames, %d with 64 KiB; want fewer with the larger", trips[0], trips[1])
	}
}

func TestNewVector(t *testing.T) {
	id1, id2 := ID{1}, ID{2}
	for _, tc := range []struct {
		name  string
		items []Item
		err   string
	}{
		{"empty", nil, ""},
		{"sorted on the way in", []Item{{9, id1}, {3, id2}}, ""},
		{"duplicate item", []Item{{3, id1}, {3, id1}}, "occurs more than once"},
		{"ID at two timestamps", []Item{{3, id1}, {4, id1}}, "occurs more than once"},
		{"reserved timestamp", []Item{{math.MaxUint64, id1}}, "reserved timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVector(tc.items)
			if tc.err == "" {
				if err != nil || v.Len() != len(tc.items) {
					t.Fatalf("NewVector = %v, %v", v, err)
				}
				for i := 1; i < v.Len(); i++ {
					if compareItems(v.items[i-1], v.items[i]) >= 0 {
						t.Fatal("items not sorted")
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	v := mustVector(t, nil)
	for _, limit := range []int{-1, 1, 4095} {
		if _, err := New(v, limit); err == nil || !strings.Contains(err.Error(), "frameSizeLimit") {
			t.Errorf("New(limit %d) error = %v, want one naming frameSizeLimit", limit, err)
		}
	}
	if _, err := New(nil, 0); err == nil {
		t.Error("New(nil) succeeded")
	}
	for _, limit := range []int{0, 4096, 1 << 20} {
		if _, err := New(v, limit); err != nil {
			t.Errorf("New(limit %d): %v", limit, err)
		}
	}
}

func TestRoles(t *testing.T) {
	v := mustVector(t, newItemGen(1, 100).items(10))

	ini := mustNew(t, v, 0)
	msg, err := ini.Initiate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ini.Initiate(); !errors.Is(err, ErrRole) {
		t.Errorf("second Initiate: %v, want ErrRole", err)
	}
	if _, err := ini.Reconcile(msg); !errors.Is(err, ErrRole) {
		t.Errorf("Reconcile on the initiator: %v, want ErrRole", err)
	}

	res := mustNew(t, v, 0)
	if _, _, _, _, err := res.ReconcileInitiator(msg); !errors.Is(err, ErrRole) {
		t.Errorf("ReconcileInitiator before Initiate: %v, want ErrRole", err)
	}
	if _, err := res.Reconcile(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Initiate(); !errors.Is(err, ErrRole) {
		t.Errorf("Initiate after Reconcile: %v, want ErrRole", err)
	}
}

func TestResponderReplyNeverNil(t *testing.T) {
	v := mustVector(t, newItemGen(2, 100).items(100))
	ini := mustNew(t, v, 0)
	msg, _ := ini.Initiate()
	reply, err := mustNew(t, v, 0).Reconcile(msg)
	if err != nil || string(reply) != "\x61" {
		t.Fatalf("Reconcile of an equal set = %x, %v; want 61", reply, err)
	}
	next, have, need, done, err := ini.ReconcileInitiator(reply)
	if err != nil || !done || next != nil || have != nil || need != nil {
		t.Fatalf("ReconcileInitiator(61) = %x, %v, %v, %v, %v; want done", next, have, need, done, err)
	}
}

func TestMessageTooLarge(t *testing.T) {
	v := mustVector(t, newItemGen(3, 100).items(10))
	msg := append([]byte{ProtocolVersion, 0, 0, 2}, appendVarint(nil, 200)...)
	msg = append(msg, make([]byte, 200*32)...) // a well-formed 6.4 KB IdList
	_, err := mustNew(t, v, MinFrameSizeLimit).Reconcile(msg)
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Reconcile of %d bytes with limit %d: %v, want ErrMessageTooLarge", len(msg), MinFrameSizeLimit, err)
	}
}

func TestInitiatorRejects(t *testing.T) {
	v := mustVector(t, newItemGen(4, 100).items(10))
	start := func() *Negentropy {
		n := mustNew(t, v, 0)
		if _, err := n.Initiate(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	id := strings.Repeat("42", 32)
	for _, tc := range []struct {
		name, hex string
		want      error
	}{
		{"downgrade request", "60", ErrUnsupportedVersion},
		{"future version", "62", ErrUnsupportedVersion},
		{"not a version byte", "41", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"IdList naming an ID twice", "6100000202" + id + id, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, have, need, done, err := start().ReconcileInitiator(unhex(t, tc.hex))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if next != nil || have != nil || need != nil || done {
				t.Error("results returned along with an error")
			}
		})
	}
}
