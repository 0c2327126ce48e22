package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
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
	"github.com/entente-net/entente/store"
)

// The commands DESIGN.md §9 and the README name, and this binary registers.
var wantCommands = []string{"init", "run", "backup", "restore", "key new", "key show", "record sign", "record submit", "record show", "record list", "completion", "incident publish", "incident list", "incident follow", "access grant", "access revoke", "access list", "lineage", "status", "demo"}

func TestHelpListsCommands(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		r := c.run(args...)
		if r.code != 0 {
			t.Errorf("entente %v: exit %d, want 0", args, r.code)
		}
		if r.stderr != "" {
			t.Errorf("entente %v wrote to stderr: %q", args, r.stderr)
		}
		wantCommandList(t, args, r.stdout)
	}
	// "entente" alone is a usage error (DESIGN.md §9): the list, on
	// stderr, and status 2.
	r := c.fails(2)
	if r.stdout != "" {
		t.Errorf("entente alone wrote to stdout: %q", r.stdout)
	}
	wantCommandList(t, nil, r.stderr)
}

// wantCommandList checks that out lists every registered command once.
func wantCommandList(t *testing.T, args []string, out string) {
	t.Helper()
	for _, name := range wantCommands {
		if !strings.Contains(out, "\n  "+name+" ") {
			t.Errorf("entente %v: help does not list %q:\n%s", args, name, out)
		}
	}
	for _, cmd := range commands {
		if n := strings.Count(out, "\n  "+cmd.name+" "); n != 1 {
			t.Errorf("entente %v: help lists %q %d times", args, cmd.name, n)
		}
	}
}

