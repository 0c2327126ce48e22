package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/service"
)

// Identifiers as the node gives them: what a user copies into the next
// command.
const (
	fullCID   = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	fullCID2  = "bafyreibmmhdmp6ix5o5xhuvuwkctkllg7ep6lnbwpbzjdzlzywhv2yh6oe"
	fullPeer  = "12D3KooWAYP2UNo634JU3SPzSYSaXpQ1whQycfMHuYTLcHHUKbc6"
	fullPeer2 = "12D3KooWJHaTf51MZ1BEHEz8gsAMFbZoaGowHcLu1yrGwMoAUsMZ"
)

// TestHumanOutputsNameFullIDs: the tables and lines the CLI prints for
// people name every CID and peer ID whole (DESIGN.md §9: a user copies
// them into the next command).
func TestHumanOutputsNameFullIDs(t *testing.T) {
	check := func(what, out string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if !strings.Contains(out, id) {
				t.Errorf("%s does not name %s whole:\n%s", what, id, out)
			}
		}
		if strings.Contains(out, "…") {
			t.Errorf("%s shortens something:\n%s", what, out)
		}
	}

	var out bytes.Buffer
	printVerdict(&cliEnv{stdout: &out}, &api.VerdictView{Verdict: "allow", Receipt: fullCID, Item: 2,
		Checks: []api.CheckView{{ID: "consent.live", OK: true, Evidence: fullCID2, Detail: "live"}}})
	check("verify", out.String(), fullCID+":2", fullCID2)

	out.Reset()
	printLineage(&out, []*api.LineageNode{{Receipt: fullCID, Item: 1, Tier: 1, Verdict: "allow", From: "DE", To: "BR",
		Sender: fullPeer, Recipient: fullPeer2, At: "2026-12-01T00:00:00Z"}}, "")
	check("lineage", out.String(), fullCID+":1", fullPeer, fullPeer2)

	out.Reset()
	data, _ := json.Marshal(service.Incident{ID: fullCID, Jurisdiction: "DE", Severity: "high", Status: "open", TLP: "amber",
		Notices: []string{fullCID}, Summary: "a breach"})
	if err := printEvent(&out, "7", string(data), false); err != nil {
		t.Fatal(err)
	}
	check("incident follow", out.String(), fullCID)
}
