package main

import (
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
	w := newTransferWorld(t)
	n, consent, recipient := w.Net, w.Consent, w.Recipient
	br := n.NodeOf("BR")
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "br.token", br.Token+"\n", 0o600)
	c := newCLI(t)
	flags := []string{"verify", "--api", br.APIAddr(), "--token-file", tokenFile,
		"--consent", consent.CID().String(), "--from", "DE", "--to", "BR", "--sender", consent.Issuer().String(), "--recipient", recipient.ID.String(),
		"--category", "face", "--tier", "1", "--retention-days", "30"}

	out := c.ok(append(flags, "--purpose", "research")...)
	if !strings.Contains(out, "verdict  ALLOW") || strings.Count(out, "  pass  ") != len(protocol.CheckIDs) || !strings.Contains(out, "receipt  bafy") {
		t.Fatalf("allowed transfer:\n%s", out)
	}
	r := c.fails(exitDenied, append(flags, "--purpose", "marketing")...)
	if !strings.Contains(r.stdout, "verdict  DENY") || !strings.Contains(r.stdout, "FAIL  consent.scope") || !strings.Contains(r.stdout, `"marketing"`) {
		t.Fatalf("denied transfer:\n%s", r.stdout)
	}

	// The same request from a file, as JSON.
	req, _ := json.Marshal(map[string]any{"consent": consent.CID().String(), "from": "DE", "to": "BR", "sender": consent.Issuer().String(), "recipient": recipient.ID.String(),
		"purpose": "research", "categories": []string{"face"}, "tier": 1, "retention_days": 30, "at": time.Now().Add(time.Second).UTC().Format(time.RFC3339)}) // not before the consent, which this second may have issued
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
		"--sender", consent.Issuer().String(), "--recipient", recipient.ID.String(), "--purpose", "research", "--category", "face", "--tier", "1", "--retention-days", "30")
	wantError(t, r, false, "bad_request", "from")
	wantError(t, c.fails(2, append(flags, "--purpose", "research", "--parent", "bafy-not")...), true, "--parent", "bafy-not")
	wantError(t, c.fails(2, append(flags, "--purpose", "research", "--parent", w.Consent.CID().String()+":x")...), true, "--parent", `"x" is not a decision's index`)
}
