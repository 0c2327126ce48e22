package testnet

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

var crashRounds = flag.Int("rounds", 5, "rounds of TestCrashLosesNothing: kill -9 at a random moment, restart, check")

// TestCrashLosesNothing runs a node as a process, submits records from
// six clients and verify-batches from two, kills the process with
// SIGKILL after a random number of acknowledgements, starts it again,
// and checks that every acknowledged record and receipt is held and that
// the log after the crash extends the log before it (a consistency proof
// between the two). -rounds N sets the number of rounds (5 by default;
// docs/security.md gives the figure of 100).
func TestCrashLosesNothing(t *testing.T) {
	ps := startProcesses(t, Options{Name: "crash", Jurisdictions: []string{"DE", "FR"}, Nodes: 1})
	node := ps.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*crashRounds)*time.Minute)
	defer cancel()

	// A platform in DE, a recipient in FR, both rule sets and a consent:
	// what a verify-batch needs.
	platformKey, platform := newPeer(t)
	_, recipient := newPeer(t)
	consent := mustSign(t, platformKey, &protocol.Consent{Subject: make([]byte, 32), Jurisdiction: "DE", Categories: []string{"face"},
		Purposes: []string{"research"}, MaxTier: 1, Destinations: []string{"FR"}, RetentionDays: 30,
		ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "app"})
	for _, r := range []*protocol.Record{
		accreditation(t, ps.Authorities["DE"], "DE", platform, protocol.RoleController),
		accreditation(t, ps.Authorities["FR"], "FR", recipient, protocol.RoleController),
		openRuleset(t, ps.Authorities["DE"], "DE"), openRuleset(t, ps.Authorities["FR"], "FR"), consent,
	} {
		if err := node.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	one := fmt.Sprintf(`{"consent":%q,"from":"DE","to":"FR","sender":%q,"recipient":%q,"purpose":"research","categories":["face"],"tier":1,"retention_days":30}`,
		consent.CID(), platform, recipient)
	batch := []byte(`{"requests":[` + strings.Repeat(one+",", 15) + one + `]}`)

	var acked, receipts []cid.Cid // every record and receipt the node acknowledged; the receipts
	var ackedMu sync.Mutex
	ack := func(c cid.Cid, receipt bool) int {
		ackedMu.Lock()
		defer ackedMu.Unlock()
		acked = append(acked, c)
		if receipt {
			receipts = append(receipts, c)
		}
		return len(acked)
	}
	totalKills := 0
	for round := range *crashRounds {
		before := logState(t, ctx, node)
		killAt := len(acked) + 50 + rand.IntN(450)
		killed := make(chan struct{})
		var once sync.Once
		kill := func() {
			once.Do(func() {
				if err := node.Kill(); err != nil {
					t.Errorf("round %d: kill: %v", round, err)
				}
				close(killed)
			})
		}
		var sent atomic.Int64
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-killed:
						return
					default:
					}
					sent.Add(1)
					var c cid.Cid
					var err error
					if w < 6 {
						_, p := newPeer(t)
						r := accreditation(t, ps.Authorities["DE"], "DE", p, protocol.RoleController)
						if err = node.Submit(ctx, r); err == nil {
							c = r.CID()
						}
					} else {
						c, err = verifyBatch(ctx, node, batch)
					}
					if err != nil {
						continue // the node died under the request: not acknowledged
					}
					if ack(c, w >= 6) >= killAt {
						kill()
					}
				}
			}()
		}
		wg.Wait()
		totalKills++
		// The node restarts, and everything acknowledged is there.
		if err := node.Start(ctx); err != nil {
			t.Fatalf("round %d: restart after kill -9: %v", round, err)
		}
		ackedMu.Lock()
		all := append([]cid.Cid(nil), acked...)
		ackedMu.Unlock()
		var lost []cid.Cid
		for _, c := range all {
			if ok, err := node.Holds(ctx, c); err != nil {
				t.Fatalf("round %d: %v", round, err)
			} else if !ok {
				lost = append(lost, c)
			}
		}
		// A receipt is held with its decisions' blocks: the bundle of
		// its last decision can be made.
		for _, c := range receipts[max(0, len(receipts)-20):] {
			if status, body, err := node.Do(ctx, http.MethodGet, "/v1/receipts/"+c.String()+"/bundle?item=15", "", nil); err != nil || status != http.StatusOK {
				t.Errorf("round %d: bundle of acknowledged receipt %s after kill -9: %d %.200s %v", round, c, status, body, err)
			}
		}
		after := logState(t, ctx, node)
		if len(lost) > 0 {
			t.Errorf("round %d: %d of %d acknowledged records lost after kill -9, e.g. %s", round, len(lost), len(all), lost[0])
		}
		// Two verify-batches of the same requests in the same millisecond
		// make one receipt: count distinct CIDs.
		distinct := map[cid.Cid]bool{}
		for _, c := range all {
			distinct[c] = true
		}
		if after.Size < uint64(5+len(distinct)) {
			t.Errorf("round %d: the log has %d leaves after the crash, fewer than the 5 set-up records and %d acknowledged", round, after.Size, len(distinct))
		}
		checkConsistent(t, ctx, node, before, after)
		t.Logf("round %d: %d requests, %d acknowledged in all, log %d → %d, none lost", round, sent.Load(), len(all), before.Size, after.Size)
	}
	t.Logf("%d kills -9 during submission and verify-batch: %d acknowledged records and receipts, %d lost", totalKills, len(acked), 0)
}

