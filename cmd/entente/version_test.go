package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/entente-net/entente/node"
)

// TestVersion: `entente version` and `entente --version` print the same
// thing, what node.BuildInfo reports, version first; --json gives it whole.
func TestVersion(t *testing.T) {
	c := newCLI(t)
	b := node.BuildInfo()
	out := c.ok("version")
	if got, want := firstLine(out), "entente "+b.Version; got != want {
		t.Errorf("first line %q, want %q", got, want)
	}
	if !strings.Contains(out, "\ngo      "+b.GoVersion+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
		t.Errorf("no Go version line:\n%s", out)
	}
	if alias := c.ok("--version"); alias != out {
		t.Errorf("entente --version printed\n%s\nentente version printed\n%s", alias, out)
	}

	var got node.Build
	if err := json.Unmarshal([]byte(c.ok("version", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got != b {
		t.Errorf("version --json = %+v, want %+v", got, b)
	}

	wantError(t, c.fails(2, "version", "extra"), true, `unexpected argument "extra"`)
	wantError(t, c.fails(2, "--version", "extra"), true, `unexpected argument "extra"`)
}

// TestPrintVersion: the commit line says what is known of the source.
func TestPrintVersion(t *testing.T) {
	const rev = "5dbd2e933dc95c1c0c5c9f5ba58a6515af244e3d"
	for _, c := range []struct {
		b    node.Build
		want string
	}{
		{node.Build{Version: "(devel)", GoVersion: "go1.26.8"},
			"entente (devel)\ncommit  unknown (built without VCS information)\n"},
		{node.Build{Version: "v1.2.0", Commit: rev, CommitTime: "2026-12-05T12:00:00Z", GoVersion: "go1.26.8"},
			"entente v1.2.0\ncommit  " + rev + "\ndate    2026-12-05T12:00:00Z\n"},
		{node.Build{Version: "v0.0.0-20261205120000-5dbd2e933dc9+dirty", Commit: rev, Modified: true, GoVersion: "go1.26.8"},
			"entente v0.0.0-20261205120000-5dbd2e933dc9+dirty\ncommit  " + rev + ", with uncommitted changes\n"},
	} {
		var out bytes.Buffer
		printVersion(&cliEnv{stdout: &out}, c.b)
		want := c.want + "go      go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
		if out.String() != want {
			t.Errorf("printVersion(%+v) =\n%s\nwant\n%s", c.b, out.String(), want)
		}
	}
}
