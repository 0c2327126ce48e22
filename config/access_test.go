package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func testPeer(t *testing.T) peer.ID {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A grant's token matches its caller only, survives a write and a load
// (kept as its hash), and stops matching once revoked.
func TestAccessGrantMatchRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), AccessFile)
	a, err := LoadAccess(path)
	if err != nil || len(a.Callers) != 0 {
		t.Fatalf("a missing access file: %+v, %v", a, err)
	}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	reg, ctrl := testPeer(t), testPeer(t)
	tokReg, err := a.Add("de-regulator", "regulator", reg, now)
	if err != nil {
		t.Fatal(err)
	}
	tokCtrl, err := a.Add("platform-a", "controller", ctrl, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tokReg, TokenPrefix) || len(tokReg) != len(TokenPrefix)+43 || tokReg == tokCtrl {
		t.Fatalf("tokens %q, %q", tokReg, tokCtrl)
	}
	if _, err := a.Add("platform-a", "auditor", reg, now); err == nil {
		t.Fatal("a second grant under one name was accepted")
	}
	if err := a.Write(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), tokReg) || !strings.Contains(string(data), TokenSHA256(tokReg)) {
		t.Fatalf("the access file keeps the token, or not its hash:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("access file mode %v", fi.Mode().Perm())
	}
	b, err := LoadAccess(path)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := b.Match(tokReg); !ok || g.Name != "de-regulator" || g.Role != "regulator" || g.Peer != reg.String() || !g.Created.Equal(now) {
		t.Fatalf("Match(regulator's token) = %+v, %v", g, ok)
	}
	if g, ok := b.Match(tokCtrl); !ok || g.Name != "platform-a" {
		t.Fatalf("Match(controller's token) = %+v, %v", g, ok)
	}
	for _, bad := range []string{"", tokReg + "x", tokReg[:len(tokReg)-1], TokenSHA256(tokReg)} {
		if g, ok := b.Match(bad); ok {
			t.Fatalf("Match(%q) = %+v", bad, g)
		}
	}
	if err := b.Remove("de-regulator"); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove("de-regulator"); err == nil {
		t.Fatal("revoking a caller twice gave no error")
	}
	if _, ok := b.Match(tokReg); ok {
		t.Fatal("a revoked token still matches")
	}
}

// A bad access file is refused with a message that says where.
func TestAccessFileRefused(t *testing.T) {
	dir := t.TempDir()
	id := testPeer(t).String()
	sum := TokenSHA256("x")
	for name, c := range map[string]struct {
		body, want string
		mode       os.FileMode
	}{
		"open mode":   {"", "too open", 0o644},
		"unknown key": {"[[caller]]\nname = \"a\"\nrole = \"auditor\"\npeer = \"" + id + "\"\nsha256 = \"" + sum + "\"\ntoken = \"x\"\n", "unknown key", 0o600},
		"bad role":    {"[[caller]]\nname = \"a\"\nrole = \"node\"\npeer = \"" + id + "\"\nsha256 = \"" + sum + "\"\n", "role", 0o600},
		"bad peer":    {"[[caller]]\nname = \"a\"\nrole = \"auditor\"\npeer = \"nope\"\nsha256 = \"" + sum + "\"\n", "peer", 0o600},
		"bad hash":    {"[[caller]]\nname = \"a\"\nrole = \"auditor\"\npeer = \"" + id + "\"\nsha256 = \"abc\"\n", "sha256", 0o600},
		"twice":       {strings.Repeat("[[caller]]\nname = \"a\"\nrole = \"auditor\"\npeer = \""+id+"\"\nsha256 = \""+sum+"\"\n", 2), "twice", 0o600},
		"bad name":    {"[[caller]]\nname = \"a b\"\nrole = \"auditor\"\npeer = \"" + id + "\"\nsha256 = \"" + sum + "\"\n", "name", 0o600},
		"not toml":    {"[[caller", "line", 0o600},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".toml")
		if err := os.WriteFile(path, []byte(c.body), c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, c.mode)
		if _, err := LoadAccess(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: LoadAccess = %v, want an error about %q", name, err, c.want)
		}
	}
}
