package negentropy

import (
	"bufio"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// loadItems reads a testdata file of "timestamp,hex-id" lines.
func loadItems(tb testing.TB, name string) []Item {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var items []Item
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		ts, id, ok := strings.Cut(line, ",")
		if !ok {
			tb.Fatalf("%s: bad line %q", name, line)
		}
		t, err := strconv.ParseUint(ts, 10, 64)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		items = append(items, Item{Timestamp: t, ID: mustID(tb, id)})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return items
}

func mustID(tb testing.TB, s string) ID {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(ID{}) {
		tb.Fatalf("bad ID %q", s)
	}
	return ID(b)
}

// loadMessages reads testdata/messages.txt into name -> hex value.
func loadMessages(tb testing.TB) map[string]string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "messages.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			tb.Fatalf("messages.txt: bad line %q", line)
		}
		out[name] = strings.TrimSpace(val)
	}
	return out
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustVector(tb testing.TB, items []Item) *Vector {
	tb.Helper()
	v, err := NewVector(items)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func mustNew(tb testing.TB, v *Vector, limit int) *Negentropy {
	tb.Helper()
	n, err := New(v, limit)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// itemGen makes items with distinct random IDs.
type itemGen struct {
	rng *rand.Rand
	// timestamps are drawn from [base, base+spread).
	base, spread uint64
	// sharedPrefix, if positive, makes every ID start with that many
	// equal bytes, so bounds between equal timestamps need long prefixes.
	sharedPrefix int
	seen         map[ID]bool
}

func newItemGen(seed uint64, spread uint64) *itemGen {
	return &itemGen{
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		base:   1_700_000_000,
		spread: spread,
		seen:   map[ID]bool{},
	}
}

func (g *itemGen) items(n int) []Item {
	out := make([]Item, 0, n)
	for len(out) < n {
		var id ID
		for i := 0; i < len(id); i += 8 {
			v := g.rng.Uint64()
			for j := range 8 {
				id[i+j] = byte(v >> (8 * j))
			}
		}
		for i := range g.sharedPrefix {
			id[i] = 0xab
		}
		if g.seen[id] {
			continue
		}
		g.seen[id] = true
		ts := g.base
		if g.spread > 0 {
			ts += g.rng.Uint64N(g.spread)
		}
		out = append(out, Item{Timestamp: ts, ID: id})
	}
	return out
}

// sessionStats measures one reconciliation.
type sessionStats struct {
	roundTrips     int // initiator messages, each answered by the responder
	initiatorBytes int // total bytes the initiator sent
	responderBytes int // total bytes the responder sent
	largest        int // largest single message either way
}

// reconcileInMemory runs a whole session, a initiating and b responding,
// and returns the have and need IDs the initiator collected.
func reconcileInMemory(tb testing.TB, a, b *Vector, limitA, limitB int) (have, need []ID, st sessionStats) {
	tb.Helper()
	ini, res := mustNew(tb, a, limitA), mustNew(tb, b, limitB)
	msg, err := ini.Initiate()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		st.roundTrips++
		if st.roundTrips > 10_000 {
			tb.Fatal("reconciliation did not finish in 10,000 round trips")
		}
		st.initiatorBytes += len(msg)
		st.largest = max(st.largest, len(msg))
		if limitA > 0 && len(msg) > limitA {
			tb.Fatalf("round %d: initiator message of %d bytes exceeds its limit %d", st.roundTrips, len(msg), limitA)
		}
		if _, bench := tb.(*testing.B); !bench {
			checkHonest(tb, a, msg)
		}
		reply, err := res.Reconcile(msg)
		if err != nil {
			tb.Fatalf("round %d: Reconcile: %v", st.roundTrips, err)
		}
		st.responderBytes += len(reply)
		st.largest = max(st.largest, len(reply))
		if limitB > 0 && len(reply) > limitB {
			tb.Fatalf("round %d: responder message of %d bytes exceeds its limit %d", st.roundTrips, len(reply), limitB)
		}
		if _, bench := tb.(*testing.B); !bench {
			checkHonest(tb, b, reply)
		}
		next, h, n, done, err := ini.ReconcileInitiator(reply)
		if err != nil {
			tb.Fatalf("round %d: ReconcileInitiator: %v", st.roundTrips, err)
		}
		have, need = append(have, h...), append(need, n...)
		if done {
			if next != nil {
				tb.Fatal("done with a non-nil reply")
			}
			return have, need, st
		}
		msg = next
	}
}

func idsOf(items []Item) []ID {
	out := make([]ID, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// sameIDs reports whether got lists exactly the IDs of want, each once.
func sameIDs(got, want []ID) bool {
	cmp := func(a, b ID) int { return slices.Compare(a[:], b[:]) }
	g, w := slices.Clone(got), slices.Clone(want)
	slices.SortFunc(g, cmp)
	slices.SortFunc(w, cmp)
	return slices.Equal(g, w)
}

// checkHonest fails unless msg, sent by the side holding v, decodes and
// every Fingerprint and IdList range in it describes exactly v's items
// between that range's bounds.
func checkHonest(tb testing.TB, v *Vector, msg []byte) {
	tb.Helper()
	ranges, err := decodeMessage(msg)
	if err != nil {
		tb.Fatalf("sent a message that does not decode: %v", err)
	}
	lower := 0
	for i, rg := range ranges {
		upper := v.lowerBound(lower, rg.upper)
		switch rg.mode {
		case modeFingerprint:
			if rg.fingerprint != v.fingerprint(lower, upper) {
				tb.Fatalf("range %d: Fingerprint does not match the sender's %d items in the range", i, upper-lower)
			}
		case modeIDList:
			if !slices.Equal(idsFromList(&rg), idsOf(v.items[lower:upper])) {
				tb.Fatalf("range %d: IdList of %d IDs, the sender has %d items in the range", i, rg.idCount(), upper-lower)
			}
		}
		lower = upper
	}
}

func idsFromList(rg *msgRange) []ID {
	out := make([]ID, rg.idCount())
	for i := range out {
		out[i] = rg.id(i)
	}
	return out
}
