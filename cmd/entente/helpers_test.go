package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// TestMain fails the package if a command leaves a goroutine running: run
// and demo --serve must stop everything they started when their context ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for a command writing in one goroutine
// while the test reads in another.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what one CLI invocation left behind.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs entente commands in this process, with its own environment.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T) *cli { return &cli{t: t, env: map[string]string{}} }

func (c *cli) getenv(k string) string { return c.env[k] }

// run runs one command to completion and logs what it printed.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	code := runEnv(&cliEnv{ctx: c.t.Context(), stdout: &stdout, stderr: &stderr, getenv: c.getenv}, args)
	c.t.Logf("entente %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code, stdout.String(), stderr.String()}
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("entente %s: exit %d, want 0\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must exit with code and returns its result.
func (c *cli) fails(code int, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("entente %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// wantError checks that stderr is an error line naming each of parts,
// followed by a hint line when hint is true.
func wantError(t *testing.T, r result, hint bool, parts ...string) {
	t.Helper()
	// A node's log lines may come first; the error and its hint end stderr.
	i := strings.Index("\n"+r.stderr, "\nentente: error: ")
	if i < 0 {
		t.Errorf("stderr has no \"entente: error: \" line:\n%s", r.stderr)
		return
	}
	msg := r.stderr[i:]
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("the error does not mention %q:\n%s", p, msg)
		}
	}
	lines := strings.Split(strings.TrimSuffix(msg, "\n"), "\n")
	switch {
	case hint && (len(lines) != 2 || !strings.HasPrefix(lines[1], "entente: hint: ")):
		t.Errorf("want one error line then one hint line:\n%s", msg)
	case !hint && len(lines) != 1:
		t.Errorf("want one error line and no hint:\n%s", msg)
	}
}

// firstLine is the first line of s, trimmed.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// writeKey writes k to dir/name (mode 0600) and returns the path.
func writeKey(t *testing.T, dir, name string, k crypto.PrivKey) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := config.WriteKey(p, k); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, err := config.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, data string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFederation writes a federation file of DE and FR without founding
// nodes (nothing to dial: enough for init and record sign) and returns its
// path and the DE authority's key.
func writeFederation(t *testing.T, dir string) (string, crypto.PrivKey) {
	t.Helper()
	deKey, deID := newKey(t)
	_, frID := newKey(t)
	f := &config.Federation{Name: "cli-test", Jurisdictions: []config.Jurisdiction{
		{Code: "DE", Name: "Germany", Authority: deID.String()},
		{Code: "FR", Name: "France", Authority: frID.String()},
	}}
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "federation.toml", string(b), 0o644), deKey
}

// wantMode checks a file's permission bits.
func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

// readRecord parses a record file (signature checked).
func readRecord(t *testing.T, path string) *protocol.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := protocol.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

// startNet starts a federation of three nodes (DE, FR, BR) with HTTP APIs
// and waits for its mesh; it is closed when the test ends.
func startNet(t *testing.T) *testnet.Net {
	t.Helper()
	n, err := testnet.Start(testnet.Options{Nodes: 3, API: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing the testnet: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := n.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		}
	}
}

// freePort is a port on 127.0.0.1 that was free a moment ago, outside
// the range the kernel hands out to other tests' connections
// (testnet.FreePort).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := testnet.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func portString(p int) string { return strconv.Itoa(p) }

// httpClient is the tests' own client; its idle connections are closed at
// the end of each test that uses it, so none outlive the servers.
func httpClient(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// getStatus fetches /v1/status from an API address; ok is false while the
// API does not answer.
func getStatus(c *http.Client, api string) (st struct {
	PeerID string `json:"peer_id"`
	Peers  []struct {
		PeerID string `json:"peer_id"`
	} `json:"peers"`
}, ok bool) {
	resp, err := c.Get("http://" + api + "/v1/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return st, false
	}
	return st, json.Unmarshal(b, &st) == nil
}

// newTransferWorld is a federation (startNet) ready for transfer
// decisions (testnet.TransferWorld).
func newTransferWorld(t *testing.T) *testnet.TransferWorld {
	t.Helper()
	w, err := testnet.NewTransferWorld(t.Context(), startNet(t))
	if err != nil {
		t.Fatal(err)
	}
	return w
}