// TestHelpOnEveryCommand asks every registered command and every group
// for help in each way a user may (--help, -h, -help, help CMD): each
// prints its usage once, to stdout, and exits 0; and all ways print the
// same.
func TestHelpOnEveryCommand(t *testing.T) {
	c := newCLI(t)
	for _, want := range wantCommands {
		if findCommand(want) == nil {
			t.Errorf("command %q is not registered", want)
		}
	}
	for _, cmd := range commands {
		t.Run(strings.ReplaceAll(cmd.name, " ", "_"), func(t *testing.T) {
			words := strings.Fields(cmd.name)
			var first string
			for _, args := range [][]string{
				append(slices.Clone(words), "--help"),
				append(slices.Clone(words), "-h"),
				append(slices.Clone(words), "-help"),
				append([]string{"help"}, words...),
				append([]string{"--help"}, words...),
			} {
				r := c.run(args...)
				if r.code != 0 {
					t.Errorf("entente %v: exit %d, want 0", args, r.code)
				}
				if r.stderr != "" {
					t.Errorf("entente %v wrote to stderr: %q", args, r.stderr)
				}
				if !strings.HasPrefix(r.stdout, "usage: entente "+cmd.name) {
					t.Errorf("entente %v: stdout does not start with its usage line:\n%s", args, r.stdout)
				}
				if n := strings.Count(r.stdout, "usage: entente "); n != 1 {
					t.Errorf("entente %v: the usage is printed %d times:\n%s", args, n, r.stdout)
				}
				usage, _, _ := strings.Cut(r.stdout, "\n")
				for _, f := range flagsOf(cmd) {
					if !strings.Contains(r.stdout, "\nflags:\n") || !strings.Contains(r.stdout, "  -"+f.Name+" ") && !strings.Contains(r.stdout, "  -"+f.Name+"\n") {
						t.Errorf("entente %v: the flag -%s is not listed:\n%s", args, f.Name, r.stdout)
					}
					if !regexp.MustCompile(`--` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(usage) {
						t.Errorf("entente %v: the usage line does not name --%s:\n%s", args, f.Name, usage)
					}
				}
				if first == "" {
					first = r.stdout
				} else if r.stdout != first {
					t.Errorf("entente %v prints another help than %s --help:\n%s", args, cmd.name, r.stdout)
				}
			}
		})
	}
	for _, group := range groups() {
		t.Run(group, func(t *testing.T) {
			var first string
			for _, args := range [][]string{{group, "--help"}, {group, "-h"}, {group, "help"}, {"help", group}} {
				r := c.run(args...)
				if r.code != 0 || r.stderr != "" {
					t.Errorf("entente %v: exit %d, stderr %q", args, r.code, r.stderr)
				}
				if n := strings.Count(r.stdout, "usage: entente "+group+" <command>"); n != 1 {
					t.Errorf("entente %v: the group's usage is printed %d times:\n%s", args, n, r.stdout)
				}
				for _, cmd := range commands {
					if strings.HasPrefix(cmd.name, group+" ") && !strings.Contains(r.stdout, "\n  "+cmd.name+" ") {
						t.Errorf("entente %v does not list %q:\n%s", args, cmd.name, r.stdout)
					}
				}
				if first == "" {
					first = r.stdout
				} else if r.stdout != first {
					t.Errorf("entente %v prints another help than %s --help", args, group)
				}
			}
		})
	}
	// Help on what is not a command is a usage error.
	r := c.fails(2, "help", "frobnicate")
	wantError(t, r, true, `"frobnicate"`, "entente help")
}

// groups are the first words of multi-word commands ("record").
func groups() []string {
	var out []string
	for _, c := range commands {
		if g, _, ok := strings.Cut(c.name, " "); ok && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// TestUsageErrorOnEveryCommand gives every command a flag it does not
// have: one error line and one hint on stderr, nothing on stdout (no
// usage dump), status 2.
func TestUsageErrorOnEveryCommand(t *testing.T) {
	c := newCLI(t)
	for _, cmd := range commands {
		args := append(strings.Fields(cmd.name), "--no-such-flag")
		r := c.fails(2, args...)
		wantUsageError(t, r, "-no-such-flag", "entente "+cmd.name+" --help")
	}
	// Bad values of flags, and a group without its command.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--records", "many"}, "-records"},
		{[]string{"testnet", "--nodes", "0"}, "--nodes"},
		{[]string{"verify", "--tier", "two"}, "-tier"},
		{[]string{"demo", "--every", "often"}, "-every"},
		{[]string{"key"}, `"key" needs a command`},
		{[]string{"record", "--kind", "consent"}, `"record" needs a command`},
	} {
		wantUsageError(t, c.fails(2, tc.args...), tc.want, "entente "+tc.args[0])
	}
}

// wantUsageError checks a usage error's output: nothing on stdout, and on
// stderr exactly an error line naming want and a hint line naming hint.
func wantUsageError(t *testing.T, r result, want, hint string) {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("a usage error wrote to stdout: %q", r.stdout)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "entente: error: ") || !strings.HasPrefix(lines[1], "entente: hint: ") {
		t.Errorf("want one error line and one hint line on stderr, got:\n%s", r.stderr)
		return
	}
	if !strings.Contains(lines[0], want) {
		t.Errorf("the error does not name %q: %s", want, lines[0])
	}
	if !strings.Contains(lines[1], hint) {
		t.Errorf("the hint does not name %q: %s", hint, lines[1])
	}
}

// TestHintsNameNoSourceFile reads this command's sources for the hints it
// gives (withHint, printErr, hintError): none may send a user to a .go
// file, or to the design contract, which is not in the repository; they
// name a command or a doc section (DESIGN.md §9).
func TestHintsNameNoSourceFile(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	goFile := regexp.MustCompile(`\.go\b|DESIGN\.md`)
	fset := token.NewFileSet()
	hints := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			var hint ast.Node
			switch x := n.(type) {
			case *ast.CallExpr:
				if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "withHint" || id.Name == "printErr") && len(x.Args) > 0 {
					hint = x.Args[len(x.Args)-1]
				}
			case *ast.KeyValueExpr:
				if id, ok := x.Key.(*ast.Ident); ok && id.Name == "hint" {
					hint = x.Value
				}
			}
			if hint == nil {
				return true
			}
			hints++
			ast.Inspect(hint, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && goFile.MatchString(lit.Value) {
					t.Errorf("%s: a hint names a source file: %s", fset.Position(lit.Pos()), lit.Value)
				}
				return true
			})
			return true
		})
	}
	if hints < 10 {
		t.Errorf("found %d hints in the sources; the test no longer sees them", hints)
	}
}

func TestCommandGroups(t *testing.T) {
	c := newCLI(t)
	out := c.ok("record", "--help")
	for _, sub := range []string{"record sign", "record submit", "record show"} {
		if !strings.Contains(out, sub) {
			t.Errorf("entente record --help does not list %q:\n%s", sub, out)
		}
	}
	r := c.fails(2, "key")
	wantError(t, r, true, `"key" needs a command`)
}

