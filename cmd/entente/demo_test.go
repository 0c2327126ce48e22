package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
)

func TestDemo(t *testing.T) {
	c := newCLI(t)
	dir := filepath.Join(t.TempDir(), "demo")
	out := c.ok("demo", "--dir", dir)

	for _, want := range []string{
		// the federation and its nodes
		`The federation "demo-federation"`,
		"DE Germany", "FR France", "BR Brazil",
		// accreditations, rule sets, consent, amendment, incident, revocation
		`DE authority accredits "Nordlicht Biometrik GmbH" as controller`,
		`FR authority accredits "FR incident desk" as regulator`,
		"rule set v1",
		"Nordlicht signs consent",
		"Nordlicht signs the amendment, superseding",
		"incident FR-2026-0042",
		"follows up: contained",
		"Nordlicht revokes consent",
		// TLP:RED goes to FR and DE only
		"TLP:RED",
		"(TLP:RED, for DE): held by DE node, FR node\n",
		"which acknowledged it with a signature",
		// a regulator follows the incident stream with its own token; a
		// platform's token does not see the TLP:RED notice
		"grants the DE desk a token of its own",
		"⇢ the DE desk's stream, event ",
		": FR-2026-0042 open, high, TLP:AMBER, 1 notice\n",
		": FR-2026-0042 contained, high, TLP:AMBER, 2 notices\n",
		": FR-2026-0043 open, high, TLP:RED, 1 notice\n",
		": FR-2026-0042 resolved, high, TLP:AMBER, 3 notices\n",
		"with its own token: 404 not_found",
		// the cascade: each BR platform that received data under the
		// consent gets a notice on its stream
		"⇢ Rio Vision Ltda.'s notices stream on the BR node, event ",
		"⇢ Sudeste Dados S.A.'s notices stream on the BR node, event ",
		"⇢ Atelier Visages SAS's notices stream on the FR node, event ",
		"Sudeste Dados → Atelier Visages (FR), research, tier 3, 30 days, parent: the tier-2 decision\n      ALLOW",
		"the data has crossed three jurisdictions",
		": consent-revoked, decisions ",
		// refusals, each with its code
		"refused: unauthorized_issuer",
		"refused: bad_signature",
		"refused: clock_skew",
		"refused: malformed",
		"body.jurisdiction",
		"nothing refused was stored or forwarded",
		// a consent left live, and a transfer under it allowed
		"a consent left live to ask about",
		"Nordlicht → Rio Vision (BR), research, tier 1, 60 days\n      ALLOW",
		"The demo is over",
		"Run 'entente demo --serve'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's narration does not mention %q", want)
		}
	}

	// Every CID and peer ID the narration names is whole: one a user can
	// copy into the next command.
	wantWholeIDs(t, out)

	// Every spread record is narrated with the time each node held it.
	held := regexp.MustCompile(`submitted to the (DE|FR|BR) node; held by (.*)\n`)
	spreads := held.FindAllStringSubmatch(out, -1)
	if len(spreads) != 18 { // 8 accreditations, 3 rule sets, 3 consents, 3 incident notices, 1 revocation
		t.Errorf("%d records narrated as spread, want 18", len(spreads))
	}
	arrival := regexp.MustCompile(`^[0-9.]+(µs|ms)$`)
	for _, m := range spreads {
		got := map[string]bool{}
		for _, part := range strings.Split(m[2], ", ") {
			j, at, ok := strings.Cut(part, " +")
			if !ok || !arrival.MatchString(at) {
				t.Errorf("held by %q: %q is not \"J +time\"", m[2], part)
			}
			got[j] = true
		}
		for _, j := range []string{"DE", "FR", "BR"} {
			if !got[j] {
				t.Errorf("held by %q: no %s", m[2], j)
			}
		}
		if !strings.HasPrefix(m[2], m[1]+" +") {
			t.Errorf("held by %q: the %s node it was submitted to is not first", m[2], m[1])
		}
	}

	// The final counts: every node holds the same records but BR, which
	// does not have the TLP:RED notice.
	for j, want := range map[string]string{
		"DE": "8 accreditation, 3 ruleset, 3 consent, 1 revocation, 4 incident",
		"FR": "8 accreditation, 3 ruleset, 3 consent, 1 revocation, 4 incident",
		"BR": "8 accreditation, 3 ruleset, 3 consent, 1 revocation, 3 incident",
	} {
		if !regexp.MustCompile(`\n    ` + j + ` node \S+: ` + want + `\n`).MatchString(out) {
			t.Errorf("the demo's final count for %s is not %q", j, want)
		}
	}

	// --dir holds the federation file; a second demo refuses the non-empty
	// directory.
	if _, err := config.LoadFederation(filepath.Join(dir, "federation.toml")); err != nil {
		t.Errorf("the demo's federation file: %v", err)
	}
	wantError(t, c.fails(1, "demo", "--dir", dir), true, dir, "not empty")
	for _, want := range []string{"decision.recomputed", "ALLOW", "failed consent.scope", "failed export.rules", "failed incident.clear", "failed consent.live", "give the same verdict",
		// the resale chain: tier 2 allowed over the fetched tier-1 decision,
		// tier 3 denied on its lineage, and the bundle's ancestor
		"Rio Vision → Sudeste Dados (BR), research, tier 2, 45 days, parent: the tier-1 decision\n      ALLOW",
		"delivered its receipt of the tier-1 decision",
		"[missing_parent]", "failed lineage.parent        [purpose]", "failed lineage.parent        [parent_denied]",
		"lineage.ancestor", "the lineage holds at depth 1", "ALLOW recomputed",
		"the resale falls with the consent\n      DENY"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo does not show %q", want)
		}
	}
}

