package testnet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/entente-net/entente/protocol"
)

// syncSetOf lists a member's sync set (every record but receipts and
// TLP:RED notices), in order.
func syncSetOf(t *testing.T, m *Member) []string {
	t.Helper()
	var out []string
	if err := m.Store().SyncItems(func(_ int64, c cid.Cid) error {
		out = append(out, c.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// submitAll submits records to m from 64 goroutines.
func submitAll(t testing.TB, m *Member, recs []*protocol.Record) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(recs)); i = next.Add(1) - 1 {
				if _, err := m.Services().Ingest.SubmitRecord(context.Background(), recs[i]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// waitSameSets waits until every running member holds the same sync set,
// of want records.
func waitSameSets(t *testing.T, net *Net, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var sets [][]string
		for _, m := range net.Running() {
			sets = append(sets, syncSetOf(t, m))
		}
		same := true
		for _, s := range sets {
			same = same && len(s) == want && slices.Equal(s, sets[0])
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			var sizes []int
			for _, s := range sets {
				sizes = append(sizes, len(s))
			}
			t.Fatalf("sets did not converge to %d records within %s: sizes %v", want, timeout, sizes)
		}
		time.Sleep(50 * time.Millisecond) // polling store state: there is no event for "sets equal"
	}
}

// TestLateAndRestartedNodesCatchUp: a node that was down while 10 000
// records were published — one that had never held any (a node started
// after the records exist) and one that held some before it stopped —
// catches up to exactly its peer's set when it comes up.
func TestLateAndRestartedNodesCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("10 000 records")
	}
	for _, early := range []int{0, 100} {
		t.Run(fmt.Sprintf("held %d before", early), func(t *testing.T) {
			net, err := Start(Options{Nodes: 2, Jurisdictions: []string{"DE", "FR"}, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer net.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := net.WaitConnected(ctx); err != nil {
				t.Fatal(err)
			}
			a, b := net.Nodes[0], net.Nodes[1]
			if early > 0 {
				submitAll(t, a, accreditations(t, net, "DE", early))
				waitSameSets(t, net, early, 30*time.Second)
			}
			if err := b.Stop(); err != nil {
				t.Fatal(err)
			}
			submitAll(t, a, accreditations(t, net, "DE", 10_000))
			want := early + 10_000
			if got := len(syncSetOf(t, a)); got != want {
				t.Fatalf("the running node holds %d records", got)
			}
			start := time.Now()
			if err := b.Restart(); err != nil {
				t.Fatal(err)
			}
			waitSameSets(t, net, want, 90*time.Second)
			t.Logf("caught up 10 000 records in %s", time.Since(start))
		})
	}
}

// TestPartitionHeals: a six-node federation split 3/3, with records
// published on both sides, converges to one set once the split heals.
func TestPartitionHeals(t *testing.T) {
	net, err := Start(Options{Nodes: 6, InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	base := accreditations(t, net, "BR", 10)
	submitAll(t, net.Nodes[2], base)
	waitSameSets(t, net, 10, 30*time.Second)

	net.Partition([]int{0, 1, 2}, []int{3, 4, 5})
	for _, m := range net.Nodes[:3] {
		for _, o := range net.Nodes[3:] {
			if m.Host().Network().Connectedness(o.ID()) == network.Connected {
				t.Fatalf("node %d still connected to node %d across the split", m.Index, o.Index)
			}
		}
	}
	left := accreditations(t, net, "DE", 40)  // on node 0
	right := accreditations(t, net, "FR", 60) // on node 4
	submitAll(t, net.Nodes[0], left)
	submitAll(t, net.Nodes[4], right)
	// Each side converges on its own records only.
	for _, m := range net.Nodes[1:3] {
		for _, r := range left {
			if err := m.Services().Ingest.WaitRecord(ctx, r.CID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, m := range net.Nodes[:3] {
		if held, _ := m.Store().Has(right[0].CID()); held {
			t.Fatalf("node %d holds a record from across the split", m.Index)
		}
	}
	net.Heal()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	waitSameSets(t, net, 110, 60*time.Second)
}