func TestUnknownCommand(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		name string // as the error quotes it
	}{
		{[]string{"frobnicate"}, "frobnicate"},
		{[]string{"frobnicate", "--home", "x"}, "frobnicate"},
		{[]string{"frobnicate", "file"}, "frobnicate"},
		{[]string{"record", "burn"}, "record burn"},
		{[]string{"record", "burn", "--kind", "x"}, "record burn"},
	} {
		args := tc.args
		r := c.fails(2, args...)
		wantError(t, r, true, fmt.Sprintf("unknown command %q\n", tc.name))
		if !strings.Contains(r.stderr, "entente help") {
			t.Errorf("entente %v: the hint does not point to 'entente help':\n%s", args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("entente %v wrote to stdout: %q", args, r.stdout)
		}
	}
}

// TestSuggestions: a mistyped command or flag gets what was likely meant
// in the hint; a word near none gets no guess.
func TestSuggestions(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args       []string
		err, guess string
	}{
		{[]string{"statsu"}, `unknown command "statsu"`, "did you mean 'entente status'?"},
		{[]string{"stat", "--home", "x"}, `unknown command "stat"`, "did you mean 'entente status'?"},
		{[]string{"record", "lst"}, `unknown command "record lst"`, "did you mean 'entente record list'?"},
		{[]string{"recipt", "get"}, `unknown command "recipt"`, "did you mean 'entente receipt get'?"},
		{[]string{"status", "--hom", "x"}, "unknown flag --hom", "did you mean --home?"},
		{[]string{"verify", "--tokn-file", "x"}, "unknown flag --tokn-file", "did you mean --token-file?"},
		{[]string{"xyzzy"}, `unknown command "xyzzy"`, ""},
		{[]string{"key", "new", "--bogus"}, "unknown flag --bogus", ""},
	} {
		r := c.fails(2, tc.args...)
		wantError(t, r, true, tc.err)
		if tc.guess == "" && strings.Contains(r.stderr, "did you mean") {
			t.Errorf("entente %v guesses:\n%s", tc.args, r.stderr)
		} else if !strings.Contains(r.stderr, tc.guess) {
			t.Errorf("entente %v: the hint does not say %q:\n%s", tc.args, tc.guess, r.stderr)
		}
	}
	// Help shows no default that means "not given", and the command list
	// keeps its columns apart.
	if out := c.ok("verify", "--help"); strings.Contains(out, "(default -1)") {
		t.Errorf("verify --help shows a default of -1:\n%s", out)
	}
	if out := c.ok("receipt", "check", "--help"); strings.Contains(out, "(default any) (default") {
		t.Errorf("receipt check --help shows two defaults:\n%s", out)
	}
	for _, line := range strings.Split(c.ok("help"), "\n") {
		if f := strings.Fields(line); len(f) > 2 && isGroup(f[0]) && !strings.Contains(line, f[0]+" "+f[1]+"  ") {
			t.Errorf("the command list runs a name into its summary: %q", line)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	fed, deKey := writeFederation(t, dir)
	key := writeKey(t, dir, "k.key", deKey)
	body := writeFile(t, dir, "b.json", `{}`, 0o644)
	for _, tc := range []struct {
		args []string
		want string // named in the error
	}{
		{[]string{"key", "new"}, "--out"},
		{[]string{"key", "new", "--out", filepath.Join(dir, "x.key"), "extra"}, "extra"},
		{[]string{"init", "--federation", fed, "--jurisdiction", "DE"}, "--home"},
		{[]string{"init", "--home", filepath.Join(dir, "h"), "--jurisdiction", "DE"}, "--federation"},
		{[]string{"init", "--home", filepath.Join(dir, "h"), "--federation", fed}, "--jurisdiction"},
		{[]string{"init", "--bogus"}, "bogus"},
		{[]string{"run"}, "--home"},
		{[]string{"record", "sign", "--key", key, "--body", body, "--out", filepath.Join(dir, "o")}, "--kind"},
		{[]string{"record", "sign", "--kind", "consent", "--body", body, "--out", filepath.Join(dir, "o")}, "--key"},
		{[]string{"record", "sign", "--kind", "consent", "--key", key, "--out", filepath.Join(dir, "o")}, "--body"},
		{[]string{"record", "sign", "--kind", "consent", "--key", key, "--body", body}, "--out"},
		{[]string{"record", "sign", "--kind", "consent", "--key", key, "--body", body, "--out", filepath.Join(dir, "o"), "--issued-at", "yesterday"}, "--issued-at"},
		{[]string{"record", "submit", "--api", "127.0.0.1:1"}, "record file"},
		{[]string{"record", "show"}, "name one record"},
		{[]string{"record", "show", "a", "b"}, "name one record"},
		{[]string{"status", "extra"}, "extra"},
		{[]string{"demo", "extra"}, "extra"},
	} {
		c := newCLI(t)
		r := c.fails(2, tc.args...)
		wantError(t, r, true, tc.want)
		if r.stdout != "" {
			t.Errorf("entente %v: a usage error wrote to stdout: %q", tc.args, r.stdout)
		}
		if !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("entente %v: hint does not point to --help:\n%s", tc.args, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); err == nil {
		t.Error("a refused record sign wrote its output file")
	}
}

func TestKeyNew(t *testing.T) {
	c := newCLI(t)
	path := filepath.Join(t.TempDir(), "n.key")
	out := c.ok("key", "new", "--out", path)
	printed, err := peer.Decode(firstLine(out))
	if err != nil {
		t.Fatalf("key new printed %q, not a peer ID: %v", out, err)
	}
	k, err := config.LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if printed != id {
		t.Errorf("key new printed %s, but the key's peer ID is %s", printed, id)
	}
	wantMode(t, path, config.KeyFileMode)

	// A second key new to the same file is refused and leaves the key alone.
	before, _ := os.ReadFile(path)
	r := c.fails(1, "key", "new", "--out", path)
	wantError(t, r, true, path, "never overwritten")
	if r.stdout != "" {
		t.Errorf("a refused key new printed %q", r.stdout)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("a refused key new changed the key file")
	}

	// Two keys are two identities.
	other := c.ok("key", "new", "--out", path+"2")
	if firstLine(other) == firstLine(out) {
		t.Error("two key new calls printed the same peer ID")
	}
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	fed, _ := writeFederation(t, dir)
	c := newCLI(t)
	home := filepath.Join(dir, "home")
	out := c.ok("init", "--home", home, "--federation", fed, "--jurisdiction", "DE",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--announce", "/dns4/node.example/tcp/4101")
	id, err := peer.Decode(firstLine(out))
	if err != nil {
		t.Fatalf("init printed %q, not a peer ID: %v", out, err)
	}
	for _, f := range []string{config.ConfigFile, config.DefaultKeyFile, config.DefaultTokenFile} {
		wantMode(t, filepath.Join(home, f), 0o600)
	}
	k, err := config.LoadKey(filepath.Join(home, config.DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := peer.IDFromPrivateKey(k); kid != id {
		t.Errorf("init printed %s, but node.key is %s", id, kid)
	}
	nc, err := config.Load(home)
	if err != nil {
		t.Fatalf("the config init wrote does not load: %v", err)
	}
	if nc.Jurisdiction != "DE" || nc.API.Listen != "127.0.0.1:0" || !slices.Equal(nc.Listen, []string{"/ip4/127.0.0.1/tcp/0"}) ||
		!slices.Equal(nc.Announce, []string{"/dns4/node.example/tcp/4101"}) {
		t.Errorf("config: jurisdiction %q, api %q, listen %q, announce %q", nc.Jurisdiction, nc.API.Listen, nc.Listen, nc.Announce)
	}
	if !filepath.IsAbs(nc.Federation) {
		t.Errorf("config names the federation file by a relative path %q", nc.Federation)
	}
	if tok, err := nc.LoadToken(); err != nil || len(tok) < 16 {
		t.Errorf("api-token: %q, %v", tok, err)
	}

	// A home already set up is refused, and left as it was.
	conf, _ := os.ReadFile(filepath.Join(home, config.ConfigFile))
	r := c.fails(1, "init", "--home", home, "--federation", fed, "--jurisdiction", "FR")
	wantError(t, r, true, "entente run --home "+home)
	if after, _ := os.ReadFile(filepath.Join(home, config.ConfigFile)); string(after) != string(conf) {
		t.Error("a refused init changed config.toml")
	}
	if k2, err := config.LoadKey(filepath.Join(home, config.DefaultKeyFile)); err != nil || !k2.Equals(k) {
		t.Errorf("a refused init changed node.key (%v)", err)
	}
}

func TestInitWithKey(t *testing.T) {
	dir := t.TempDir()
	fed, _ := writeFederation(t, dir)
	c := newCLI(t)
	k, id := newKey(t)
	keyFile := writeKey(t, dir, "mine.key", k)
	home := filepath.Join(dir, "home")
	out := c.ok("init", "--home", home, "--federation", fed, "--jurisdiction", "FR", "--key", keyFile)
	if firstLine(out) != id.String() {
		t.Errorf("init --key printed %q, want the key's peer ID %s", firstLine(out), id)
	}
	copied, err := config.LoadKey(filepath.Join(home, config.DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !copied.Equals(k) {
		t.Error("node.key is not a copy of --key")
	}
	wantMode(t, filepath.Join(home, config.DefaultKeyFile), 0o600)
	nc, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if nc.API.Listen != config.DefaultAPI {
		t.Errorf("api %q, want the default %q", nc.API.Listen, config.DefaultAPI)
	}
}

func TestInitUsesEntenteHome(t *testing.T) {
	dir := t.TempDir()
	fed, _ := writeFederation(t, dir)
	c := newCLI(t)
	home := filepath.Join(dir, "from-env")
	c.env["ENTENTE_HOME"] = home
	out := c.ok("init", "--federation", fed, "--jurisdiction", "DE")
	if _, err := peer.Decode(firstLine(out)); err != nil {
		t.Errorf("init printed %q: %v", out, err)
	}
	if _, err := config.Load(home); err != nil {
		t.Errorf("init did not set up $ENTENTE_HOME: %v", err)
	}
	// --home wins over ENTENTE_HOME.
	other := filepath.Join(dir, "from-flag")
	c.ok("init", "--home", other, "--federation", fed, "--jurisdiction", "DE")
	if _, err := config.Load(other); err != nil {
		t.Errorf("init --home with ENTENTE_HOME set: %v", err)
	}
	// And ENTENTE_HOME, now set up, is refused as --home would be.
	wantError(t, c.fails(1, "init", "--federation", fed, "--jurisdiction", "DE"), true, home)
}

func TestInitUnknownJurisdiction(t *testing.T) {
	dir := t.TempDir()
	fed, _ := writeFederation(t, dir)
	c := newCLI(t)
	for _, j := range []string{"XX", "de"} {
		home := filepath.Join(dir, "home-"+j)
		r := c.fails(1, "init", "--home", home, "--federation", fed, "--jurisdiction", j)
		wantError(t, r, false, `"`+j+`"`, "jurisdiction", "DE, FR")
		if _, err := os.Stat(filepath.Join(home, config.ConfigFile)); err == nil {
			t.Errorf("a refused init (jurisdiction %s) wrote config.toml", j)
		}
	}
	// A federation file that does not exist is named.
	r := c.fails(1, "init", "--home", filepath.Join(dir, "h"), "--federation", filepath.Join(dir, "nope.toml"), "--jurisdiction", "DE")
	wantError(t, r, false, "nope.toml")
}

func TestRecordSignTOML(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t)
	authKey, authID := newKey(t)
	keyFile := writeKey(t, dir, "auth.key", authKey)
	_, subject := newKey(t)
	body := writeFile(t, dir, "acc.toml", `
subject      = "`+subject.String()+`"
jurisdiction = "DE"
roles        = ["node", "controller", "node"]
name         = "DE second node"
valid_from   = 2026-01-01T00:00:00Z
valid_until  = 2027-12-31T00:00:00Z
addrs        = ["/ip4/127.0.0.1/tcp/4302/p2p/`+subject.String()+`", "/ip4/127.0.0.1/tcp/4301/p2p/`+subject.String()+`"]
`, 0o644)
	out := filepath.Join(dir, "acc.cbor")
	r := c.run("record", "sign", "--kind", "accreditation", "--key", keyFile, "--body", body, "--out", out, "--issued-at", "2026-02-03T04:05:06Z")
	if r.code != 0 {
		t.Fatalf("record sign: exit %d: %s", r.code, r.stderr)
	}
	rec := readRecord(t, out)
	if firstLine(r.stdout) != rec.CID().String() {
		t.Errorf("record sign printed %q, the record's CID is %s", firstLine(r.stdout), rec.CID())
	}
	if rec.Issuer() != authID {
		t.Errorf("issuer %s, want the key's peer ID %s", rec.Issuer(), authID)
	}
	if rec.Kind() != protocol.KindAccreditation {
		t.Errorf("kind %s", rec.Kind())
	}
	if want := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC).UnixMilli(); rec.IssuedAt() != want {
		t.Errorf("issued_at %d, want %d (--issued-at)", rec.IssuedAt(), want)
	}
	a, ok := rec.Accreditation()
	if !ok {
		t.Fatal("not an accreditation body")
	}
	if want := []protocol.Role{protocol.RoleController, protocol.RoleNode}; !slices.Equal(a.Roles, want) {
		t.Errorf("roles %v, want %v (sorted, de-duplicated)", a.Roles, want)
	}
	if !slices.IsSorted(a.Addrs) || len(a.Addrs) != 2 {
		t.Errorf("addrs %v, want both, sorted", a.Addrs)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(); a.ValidFrom != want {
		t.Errorf("valid_from %d, want %d", a.ValidFrom, want)
	}
	if want := time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli(); a.ValidUntil != want {
		t.Errorf("valid_until %d, want %d", a.ValidUntil, want)
	}
	if a.Subject != subject.String() || a.Jurisdiction != "DE" || a.Name != "DE second node" {
		t.Errorf("body %+v", a)
	}

	// Signing again (same body, same time, same key) gives the same bytes:
	// Ed25519 is deterministic and the encoding canonical.
	out2 := filepath.Join(dir, "acc2.cbor")
	c.ok("record", "sign", "--kind", "accreditation", "--key", keyFile, "--body", body, "--out", out2, "--issued-at", "2026-02-03T04:05:06Z")
	if readRecord(t, out2).CID() != rec.CID() {
		t.Error("signing the same body twice at the same time gave two CIDs")
	}

	// Without --issued-at the record is dated now.
	before := time.Now().UnixMilli()
	out3 := filepath.Join(dir, "acc3.cbor")
	c.ok("record", "sign", "--kind", "accreditation", "--key", keyFile, "--body", body, "--out", out3)
	if at := readRecord(t, out3).IssuedAt(); at < before || at > time.Now().UnixMilli() {
		t.Errorf("issued_at %d is not now", at)
	}
}

func TestRecordSignDAGJSON(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t)
	k, id := newKey(t)
	keyFile := writeKey(t, dir, "platform.key", k)

	// A consent, with bytes, to revoke below.
	subject := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" // 32 bytes, unpadded base64
	consent := writeFile(t, dir, "consent.json", `{
		"subject": {"/": {"bytes": "`+subject+`"}},
		"jurisdiction": "DE",
		"categories": ["face", "iris", "face"],
		"purposes": ["security", "research"],
		"max_tier": 1,
		"destinations": ["FR", "BR"],
		"retention_days": 90,
		"expires_at": 1893456000000,
		"method": "in-app explicit opt-in"
	}`, 0o644)
	cOut := filepath.Join(dir, "consent.cbor")
	cCID := firstLine(c.ok("record", "sign", "--kind", "consent", "--key", keyFile, "--body", consent, "--out", cOut))
	crec := readRecord(t, cOut)
	if crec.CID().String() != cCID {
		t.Errorf("printed %s, record CID %s", cCID, crec.CID())
	}
	cb, _ := crec.Consent()
	if !slices.Equal(cb.Categories, []string{"face", "iris"}) || !slices.Equal(cb.Purposes, []string{"research", "security"}) || !slices.Equal(cb.Destinations, []string{"BR", "FR"}) {
		t.Errorf("sets not normalised: categories %v purposes %v destinations %v", cb.Categories, cb.Purposes, cb.Destinations)
	}
	if len(cb.Subject) != 32 || cb.Subject[31] != 31 {
		t.Errorf("subject bytes %x", cb.Subject)
	}

	rev := writeFile(t, dir, "rev.json", `{"target": {"/": "`+cCID+`"}, "reason": "withdrawn by the person", "effective_at": 1767225600000}`, 0o644)
	rOut := filepath.Join(dir, "rev.cbor")
	r := c.run("record", "sign", "--kind", "revocation", "--key", keyFile, "--body", rev, "--out", rOut)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rrec := readRecord(t, rOut)
	if firstLine(r.stdout) != rrec.CID().String() {
		t.Errorf("printed %q, record CID %s", r.stdout, rrec.CID())
	}
	if rrec.Issuer() != id {
		t.Errorf("issuer %s, want %s", rrec.Issuer(), id)
	}
	rb, ok := rrec.Revocation()
	if !ok {
		t.Fatalf("kind %s, want revocation", rrec.Kind())
	}
	if rb.Target.Cid != crec.CID() {
		t.Errorf("target %s, want %s", rb.Target.Cid, crec.CID())
	}
	if rb.EffectiveAt != 1767225600000 || rb.Reason != "withdrawn by the person" {
		t.Errorf("body %+v", rb)
	}
	// stderr says what was signed, by whom, where.
	for _, want := range []string{"revocation", id.String(), rOut} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not mention %q: %s", want, r.stderr)
		}
	}
}

func TestRecordSignRefusals(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t)
	k, _ := newKey(t)
	keyFile := writeKey(t, dir, "auth.key", k)
	_, subject := newKey(t)
	out := filepath.Join(dir, "out.cbor")

	lower := writeFile(t, dir, "lower.toml", `
subject      = "`+subject.String()+`"
jurisdiction = "de"
roles        = ["node"]
name         = "n"
valid_from   = 2026-01-01T00:00:00Z
valid_until  = 2027-01-01T00:00:00Z
`, 0o644)
	r := c.fails(1, "record", "sign", "--kind", "accreditation", "--key", keyFile, "--body", lower, "--out", out)
	wantError(t, r, true, "body.jurisdiction", `"de"`, "lower.toml")

	unknownField := writeFile(t, dir, "extra.json", `{"target": {"/": "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}, "reason": "r", "effective_at": 1, "colour": "red"}`, 0o644)
	r = c.fails(1, "record", "sign", "--kind", "revocation", "--key", keyFile, "--body", unknownField, "--out", out)
	// The error says "unknown field" (it does not yet name it: protocol's
	// BodyFromJSON reports "body: unknown field").
	wantError(t, r, true, "extra.json", "unknown field")

	broken := writeFile(t, dir, "broken.toml", "subject = \n", 0o644)
	wantError(t, c.fails(1, "record", "sign", "--kind", "accreditation", "--key", keyFile, "--body", broken, "--out", out), false, "broken.toml")

	r = c.fails(2, "record", "sign", "--kind", "letter", "--key", keyFile, "--body", lower, "--out", out)
	wantError(t, r, true, `"letter"`, "accreditation")

	r = c.fails(1, "record", "sign", "--kind", "accreditation", "--key", filepath.Join(dir, "missing.key"), "--body", lower, "--out", out)
	wantError(t, r, false, "missing.key")

	if _, err := os.Stat(out); err == nil {
		t.Error("a refused record sign wrote its output")
	}
}

func TestRunRefusals(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t)

	// A home that was never set up: the hint says how.
	missing := filepath.Join(dir, "missing")
	wantError(t, c.fails(1, "run", "--home", missing), true, "entente init --home "+missing)
	c.env["ENTENTE_HOME"] = missing
	wantError(t, c.fails(1, "run"), true, "entente init --home "+missing)
	delete(c.env, "ENTENTE_HOME")

	// A node that cannot start (its API port is taken) names the problem
	// and points at the config; run returns rather than hangs.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fed, _ := writeFederation(t, dir)
	home := filepath.Join(dir, "home")
	c.ok("init", "--home", home, "--federation", fed, "--jurisdiction", "DE",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", l.Addr().String())
	r := c.fails(1, "run", "--home", home)
	wantError(t, r, true, "address already in use", "is this node already running?", filepath.Join(home, config.ConfigFile))
	if r.stdout != "" {
		t.Errorf("a node that did not start printed %q", r.stdout)
	}

	// A home whose node runs: its data directory is in use; the hint asks
	// whether it is running, and how to see.
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: cfg.DataDir()})
	if err != nil {
		t.Fatal(err)
	}
	r = c.fails(1, "run", "--home", home)
	st.Close()
	wantError(t, r, true, "another process has this data directory open", "is this node already running?", "entente status --home "+home)

	// A federation file anyone may write is refused before anything
	// starts, with the flag that overrides it in the hint.
	if err := os.Chmod(fed, 0o666); err != nil {
		t.Fatal(err)
	}
	wantError(t, c.fails(1, "run", "--home", home), true, "writable by others", "chmod o-w "+fed, "--allow-writable-config")
	// With the flag it warns and goes on (here to the taken port).
	r = c.fails(1, "run", "--home", home, "--allow-writable-config")
	if !strings.Contains(r.stderr, "--allow-writable-config") || !strings.Contains(r.stderr, "writable by others") {
		t.Errorf("run --allow-writable-config did not warn:\n%s", r.stderr)
	}
	wantError(t, r, true, filepath.Join(home, config.ConfigFile))
}
