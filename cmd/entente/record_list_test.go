package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// TestRecordList lists a node's records through the CLI: every one, in
// the node's order, by filter, page by page, and as JSON.
func TestRecordList(t *testing.T) {
	closeDefaultIdle(t)
	n := startNet(t)
	ctx := t.Context()
	de := n.NodeOf("DE")
	var made []*protocol.Record
	for _, p := range []struct{ j, name string }{{"DE", "Erste"}, {"FR", "Deuxième"}, {"DE", "Dritte"}, {"FR", "Quatrième"}} {
		party, err := n.NewParty(ctx, p.j, p.name, protocol.RoleController)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, party.Accreditation)
	}
	for _, r := range made {
		if err := de.Services().Ingest.WaitRecord(ctx, r.CID()); err != nil {
			t.Fatal(err)
		}
	}
	c := newCLI(t)
	c.env["ENTENTE_API_TOKEN"] = de.Token
	api := de.APIAddr()

	// Everything, one record a line, in the node's acceptance order.
	held, _, err := de.Store().List(store.Query{Limit: store.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	lines := listLines(t, c.ok("record", "list", "--api", api))
	if len(lines) != len(held) {
		t.Fatalf("record list printed %d lines, the node holds %d records", len(lines), len(held))
	}
	line := regexp.MustCompile(`^(\S+)  (\S+) +(\S+)  (\S+)(?:  subject (\S+) (\S+) (\S+))?$`)
	accreditations := 0
	for i, e := range held {
		m := line.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d is not CID, kind, issuer, time: %q", i, lines[i])
		}
		if m[1] != e.Record.CID().String() || m[2] != string(e.Record.Kind()) || m[3] != e.Record.Issuer().String() {
			t.Errorf("line %d is %q, want record %s (%s by %s)", i, lines[i], e.Record.CID(), e.Record.Kind(), e.Record.Issuer())
		}
		// An accreditation's line says whom it accredits, where, as what.
		a, ok := e.Record.Accreditation()
		switch {
		case ok:
			accreditations++
			if m[5] != a.Subject || m[6] != a.Jurisdiction || m[7] != string(a.Roles[0]) && !strings.HasPrefix(m[7], string(a.Roles[0])+",") {
				t.Errorf("line %d is %q, want subject %s %s %v", i, lines[i], a.Subject, a.Jurisdiction, a.Roles)
			}
		case m[5] != "":
			t.Errorf("line %d names a subject, but is no accreditation: %q", i, lines[i])
		}
	}
	if accreditations == 0 {
		t.Error("the listing had no accreditation to show a subject for")
	}

	// Filters.
	frAuthority := n.Federation.Authorities()["FR"]
	for _, tc := range []struct {
		args []string
		want []*protocol.Record
	}{
		{[]string{"--jurisdiction", "FR", "--kind", "accreditation"}, []*protocol.Record{made[1], made[3]}},
		{[]string{"--issuer", frAuthority.String()}, []*protocol.Record{made[1], made[3]}},
		{[]string{"--kind", "consent"}, nil},
	} {
		r := c.run(append([]string{"record", "list", "--api", api}, tc.args...)...)
		if r.code != 0 {
			t.Fatalf("record list %v: exit %d: %s", tc.args, r.code, r.stderr)
		}
		// In the node's acceptance order, which for records gossiped from
		// another node need not be the order they were made in.
		var want []string
		for _, e := range held {
			if slices.ContainsFunc(tc.want, func(r *protocol.Record) bool { return r.CID().Equals(e.Record.CID()) }) {
				want = append(want, e.Record.CID().String())
			}
		}
		if got := firstWords(listLines(t, r.stdout)); !slices.Equal(got, want) {
			t.Errorf("record list %v: %v, want %v", tc.args, got, want)
		}
		if len(tc.want) == 0 && !strings.Contains(r.stderr, "no records") {
			t.Errorf("record list %v: an empty listing does not say so: %q", tc.args, r.stderr)
		}
	}

	// Pages: --limit stops and names the --after that continues.
	r := c.run("record", "list", "--api", api, "--limit", "2")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	first := firstWords(listLines(t, r.stdout))
	cursor := regexp.MustCompile(`continue with --after (\d+)\n`).FindStringSubmatch(r.stderr)
	if len(first) != 2 || cursor == nil {
		t.Fatalf("record list --limit 2: %d records, stderr %q", len(first), r.stderr)
	}
	rest := firstWords(listLines(t, c.ok("record", "list", "--api", api, "--after", cursor[1])))
	if all := append(first, rest...); !slices.Equal(all, firstWords(lines)) {
		t.Errorf("the two pages give %v, the whole listing %v", all, firstWords(lines))
	}

	// JSON: {cid, record}, one a line, the record's DAG-JSON view.
	for i, l := range listLines(t, c.ok("record", "list", "--api", api, "--json", "--issuer", frAuthority.String())) {
		var v struct {
			CID    string          `json:"cid"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, l)
		}
		raw, err := protocol.JSONToCBOR(v.Record)
		if err != nil {
			t.Fatal(err)
		}
		rec, perr := protocol.Decode(raw)
		if perr != nil || rec.CID().String() != v.CID || v.CID != made[1].CID().String() && v.CID != made[3].CID().String() {
			t.Errorf("line %d: %s (%v)", i, l, perr)
		}
	}

	// Mistakes in the command line.
	for _, tc := range []struct{ args []string }{
		{[]string{"--kind", "letter"}}, {[]string{"--issuer", "someone"}}, {[]string{"--jurisdiction", "de"}},
		{[]string{"--limit", "-3"}}, {[]string{"--after", "soon"}}, {[]string{"extra"}},
	} {
		wantUsageError(t, c.fails(2, append([]string{"record", "list", "--api", api}, tc.args...)...), "", "entente record list --help")
	}
}

func listLines(t *testing.T, out string) []string {
	t.Helper()
	out = strings.TrimSuffix(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

func firstWords(lines []string) []string {
	var out []string
	for _, l := range lines {
		w, _, _ := strings.Cut(l, " ")
		out = append(out, w)
	}
	return out
}

// TestKeyShow prints a key file's peer ID and public key, and refuses a
// key file others may read, as the node does.
func TestKeyShow(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t)
	file := filepath.Join(dir, "k.key")
	id := firstLine(c.ok("key", "new", "--out", file))
	k, err := config.LoadKey(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := k.GetPublic().Raw()
	pub := base64.StdEncoding.EncodeToString(raw)
	want := "peer id     " + id + "\npublic key  ed25519 " + pub + "\n"
	for _, args := range [][]string{{"--key", file}, {file}} {
		if out := c.ok(append([]string{"key", "show"}, args...)...); out != want {
			t.Errorf("key show %v printed\n%s\nwant\n%s", args, out, want)
		}
	}
	var j struct{ PeerID, Type, PublicKey string }
	if err := json.Unmarshal([]byte(c.ok("key", "show", "--key", file, "--json")), &struct {
		PeerID    *string `json:"peer_id"`
		Type      *string `json:"type"`
		PublicKey *string `json:"public_key"`
	}{&j.PeerID, &j.Type, &j.PublicKey}); err != nil {
		t.Fatal(err)
	}
	if got, err := peer.Decode(j.PeerID); err != nil || got.String() != id || j.Type != "ed25519" || j.PublicKey != pub {
		t.Errorf("key show --json: %+v", j)
	}

	// Readable by others: refused, with the fix in the hint.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.fails(1, "key", "show", "--key", file)
	wantError(t, r, true, file, "too open", "chmod 600 "+file)
	if r.stdout != "" {
		t.Errorf("a refused key show printed %q", r.stdout)
	}
	wantError(t, c.fails(1, "key", "show", "--key", filepath.Join(dir, "none.key")), false, "none.key")
	wantUsageError(t, c.fails(2, "key", "show"), "entente key show FILE", "entente key show --help")
	wantUsageError(t, c.fails(2, "key", "show", file, file), "unexpected argument", "entente key show --help")
	wantUsageError(t, c.fails(2, "key", "show", "--key", file, file), "unexpected argument", "entente key show --help")
}
