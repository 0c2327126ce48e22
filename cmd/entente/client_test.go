package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entente-net/entente/config"
)

// TestHealthCheckReachesPublishedAPI: the image's health check, `entente
// status --home`, also answers when the operator publishes the API on
// every interface (--api 0.0.0.0:PORT, docs/operating.md "Deploying"): the
// client dials loopback, not 0.0.0.0, which the API's Host check refuses.
func TestHealthCheckReachesPublishedAPI(t *testing.T) {
	dir := t.TempDir()
	fed, _ := writeFederation(t, dir)
	home := filepath.Join(dir, "home")
	c := newCLI(t)
	c.ok("init", "--home", home, "--federation", fed, "--jurisdiction", "DE",
		"--api", "0.0.0.0:0", "--listen", "/ip4/127.0.0.1/tcp/0")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(&cliEnv{ctx: ctx, stdout: &out, stderr: &out, getenv: c.getenv}, []string{"run", "--home", home})
	}()
	addrFile := filepath.Join(home, config.APIAddressFile)
	waitFor(t, 30*time.Second, "the node's API address", func() bool {
		b, err := os.ReadFile(addrFile)
		return err == nil && len(bytes.TrimSpace(b)) > 0
	})
	if b, _ := os.ReadFile(addrFile); !strings.HasPrefix(string(b), "0.0.0.0:") && !strings.HasPrefix(string(b), "[::]:") {
		t.Errorf("the API listens on %q, want every interface", b)
	}
	r := c.run("status", "--home", home)
	if r.code != 0 || !strings.Contains(r.stdout, "jurisdiction DE") {
		t.Errorf("entente status --home of a node whose API listens on 0.0.0.0: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("entente run: exit %d\n%s", code, out.String())
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8101":    "127.0.0.1:8101",
		"[::]:8101":       "[::1]:8101",
		":8101":           "127.0.0.1:8101",
		"127.0.0.1:8101":  "127.0.0.1:8101",
		"10.0.0.5:8101":   "10.0.0.5:8101",
		"node.example:80": "node.example:80",
		"not an address":  "not an address",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}
