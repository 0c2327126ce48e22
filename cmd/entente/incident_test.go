package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// startFollow runs "entente incident follow args..." in the background
// until the returned stop is called; stop waits for it and returns its
// exit status.
func startFollow(t *testing.T, c *cli, args ...string) (out *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out = &syncBuffer{}
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(&cliEnv{ctx: ctx, stdout: out, stderr: &errOut, getenv: c.getenv}, append([]string{"incident", "follow"}, args...))
	}()
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
			t.Logf("entente incident follow → %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

func TestIncidentPublishListFollow(t *testing.T) {
	closeDefaultIdle(t)
	tn, err := testnet.Start(testnet.Options{Nodes: 1, InMemory: true, API: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	de := tn.Nodes[0]
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	regulator, err := tn.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := newCLI(t)
	keyFile := writeKey(t, dir, "regulator.key", regulator.Key)
	tokenFile := writeFile(t, dir, "de.token", de.Token+"\n", 0o600)
	apiAddr := de.APIAddr()
	node := []string{"--api", apiAddr, "--token-file", tokenFile}
	// The operator reads what the node holds; what other callers see is
	// node/access_test.go's.
	c.env["ENTENTE_API_TOKEN"] = de.Token

	// Follow from the current end of the log: every notice published
	// below is an event of it.
	events, stopFollow := startFollow(t, c, "--api", apiAddr, "--json", "--last-event-id", strconv.FormatUint(de.Store().Len(), 10))

	_, victim := newKey(t)
	tomlFile := writeFile(t, dir, "breach.toml", fmt.Sprintf(`ref          = "DE-2026-7"
jurisdiction = "DE"
severity     = "high"
tlp          = "clear"
affected     = [%q]
categories   = ["face", "derived", "face"]
detected_at  = 2026-12-01T08:00:00Z
summary      = "face templates exposed by a misconfigured bucket"
`, victim), 0o644)
	first := firstLine(c.ok(append([]string{"incident", "publish", "--key", keyFile, "--file", tomlFile}, node...)...))
	firstID, err := protocol.ParseCID(first)
	if err != nil {
		t.Fatalf("publish printed %q, not a CID", first)
	}
	rec, err := de.Store().Get(firstID)
	if err != nil {
		t.Fatalf("the node does not hold the published notice: %v", err)
	}
	b, _ := rec.Incident()
	if b.Status != protocol.StatusOpen || b.DetectedAt != time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).UnixMilli() ||
		strings.Join(b.Categories, ",") != "derived,face" || rec.Issuer() != regulator.ID {
		t.Errorf("published body %+v by %s", b, rec.Issuer())
	}

	// A follow-up may not change what an incident keeps: said before it
	// is signed, naming the flag.
	r := c.fails(2, append([]string{"incident", "publish", "--key", keyFile, "--follows", first, "--tlp", "red", "--recipient", "FR"}, node...)...)
	wantError(t, r, true, "--tlp red: an incident's tlp stays the same along its notices")
	// A follow-up by flags keeps the rest of the previous notice.
	second := firstLine(c.ok(append([]string{"incident", "publish", "--key", keyFile, "--follows", first, "--status", "resolved", "--summary", "bucket closed"}, node...)...))
	jsonFile := writeFile(t, dir, "other.json", `{"ref": "DE-2026-8", "jurisdiction": "DE", "severity": "low", "tlp": "green",
"affected": [], "categories": ["voice"], "summary": "voice prints mailed to the wrong address"}`, 0o644)
	third := firstLine(c.ok(append([]string{"incident", "publish", "--key", keyFile, "--file", jsonFile}, node...)...))

	out := c.ok("incident", "list", "--api", apiAddr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list:\n%s", out)
	}
	for i, want := range [][]string{
		{first, "DE", "high", "resolved", "clear", "2", "bucket closed"},
		{third, "DE", "low", "open", "green", "1", "voice prints mailed"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("list row %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
	}
	if out := c.ok("incident", "list", "--api", apiAddr, "--status", "open", "--json"); strings.Count(out, "\n") != 1 || !strings.Contains(out, third) {
		t.Errorf("list --status open --json:\n%s", out)
	}
	if out := c.ok("incident", "list", "--api", apiAddr, "--affected", victim.String(), "--limit", "1"); !strings.Contains(out, first) || strings.Contains(out, third) {
		t.Errorf("list --affected:\n%s", out)
	}
	wantError(t, c.fails(1, "incident", "list", "--api", apiAddr, "--severity", "grave"), true, "bad_request", "severity")
	// --limit cuts the listing and says how to go on; --after goes on.
	r = c.run("incident", "list", "--api", apiAddr, "--limit", "1")
	cursor := regexp.MustCompile(`more incidents may follow: continue with --after (\S+)\n`).FindStringSubmatch(r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, first) || strings.Contains(r.stdout, third) || cursor == nil {
		t.Fatalf("list --limit 1: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A limit over one page's (1 000) is paged, not refused.
	if r := c.run("incident", "list", "--api", apiAddr, "--limit", "5000"); r.code != 0 || !strings.Contains(r.stdout, third) {
		t.Errorf("list --limit 5000: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantUsageError(t, c.fails(2, "incident", "list", "--api", apiAddr, "--after", "x"), "--after", "entente incident list --help")
	r = c.run("incident", "list", "--api", apiAddr, "--after", cursor[1])
	if r.code != 0 || !strings.Contains(r.stdout, third) || strings.Contains(r.stdout, first) || strings.Contains(r.stderr, "more incidents") {
		t.Errorf("list --after %s: %d\n%s\n%s", cursor[1], r.code, r.stdout, r.stderr)
	}

	// The follower printed one event per notice, in order, each the
	// incident as of its notice.
	waitFor(t, 10*time.Second, "three events", func() bool { return strings.Count(events.String(), "\n") >= 3 })
	if code := stopFollow(); code != 0 {
		t.Errorf("follow exited %d when interrupted, want 0", code)
	}
	evLines := strings.Split(strings.TrimSpace(events.String()), "\n")
	if len(evLines) != 3 {
		t.Fatalf("follow printed %d events:\n%s", len(evLines), events)
	}
	for i, want := range []struct {
		notice, id, status string
		notices            int
	}{{first, first, "open", 1}, {second, first, "resolved", 2}, {third, third, "open", 1}} {
		seq, data, _ := strings.Cut(evLines[i], " ")
		var e service.Incident
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, evLines[i])
		}
		n, _ := de.Store().Seq(mustCID(t, want.notice))
		if seq != strconv.FormatUint(n, 10) || e.ID != want.id || e.Status != want.status || len(e.Notices) != want.notices {
			t.Errorf("event %d: %s %s %s %d notices; want %d %s %s %d", i, seq, e.ID, e.Status, len(e.Notices), n, want.id, want.status, want.notices)
		}
	}
}

// TestIncidentFollowResumes: after a dropped connection the follower
// reconnects with the last ID it printed and prints nothing twice.
func TestIncidentFollowResumes(t *testing.T) {
	closeDefaultIdle(t)
	var mu sync.Mutex
	var lastIDs []string
	entry := func(status string) string {
		j, _ := json.Marshal(service.Incident{ID: "bafyreiexample", Jurisdiction: "DE", Severity: "high", Status: status, TLP: "clear", Notices: []string{"a"}, Summary: status})
		return string(j)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		if r.URL.Query().Get("jurisdiction") != "DE" {
			http.Error(w, `{"error":"bad_request","message":"want the filter"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1: // two events, then the connection drops
			fmt.Fprintf(w, ": hello\n\nevent: incident\nid: 7\ndata: %s\n\nevent: incident\nid: 8\ndata: %s\n\n", entry("open"), entry("contained"))
		default: // resumed: the next event, then stay open
			fmt.Fprintf(w, "event: incident\nid: 9\ndata: %s\n\n", entry("resolved"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	c := newCLI(t)
	out, stop := startFollow(t, c, "--api", srv.URL, "--jurisdiction", "DE")
	waitFor(t, 10*time.Second, "three events", func() bool { return strings.Count(out.String(), "\n") >= 3 })
	if code := stop(); code != 0 {
		t.Errorf("follow exited %d, want 0", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("printed:\n%s", out)
	}
	for i, want := range []string{"7 ", "8 ", "9 "} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d %q, want event %s", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[2], "resolved") || !strings.Contains(lines[0], "DE") {
		t.Errorf("lines do not show the incident: %q", lines)
	}
	mu.Lock()
	ids := slices.Clone(lastIDs)
	mu.Unlock()
	if len(ids) < 2 || ids[0] != "" || ids[1] != "8" {
		t.Errorf("Last-Event-ID of the connections: %q, want \"\" then 8", ids)
	}

	// A refusal is not retried.
	r := c.fails(1, "incident", "follow", "--api", srv.URL)
	wantError(t, r, true, "bad_request")
}

func TestIncidentUsageErrors(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	k, _ := newKey(t)
	keyFile := writeKey(t, dir, "k.key", k)
	for _, args := range [][]string{
		{"incident", "publish", "--api", "127.0.0.1:1"},
		{"incident", "publish", "--key", keyFile, "extra"},
		{"incident", "list", "--limit", "-1", "--api", "127.0.0.1:1"},
		{"incident", "follow", "--last-event-id", "x", "--api", "127.0.0.1:1"},
		{"incident", "follow", "--bogus"},
	} {
		r := c.fails(2, args...)
		if !strings.Contains(r.stderr, "entente: hint: ") {
			t.Errorf("%v: no hint:\n%s", args, r.stderr)
		}
	}
	bad := writeFile(t, dir, "bad.toml", "ref = \"x\"\ncolour = \"red\"\n", 0o644)
	wantError(t, c.fails(1, "incident", "publish", "--key", keyFile, "--file", bad, "--api", "127.0.0.1:1", "--token-file", writeFile(t, dir, "t", "x\n", 0o600)), true, "unknown fields: colour")
}
