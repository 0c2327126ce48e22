package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
)

// readmeSection returns the ```sh blocks of the README section whose
// heading starts with title, each as its lines.
func readmeSection(t *testing.T, title string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## "+title)
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var blocks [][]string
	for {
		_, rest, ok := strings.Cut(sec, "```sh\n")
		if !ok {
			return blocks
		}
		block, after, ok := strings.Cut(rest, "```")
		if !ok {
			t.Fatalf("README section %q: unterminated code block", title)
		}
		blocks = append(blocks, strings.Split(strings.TrimRight(block, "\n"), "\n"))
		sec = after
	}
}

// shellCommands turns a README shell block into commands: continuation
// lines joined, comments dropped; a heredoc stays one entry, "<<EOT" line
// first and its body after a newline.
func shellCommands(lines []string) []string {
	var cmds []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.Contains(line, "<<EOT") {
			doc := []string{line}
			for i++; i < len(lines) && lines[i] != "EOT"; i++ {
				doc = append(doc, lines[i])
			}
			cmds = append(cmds, strings.Join(doc, "\n"))
			continue
		}
		if j := strings.Index(line, " #"); j >= 0 {
			line = line[:j]
		}
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		if line = strings.TrimSpace(line); line != "" {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// TestReadmeJoinFlow follows README.md's "Join the demo federation with a
// node of your own", command by command as the README spells them: a new
// key, its node accreditation signed by the DE authority and submitted to
// the DE founding node, init, run; then the new node connects to the three
// founding nodes and receives a record an authority publishes on the FR
// node; and it stops when its context ends.
func TestReadmeJoinFlow(t *testing.T) {
	closeDefaultIdle(t)
	blocks := readmeSection(t, "Join the demo federation with a node of your own")
	if len(blocks) != 3 {
		t.Fatalf("the README's join section has %d shell blocks, want 3 (the three terminals)", len(blocks))
	}
	if !strings.Contains(strings.Join(blocks[0], "\n"), "entente demo --serve --dir /tmp/entente-demo") {
		t.Fatalf("terminal 1 no longer runs 'entente demo --serve --dir /tmp/entente-demo':\n%s", strings.Join(blocks[0], "\n"))
	}

	// Terminal 1: a federation whose directory holds what demo --serve
	// writes there (TestDemoServe checks that it does).
	n := startNet(t)
	de := n.NodeOf("DE")
	if err := config.WriteKey(filepath.Join(n.Dir, "authority-DE.key"), n.Authorities["DE"]); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.Dir, "node-DE.token", de.Token+"\n", 0o600)
	if n.FederationPath != filepath.Join(n.Dir, "federation.toml") {
		t.Fatalf("the testnet's federation file is %s, not where the demo keeps it", n.FederationPath)
	}

	// Terminal 2, with the README's fixed ports replaced by free ones.
	work := t.TempDir()
	p2pPort, apiPort := portString(freePort(t)), portString(freePort(t))
	newAPI := "127.0.0.1:" + apiPort
	var id, accCID string
	subst := func(s string) string {
		// The README's words first, to markers; then the markers to our
		// values, which could hold any of those words (a temporary
		// directory in /tmp, a port number with 4301 in it).
		s = strings.NewReplacer(
			"$D", "\x00D", "/tmp/entente-demo", "\x00D", "/tmp/", "\x00T", "$ID", "\x00I",
			"127.0.0.1:PORT", "\x00A", "tcp/4301", "\x00P", "127.0.0.1:8301", "\x00N",
		).Replace(s)
		return strings.NewReplacer(
			"\x00D", n.Dir, "\x00T", work+"/", "\x00I", id,
			"\x00A", de.APIAddr(), "\x00P", "tcp/"+p2pPort, "\x00N", newAPI,
		).Replace(s)
	}
	c := newCLI(t)
	args := func(cmd string) []string {
		f := strings.Fields(subst(cmd))
		if f[0] != work+"/entente" {
			t.Fatalf("README command %q does not run /tmp/entente", cmd)
		}
		return f[1:]
	}
	var (
		home    string
		runDone chan int
		cancel  context.CancelFunc
		runOut  syncBuffer
		runLog  syncBuffer
		ran     []string
	)
	for _, cmd := range shellCommands(blocks[1]) {
		switch {
		case strings.HasPrefix(cmd, "go build "):
			continue // we are the binary
		case strings.HasPrefix(cmd, "D="):
			continue // subst knows $D
		case strings.HasPrefix(cmd, "ID=$(") && strings.HasSuffix(cmd, ")"):
			out := c.ok(args(strings.TrimSuffix(strings.TrimPrefix(cmd, "ID=$("), ")"))...)
			id = firstLine(out)
		case strings.HasPrefix(cmd, "cat > "):
			head, body, _ := strings.Cut(cmd, "\n")
			path := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(head, "cat > "), "<<EOT"))
			if id == "" {
				t.Fatalf("the README writes %s before it has the key's ID", path)
			}
			if err := os.WriteFile(subst(path), []byte(subst(body)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			a := args(cmd)
			ran = append(ran, a[0])
			if a[0] == "run" {
				home = a[slices.Index(a, "--home")+1]
				// The founding nodes admit the new node once they hold its
				// accreditation; let it reach them all first.
				wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
				if err := n.WaitAll(wctx, mustCID(t, accCID)); err != nil {
					t.Fatalf("the node accreditation did not reach every founding node: %v", err)
				}
				wcancel()
				var ctx context.Context
				ctx, cancel = context.WithCancel(context.Background())
				runDone = make(chan int, 1)
				go func() {
					runDone <- runEnv(&cliEnv{ctx: ctx, stdout: &runOut, stderr: &runLog, getenv: c.getenv}, a)
				}()
				continue
			}
			out := c.ok(a...)
			if len(a) > 1 && a[0] == "record" && a[1] == "sign" {
				accCID = firstLine(out)
			}
			if len(a) > 1 && a[0] == "record" && a[1] == "submit" && !strings.Contains(out, "accepted "+accCID) {
				t.Fatalf("the DE node did not accept the accreditation: %s", out)
			}
		}
	}
	if want := []string{"record", "record", "init", "run"}; !slices.Equal(ran, want) {
		t.Fatalf("the README's terminal 2 ran %v, want %v", ran, want)
	}
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-runDone
		}
		t.Logf("entente run stdout:\n%s\nstderr:\n%s", runOut.String(), runLog.String())
	}()

	// The home init wrote is the one run runs, with the README's addresses.
	nc, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if nc.API.Listen != newAPI || nc.Jurisdiction != "DE" || nc.Federation != n.FederationPath {
		t.Fatalf("config.toml: api %q, jurisdiction %q, federation %q", nc.API.Listen, nc.Jurisdiction, nc.Federation)
	}
	acc := readRecord(t, filepath.Join(work, "n4-accreditation.cbor"))
	if a, _ := acc.Accreditation(); a == nil || a.Subject != id || !slices.Equal(a.Roles, []protocol.Role{protocol.RoleNode}) {
		t.Fatalf("the accreditation the README signs: %+v", a)
	}
	if acc.Issuer() != n.Federation.Authorities()["DE"] {
		t.Fatalf("the accreditation is signed by %s, not the DE authority", acc.Issuer())
	}

	// The new node answers on its API and is connected to the three
	// founding nodes.
	hc := httpClient(t)
	waitFor(t, 30*time.Second, "the new node to connect to the three founding nodes", func() bool {
		select {
		case code := <-runDone:
			stopped = true
			t.Fatalf("entente run exited early with %d:\n%s", code, runLog.String())
		default:
		}
		st, ok := getStatus(hc, newAPI)
		return ok && st.PeerID == id && len(st.Peers) == 3
	})
	if !strings.Contains(runOut.String(), id) || !strings.Contains(runOut.String(), "API http://"+newAPI) {
		t.Errorf("run did not print the node's ID and API address:\n%s", runOut.String())
	}
	// Gossip reaches a peer once the publisher sees it on the topic.
	newID, err := peer.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	fr := n.NodeOf("FR")
	waitFor(t, 20*time.Second, "the FR node to see the new node on the gossip topic", func() bool {
		return slices.Contains(fr.Services().Gossip.Peers(), newID)
	})

	// An authority publishes on the FR node; the new node receives it.
	party, err := n.NewParty(t.Context(), "FR", "Joiner Test Platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	recURL := "http://" + newAPI + "/v1/records/" + party.Accreditation.CID().String()
	opToken, err := nc.LoadToken()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the new node to hold the FR accreditation", func() bool {
		req, _ := http.NewRequest(http.MethodGet, recURL, nil)
		req.Header.Set("Authorization", "Bearer "+opToken)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// Terminal 3.
	cmds := shellCommands(blocks[2])
	if len(cmds) != 2 {
		t.Fatalf("terminal 3 has %d commands, want 2 (status, record show)", len(cmds))
	}
	out := c.ok(args(cmds[0])...)
	for _, want := range []string{"node        " + id, "jurisdiction DE", "peers       3 connected"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s: no %q in\n%s", cmds[0], want, out)
		}
	}
	out = c.ok(args(strings.ReplaceAll(cmds[1], "<CID>", party.Accreditation.CID().String()))...)
	for _, want := range []string{"accreditation " + party.Accreditation.CID().String(), "signature  valid", "Joiner Test Platform"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s: no %q in\n%s", cmds[1], want, out)
		}
	}

	// Ctrl-C: run stops promptly and cleanly.
	cancel()
	stopped = true
	select {
	case code := <-runDone:
		if code != 0 {
			t.Errorf("entente run exited %d after its context ended, want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("entente run did not stop within 15s of its context ending")
	}
	if _, ok := getStatus(hc, newAPI); ok {
		t.Error("the new node's API still answers after run returned")
	}
	if strings.Contains(runLog.String(), "level=ERROR") {
		t.Errorf("run logged errors:\n%s", runLog.String())
	}
}

// TestReadmeListsEveryCommand: the README's command table names every
// registered command, a group's commands as "entente GROUP a/b/c".
func TestReadmeListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		cell, ok := strings.CutPrefix(line, "| `entente ")
		if !ok {
			continue
		}
		cell, _, _ = strings.Cut(cell, "`")
		words := strings.Fields(cell)
		if len(words) > 1 && isGroup(words[0]) {
			for _, sub := range strings.Split(words[1], "/") {
				listed[words[0]+" "+sub] = true
			}
			continue
		}
		for _, name := range strings.Split(words[0], "/") {
			listed[name] = true
		}
	}
	for _, c := range commands {
		if !listed[c.name] {
			t.Errorf("README.md's command table does not list 'entente %s'", c.name)
		}
	}
}

// TestReadmeStandsAlone: the README and the docs for people name no file
// outside the repository and link only to files in it; every relative
// link of the developers' docs resolves in the repository too.
func TestReadmeStandsAlone(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{"../../README.md", "../../node/api/openapi.json"}, files...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		readme := filepath.Base(name) == "README.md"
		// The docs for people name no file outside the repository; the
		// developers' (design notes, performance) cite the design contract.
		forPeople := !slices.Contains([]string{"design-notes.md", "performance.md"}, filepath.Base(name))
		if forPeople && strings.Contains(string(b), "DESIGN.md") {
			t.Errorf("%s names DESIGN.md, which is not in the repository", filepath.Base(name))
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			switch {
			case strings.Contains(target, "://"):
				if readme {
					t.Errorf("README.md links outside the repository: %s", m[1])
				}
			case target == "":
			default:
				path := filepath.Join(filepath.Dir(name), target)
				if rel, err := filepath.Rel("../..", path); err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("%s links outside the repository: %s", filepath.Base(name), m[1])
				} else if _, err := os.Stat(path); err != nil {
					t.Errorf("%s links to %s, which is not in the repository", filepath.Base(name), m[1])
				}
			}
		}
	}
}