// startProcesses starts a federation of processes for a test.
func startProcesses(t *testing.T, opts Options) *Processes {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and starts processes")
	}
	bin := buildEntente(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs processLog
	ps, err := StartProcesses(ctx, ProcessOptions{Binary: bin, Output: &logs, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ps.Close()
		if t.Failed() {
			t.Logf("process output (tail):\n%s", tail(logs.String(), 4000))
		}
	})
	return ps
}

// verifyBatch posts a verify-batch and returns its receipt's CID.
func verifyBatch(ctx context.Context, p *Process, body []byte) (cid.Cid, error) {
	status, out, err := p.Do(ctx, http.MethodPost, "/v1/transfers/verify-batch", api.MediaJSON, body)
	if err != nil {
		return cid.Undef, err
	}
	if status != http.StatusOK {
		return cid.Undef, fmt.Errorf("verify-batch: %d %s", status, out)
	}
	var a struct {
		Receipt string `json:"receipt"`
	}
	if err := json.Unmarshal(out, &a); err != nil || a.Receipt == "" {
		return cid.Undef, fmt.Errorf("verify-batch answered %s", out)
	}
	return protocol.ParseCID(a.Receipt)
}

// treeState is a log's size and root, from the node's status.
type treeState struct {
	Size uint64
	Root tlog.Hash
}

func logState(t *testing.T, ctx context.Context, p *Process) treeState {
	t.Helper()
	status, body, err := p.Do(ctx, http.MethodGet, "/v1/status", "", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("status: %d %v", status, err)
	}
	var st struct {
		Log struct {
			Size uint64 `json:"size"`
			Root string `json:"root"`
		} `json:"log"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	root, err := tlog.ParseHash(st.Log.Root)
	if err != nil && st.Log.Size > 0 {
		t.Fatalf("status log root %q: %v", st.Log.Root, err)
	}
	return treeState{Size: st.Log.Size, Root: root}
}

// checkConsistent checks the node's proof that the tree before is a
// prefix of the tree after.
func checkConsistent(t *testing.T, ctx context.Context, p *Process, before, after treeState) {
	t.Helper()
	if before.Size == 0 || before.Size == after.Size && before.Root == after.Root {
		return
	}
	status, body, err := p.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/consistency?from=%d&to=%d", before.Size, after.Size), "", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("consistency %d → %d: %d %s %v", before.Size, after.Size, status, body, err)
	}
	var proof struct {
		Hashes []tlog.Hash `json:"hashes"`
	}
	if err := json.Unmarshal(body, &proof); err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(proof.Hashes, int64(after.Size), after.Root, int64(before.Size), before.Root); err != nil {
		t.Errorf("the log after the crash (size %d) does not extend the log before it (size %d): %v", after.Size, before.Size, err)
	}
}
