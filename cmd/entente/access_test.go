package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
)

// TestAccessCommands: entente access grant checks the peer's
// accreditation against the running node's records and refuses a peer
// without one; the token is printed once (or written 0600 with --out),
// access.toml keeps its hash; list shows the callers; revoke removes one.
func TestAccessCommands(t *testing.T) {
	closeDefaultIdle(t)
	n := startNet(t)
	de := n.NodeOf("DE")
	ctx := t.Context()
	reg, err := n.NewParty(ctx, "DE", "DE desk", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	frReg, err := n.NewParty(ctx, "FR", "FR desk", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	platform, err := n.NewParty(ctx, "BR", "a BR platform", protocol.RoleController)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WaitAll(ctx, reg.Accreditation.CID(), frReg.Accreditation.CID(), platform.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
	// A home that talks to the DE node: its federation, its API address
	// and its operator token.
	home := filepath.Join(t.TempDir(), "de")
	if _, err := config.Init(config.InitOptions{Home: home, Federation: n.FederationPath, Jurisdiction: "DE", API: de.APIAddr()}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, config.DefaultTokenFile), []byte(de.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	out := c.ok("access", "grant", "--home", home, "--name", "de-desk", "--role", "regulator", "--peer", reg.ID.String())
	token := strings.TrimSpace(out)
	if !strings.HasPrefix(token, config.TokenPrefix) || strings.Count(out, "\n") != 1 {
		t.Fatalf("grant printed %q, want the token alone", out)
	}
	// An FR regulator is no regulator of the DE node; a BR controller is a
	// controller of the federation.
	wantError(t, c.fails(1, "access", "grant", "--home", home, "--name", "fr-desk", "--role", "regulator", "--peer", frReg.ID.String()), true, "no live regulator accreditation of DE")
	wantError(t, c.fails(1, "access", "grant", "--home", home, "--name", "br-platform", "--role", "auditor", "--peer", platform.ID.String()), true, "no live auditor accreditation")
	tokenFile := filepath.Join(t.TempDir(), "platform.token")
	out = c.ok("access", "grant", "--home", home, "--name", "br-platform", "--role", "controller", "--peer", platform.ID.String(), "--out", tokenFile)
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 || strings.Contains(out, config.TokenPrefix) {
		t.Fatalf("grant --out: %v, said %q", err, out)
	}
	wantError(t, c.fails(1, "access", "grant", "--home", home, "--name", "de-desk", "--role", "regulator", "--peer", reg.ID.String()), false, "already granted")
	wantError(t, c.fails(2, "access", "grant", "--home", home, "--name", "x", "--role", "node", "--peer", reg.ID.String()), true, "--role")

	a, err := config.LoadAccess(filepath.Join(home, config.AccessFile))
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := a.Match(token); !ok || g.Name != "de-desk" || g.Role != "regulator" {
		t.Errorf("access.toml does not know the regulator's token: %+v", g)
	}
	data, _ := os.ReadFile(filepath.Join(home, config.AccessFile))
	if strings.Contains(string(data), token) {
		t.Error("access.toml holds a token")
	}
	list := c.ok("access", "list", "--home", home)
	for _, want := range []string{"de-desk", "regulator", reg.ID.String(), "br-platform", "controller"} {
		if !strings.Contains(list, want) {
			t.Errorf("access list does not show %q:\n%s", want, list)
		}
	}
	c.ok("access", "revoke", "--home", home, "--name", "de-desk")
	wantError(t, c.fails(1, "access", "revoke", "--home", home, "--name", "de-desk"), true, "no caller named")
	if list := c.ok("access", "list", "--home", home); strings.Contains(list, "de-desk") {
		t.Errorf("a revoked caller is listed:\n%s", list)
	}
}
