package main

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// TestVerify runs entente verify against a node, with flags and with a
// request file, for an allowed and a denied transfer.
func TestVerify(t *testing.T) {
	closeDefaultIdle(t)
	n := startNet(t)
	ctx := t.Context()
	platform, err := n.NewParty(ctx, "DE", "platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	recipient, err := n.NewParty(ctx, "BR", "recipient", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	rules := protocol.Rules{MaxTier: 2, ProhibitedPurposes: []string{}, MaxRetentionDays: 365, BlockOnIncident: protocol.SeverityNone, Conditions: []protocol.Condition{}}
	var wait []*protocol.Record
	for _, j := range []string{"DE", "BR"} {
		rs, err := protocol.Sign(n.Authorities[j], time.Now().UnixMilli(), &protocol.Ruleset{Jurisdiction: j, Version: 1, EffectiveFrom: time.Now().Add(-time.Hour).UnixMilli(),
			Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules}, Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules}})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Submit(ctx, n.NodeOf(j), rs); err != nil {
			t.Fatal(err)
		}
		wait = append(wait, rs)
	}
	subject := make([]byte, 32)
	rand.Read(subject)
	consent, err := protocol.Sign(platform.Key, time.Now().UnixMilli(), &protocol.Consent{Subject: subject, Jurisdiction: "DE", Categories: []string{"face"},
		Purposes: []string{"research"}, MaxTier: 1, Destinations: []string{"BR"}, RetentionDays: 90, ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "opt-in"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Submit(ctx, n.NodeOf("DE"), consent); err != nil {
		t.Fatal(err)
	}
	wait = append(wait, consent, platform.Accreditation, recipient.Accreditation)
	for _, r := range wait {
		if err := n.WaitAll(ctx, r.CID()); err != nil {
			t.Fatal(err)
		}
	}
	br := n.NodeOf("BR")
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "br.token", br.Token+"\n", 0o600)
	c := newCLI(t)
	flags := []string{"verify", "--api", br.APIAddr(), "--token-file", tokenFile,
		"--consent", consent.CID().String(), "--from", "DE", "--to", "BR", "--recipient", recipient.ID.String(),
		"--category", "face", "--tier", "1", "--retention-days", "30"}

	out := c.ok(append(flags, "--purpose", "research")...)
	if !strings.Contains(out, "verdict  ALLOW") || strings.Count(out, "  pass  ") != 8 || !strings.Contains(out, "receipt  bafy") {
		t.Fatalf("allowed transfer:\n%s", out)
	}
	r := c.fails(exitDenied, append(flags, "--purpose", "marketing")...)
	if !strings.Contains(r.stdout, "verdict  DENY") || !strings.Contains(r.stdout, "FAIL  consent.scope") || !strings.Contains(r.stdout, `"marketing"`) {
		t.Fatalf("denied transfer:\n%s", r.stdout)
	}

	// The same request from a file, as JSON.
	req, _ := json.Marshal(map[string]any{"consent": consent.CID().String(), "from": "DE", "to": "BR", "recipient": recipient.ID.String(),
		"purpose": "research", "categories": []string{"face"}, "tier": 1, "retention_days": 30, "at": time.Now().UTC().Format(time.RFC3339)})
	file := writeFile(t, dir, "req.json", string(req), 0o644)
	out = c.ok("verify", "--api", br.APIAddr(), "--token-file", tokenFile, "--file", file, "--json")
	var v struct {
		Verdict string
		Receipt string
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Verdict != "allow" || v.Receipt == "" {
		t.Fatalf("--json: %v\n%s", err, out)
	}

	// Mistakes: a missing flag (usage, 2), both forms at once (2), a bad
	// field (the node's 400 names it, 1).
	wantError(t, c.fails(2, "verify", "--api", br.APIAddr(), "--consent", consent.CID().String()), true, "missing")
	wantError(t, c.fails(2, append(flags, "--purpose", "research", "--file", file)...), true, "not both")
	r = c.fails(1, "verify", "--api", br.APIAddr(), "--token-file", tokenFile, "--consent", consent.CID().String(), "--from", "de", "--to", "BR",
		"--recipient", recipient.ID.String(), "--purpose", "research", "--category", "face", "--tier", "1", "--retention-days", "30")
	wantError(t, r, false, "invalid_body", "from")
}
