package testnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
)

// buildEntente builds the entente binary into a test directory.
func buildEntente(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "entente")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/entente-net/entente/cmd/entente")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestProcesses runs a federation of three `entente run` processes: a
// record submitted to one spreads to all, a transfer is verified over
// HTTP, and a node killed with SIGKILL and started again catches up on
// what it missed.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts processes")
	}
	bin := buildEntente(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var logs processLog
	ps, err := StartProcesses(ctx, ProcessOptions{Binary: bin, Output: &logs,
		Options: Options{Name: "processes", Jurisdictions: []string{"DE", "FR", "BR"}, SyncInterval: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("process output:\n%s", logs.String())
		}
	})
	if err := ps.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	de, fr, br := ps.Nodes[0], ps.Nodes[1], ps.Nodes[2]

	// A platform in DE, a recipient in FR, both jurisdictions' rules and a
	// consent, all submitted to the DE node.
	platformKey, platform := newPeer(t)
	_, recipient := newPeer(t)
	recs := []*protocol.Record{
		accreditation(t, ps.Authorities["DE"], "DE", platform, protocol.RoleController),
		accreditation(t, ps.Authorities["FR"], "FR", recipient, protocol.RoleController),
		openRuleset(t, ps.Authorities["DE"], "DE"),
		openRuleset(t, ps.Authorities["FR"], "FR"),
	}
	consent := mustSign(t, platformKey, &protocol.Consent{Subject: make([]byte, 32), Jurisdiction: "DE", Categories: []string{"face"},
		Purposes: []string{"research"}, MaxTier: 1, Destinations: []string{"FR"}, RetentionDays: 30,
		ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "app"})
	recs = append(recs, consent)
	for _, r := range recs {
		if err := de.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.WaitAll(ctx, cidsOf(recs)...); err != nil {
		t.Fatal(err)
	}

	// The FR node answers a verify for a transfer DE -> FR.
	req := fmt.Sprintf(`{"consent":%q,"from":"DE","to":"FR","sender":%q,"recipient":%q,"purpose":"research","categories":["face"],"tier":1,"retention_days":30}`,
		consent.CID().String(), consent.Issuer().String(), recipient.String())
	status, body, err := fr.Do(ctx, http.MethodPost, "/v1/transfers/verify", "application/json", []byte(req))
	if err != nil || status != http.StatusOK {
		t.Fatalf("verify: %d %s %v", status, body, err)
	}
	var verdict struct {
		Verdict string `json:"verdict"`
		Receipt string `json:"receipt"`
	}
	if err := json.Unmarshal(body, &verdict); err != nil || verdict.Verdict != protocol.VerdictAllow || verdict.Receipt == "" {
		t.Fatalf("verify answered %s", body)
	}

	// BR crashes; records go on arriving; BR comes back and catches up.
	if err := br.Kill(); err != nil {
		t.Fatal(err)
	}
	var missed []*protocol.Record
	for i := 0; i < 5; i++ {
		_, id := newPeer(t)
		r := accreditation(t, ps.Authorities["DE"], "DE", id, protocol.RoleController)
		if err := de.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
		missed = append(missed, r)
	}
	if err := br.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ps.WaitAll(ctx, cidsOf(append(recs, missed...))...); err != nil {
		t.Fatalf("the restarted node did not catch up: %v", err)
	}
	if ok, err := br.Holds(ctx, mustCID(t, verdict.Receipt)); err != nil || ok {
		t.Errorf("the BR node holds FR's receipt (%v): receipts are not synced", err)
	}
}

// processLog collects the processes' output, safely.
type processLog struct {
	mu  sync.Mutex
	buf []byte
}

func (l *processLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

func (l *processLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

func newPeer(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, err := config.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func mustSign(t *testing.T, key crypto.PrivKey, body protocol.Body) *protocol.Record {
	t.Helper()
	r, err := Sign(key, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func accreditation(t *testing.T, auth crypto.PrivKey, j string, subject peer.ID, role protocol.Role) *protocol.Record {
	now := time.Now()
	return mustSign(t, auth, &protocol.Accreditation{Subject: subject.String(), Jurisdiction: j, Roles: []protocol.Role{role},
		Name: "party", ValidFrom: now.Add(-time.Hour).UnixMilli(), ValidUntil: now.AddDate(1, 0, 0).UnixMilli()})
}

func openRuleset(t *testing.T, auth crypto.PrivKey, j string) *protocol.Record {
	rules := protocol.Rules{MaxTier: 2, ProhibitedPurposes: []string{}, MaxRetentionDays: 365, BlockOnIncident: protocol.SeverityHigh, Conditions: []protocol.Condition{}}
	return mustSign(t, auth, &protocol.Ruleset{Jurisdiction: j, Version: 1, EffectiveFrom: time.Now().Add(-time.Hour).UnixMilli(),
		Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules}, Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules}})
}

func cidsOf(recs []*protocol.Record) []cid.Cid {
	out := make([]cid.Cid, len(recs))
	for i, r := range recs {
		out[i] = r.CID()
	}
	return out
}

func mustCID(t *testing.T, s string) cid.Cid {
	c, err := protocol.ParseCID(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
