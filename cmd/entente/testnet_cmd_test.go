package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTestnetCommand starts a two-node federation, waits for its files and
// API addresses, talks to a node with entente status, and stops it.
func TestTestnetCommand(t *testing.T) {
	closeDefaultIdle(t)
	dir := filepath.Join(t.TempDir(), "tn")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(&cliEnv{ctx: ctx, stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }},
			[]string{"testnet", "--nodes", "2", "--jurisdictions", "DE,FR", "--dir", dir})
	}()
	waitFor(t, 30*time.Second, "the testnet to print its nodes", func() bool {
		return strings.Contains(stdout.String(), "Ctrl-C stops")
	})
	var api string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if i := strings.Index(line, "API http://"); i >= 0 && strings.Contains(line, "(FR)") {
			api = strings.Fields(line[i+len("API http://"):])[0]
		}
	}
	if api == "" {
		t.Fatalf("no FR node API in:\n%s", stdout.String())
	}
	for _, f := range []string{"federation.toml", "authority-DE.key", "authority-FR.key", "node0.token", "node1.token"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	wantMode(t, filepath.Join(dir, "authority-DE.key"), 0o600)
	out := newCLI(t).ok("status", "--api", api)
	if !strings.Contains(out, "jurisdiction FR") {
		t.Errorf("status of the FR node:\n%s", out)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("testnet exited %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("testnet did not stop")
	}
}