// serveDemo runs "entente demo --serve --dir dir" in the background until
// its stop is called, which waits for it and returns its exit status.
func serveDemo(t *testing.T, dir string) (out *syncBuffer, stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(&cliEnv{ctx: ctx, stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }},
			[]string{"demo", "--serve", "--dir", dir, "--every", "200ms"})
	}()
	code, stopped := 0, false
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("demo --serve did not stop within 15s of its context ending")
			}
			t.Logf("demo --serve stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return &stdout, stop
}

// askLines waits for demo --serve to print its invitation to ask the
// federation, and returns the entente verify and curl command lines.
func askLines(t *testing.T, out *syncBuffer, what string) (verify, curl string) {
	t.Helper()
	ask := regexp.MustCompile(`\n    (entente verify .*)\n    (curl .*)\n`)
	waitFor(t, 60*time.Second, what, func() bool { return ask.MatchString(out.String()) })
	m := ask.FindStringSubmatch(out.String())
	return m[1], m[2]
}

// shellWords splits a command line as a POSIX shell would, for the
// quoting our outputs use: blanks outside quotes part words, and single
// or double quotes are taken away (no escapes inside them).
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune // the open quote, or 0
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quotes in %s", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// TestDemoServe runs demo --serve, runs the entente verify and curl
// commands it prints against it (allow), stops it, and runs it again on
// the same directory: it resumes the same federation, and the commands it
// prints answer allow again.
func TestDemoServe(t *testing.T) {
	closeDefaultIdle(t)
	dir := filepath.Join(t.TempDir(), "fed")
	out, stop := serveDemo(t, dir)

	fedPath := filepath.Join(dir, "federation.toml")
	verifyLine, curlLine := askLines(t, out, "demo --serve to print the commands that ask it")
	newParty := regexp.MustCompile(`authority accredits "Platform \d+ \((DE|FR|BR)\)"\n.*\n.*held by .*\+.*, .*\+.*, .*\+`)
	waitFor(t, 30*time.Second, "demo --serve to spread a new accreditation", func() bool { return newParty.MatchString(out.String()) })
	for _, want := range []string{"federation file   " + fedPath, "DE node API       http://127.0.0.1:", "node-DE.token", "every 200ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo --serve does not print %q", want)
		}
	}
	wantWholeIDs(t, out.String())
	askAllows(t, verifyLine, curlLine)
	actAsParties(t, dir, out, verifyLine)

	if code := stop(); code != 0 {
		t.Errorf("demo --serve exited %d once stopped, want 0", code)
	}
	if !strings.Contains(out.String(), "stopping the federation") {
		t.Error("demo --serve did not say it was stopping")
	}

	// What a joining operator needs stays in --dir: the federation file,
	// the authorities' keys and the founding nodes' API tokens, secrets 0600.
	fed, err := config.LoadFederation(fedPath)
	if err != nil {
		t.Fatal(err)
	}
	auth := fed.Authorities()
	var nodeIDs []string
	for _, j := range []string{"DE", "FR", "BR"} {
		keyFile := filepath.Join(dir, "authority-"+j+".key")
		wantMode(t, keyFile, config.KeyFileMode)
		k, err := config.LoadKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := peerIDOf(k); id != auth[j] {
			t.Errorf("authority-%s.key is %s, the federation file says %s", j, id, auth[j])
		}
		tokenFile := filepath.Join(dir, "node-"+j+".token")
		wantMode(t, tokenFile, config.TokenFileMode)
		if _, err := config.LoadToken(tokenFile); err != nil {
			t.Error(err)
		}
	}
	for _, ai := range fed.BootstrapAddrs() {
		nodeIDs = append(nodeIDs, ai.ID.String())
	}

	// A second run on the same directory resumes the federation: the same
	// nodes, the records they held, and the consent still live.
	out2, stop2 := serveDemo(t, dir)
	verifyLine2, curlLine2 := askLines(t, out2, "the resumed demo to print the commands that ask it")
	if !strings.Contains(out2.String(), "resuming the federation kept in "+dir) {
		t.Errorf("the second run does not say it resumes:\n%s", out2.String())
	}
	for _, id := range nodeIDs {
		if !strings.Contains(out2.String(), id) {
			t.Errorf("the resumed federation does not name its node %s", id)
		}
	}
	if strings.Contains(out2.String(), "[1] ") {
		t.Error("the resumed demo narrates the federation's story again")
	}
	askAllows(t, verifyLine2, curlLine2)
	// The nodes' API addresses are kept too: what the first run printed
	// still asks the resumed federation.
	if verifyLine2 != verifyLine || curlLine2 != curlLine {
		t.Errorf("the resumed demo prints other commands:\n%s\n%s\nthe first run printed\n%s\n%s", verifyLine2, curlLine2, verifyLine, curlLine)
	}
	askAllows(t, verifyLine, curlLine)
	if code := stop2(); code != 0 {
		t.Errorf("the resumed demo --serve exited %d once stopped, want 0", code)
	}

	// Without --serve, the kept directory is not narrated over.
	wantError(t, newCLI(t).fails(1, "demo", "--dir", dir), true, "holds a demo federation", "entente demo --serve --dir "+dir)
}

// actAsParties checks what demo --serve keeps to act as two of its
// parties: Nordlicht's key is the sender's of the verify command, the DE
// desk's key and token are kept 0600, and the incident list it prints,
// run with the desk's token, lists the demo's incidents.
func actAsParties(t *testing.T, dir string, out *syncBuffer, verifyLine string) {
	t.Helper()
	for _, f := range []string{askKeyFile, deskKeyFile, askTokenFile, deskTokenFile} {
		wantMode(t, filepath.Join(dir, f), 0o600)
	}
	c := newCLI(t)
	id := strings.TrimPrefix(firstLine(c.ok("key", "show", filepath.Join(dir, askKeyFile))), "peer id     ")
	if !strings.Contains(verifyLine, "--sender "+id+" ") {
		t.Errorf("%s is not the key of the verify command's sender: %s", askKeyFile, verifyLine)
	}
	m := regexp.MustCompile(`\n    (entente incident list .*)\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("demo --serve prints no incident list command:\n%s", out.String())
	}
	list := c.ok(shellWords(t, m[1])[1:]...)
	if !strings.Contains(list, "FR") || !strings.Contains(list, "resolved") {
		t.Errorf("%s printed\n%s\nwant the demo's resolved FR incident", m[1], list)
	}
}

// askAllows runs the entente verify command demo --serve printed, through
// the CLI, and its curl command, through bash where curl is installed:
// both answer allow.
func askAllows(t *testing.T, verifyLine, curlLine string) {
	t.Helper()
	args := shellWords(t, verifyLine)
	if args[0] != "entente" || args[1] != "verify" {
		t.Fatalf("the printed command is not entente verify: %s", verifyLine)
	}
	out := newCLI(t).ok(args[1:]...)
	if !strings.Contains(out, "verdict  ALLOW") {
		t.Errorf("%s answered:\n%s", verifyLine, out)
	}
	bash, errBash := exec.LookPath("bash")
	_, errCurl := exec.LookPath("curl")
	if errBash != nil || errCurl != nil {
		t.Logf("bash or curl is not installed: %s not run", curlLine)
		return
	}
	got, err := exec.Command(bash, "-c", curlLine).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", curlLine, err, got)
	}
	var v struct{ Verdict, Receipt string }
	if err := json.Unmarshal(got, &v); err != nil || v.Verdict != "allow" || v.Receipt == "" {
		t.Errorf("%s answered %s (%v)", curlLine, got, err)
	}
}

// wantWholeIDs checks that every CID (bafy...) and peer ID (12D3KooW...)
// in out parses: none is shortened.
func wantWholeIDs(t *testing.T, out string) {
	t.Helper()
	cids := regexp.MustCompile(`bafy[^\s,;:)"'#]*`).FindAllString(out, -1)
	peers := regexp.MustCompile(`12D3KooW[^\s,;:)"'#]*`).FindAllString(out, -1)
	if len(cids) == 0 || len(peers) == 0 {
		t.Errorf("the output names %d CIDs and %d peer IDs; want some of each", len(cids), len(peers))
	}
	for _, s := range cids {
		if _, err := protocol.ParseCID(s); err != nil {
			t.Errorf("%q is not a whole CID: %v", s, err)
		}
	}
	for _, s := range peers {
		if _, err := peer.Decode(s); err != nil {
			t.Errorf("%q is not a whole peer ID: %v", s, err)
		}
	}
}
