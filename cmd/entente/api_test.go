package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/protocol"
)

// closeDefaultIdle closes, when the test ends, the keep-alive connections
// of the CLI's client (http.DefaultTransport), so TestMain's leak check does
// not count their goroutines.
func closeDefaultIdle(t *testing.T) {
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
}

// signAccreditation has key sign, through the CLI, a node accreditation of
// subject in jurisdiction j, and returns the record file and its CID.
func signAccreditation(t *testing.T, c *cli, dir, name string, key crypto.PrivKey, j string, subject peer.ID, addrs ...string) (string, string) {
	t.Helper()
	keyFile := filepath.Join(dir, name+".key")
	if _, err := config.LoadKey(keyFile); err != nil {
		keyFile = writeKey(t, dir, name+".key", key)
	}
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	now := time.Now().UTC()
	text := fmt.Sprintf(`subject      = %q
jurisdiction = %q
roles        = ["node"]
name         = %q
valid_from   = %s
valid_until  = %s
`, subject, j, name, now.Add(-time.Hour).Format(time.RFC3339), now.AddDate(1, 0, 0).Format(time.RFC3339))
	if len(addrs) > 0 { // an optional list is left out when empty
		text += "addrs        = [" + strings.Join(quoted, ", ") + "]\n"
	}
	body := writeFile(t, dir, name+".toml", text, 0o644)
	out := filepath.Join(dir, name+".cbor")
	id := firstLine(c.ok("record", "sign", "--kind", "accreditation", "--key", keyFile, "--body", body, "--out", out))
	return out, id
}

func TestRecordSubmitShowStatus(t *testing.T) {
	closeDefaultIdle(t)
	n := startNet(t)
	dir := t.TempDir()
	c := newCLI(t)
	de := n.NodeOf("DE")
	tokenFile := writeFile(t, dir, "de.token", de.Token+"\n", 0o600)
	api := de.APIAddr()

	_, subject := newKey(t)
	recFile, recCID := signAccreditation(t, c, dir, "new-node", n.Authorities["DE"], "DE", subject)

	// Submit: accepted, then already held.
	out := c.ok("record", "submit", recFile, "--api", api, "--token-file", tokenFile)
	if want := recFile + ": accepted " + recCID; firstLine(out) != want {
		t.Errorf("first submit printed %q, want %q", firstLine(out), want)
	}
	if ok, err := de.Store().Has(mustCID(t, recCID)); err != nil || !ok {
		t.Fatalf("the DE node does not hold the submitted record (%v)", err)
	}
	out = c.ok("record", "submit", "--api", "http://"+api+"/", "--token-file", tokenFile, recFile)
	if want := recFile + ": already held " + recCID; firstLine(out) != want {
		t.Errorf("second submit printed %q, want %q", firstLine(out), want)
	}
	// The token may come from ENTENTE_API_TOKEN.
	c.env["ENTENTE_API_TOKEN"] = de.Token
	if out := c.ok("record", "submit", recFile, "--api", api); !strings.Contains(out, "already held") {
		t.Errorf("submit with ENTENTE_API_TOKEN printed %q", out)
	}
	delete(c.env, "ENTENTE_API_TOKEN")
	wantError(t, c.fails(1, "record", "submit", recFile, "--api", api), true, "no API token")

	// The record spreads; every node shows it.
	wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	if err := n.WaitAll(wctx, mustCID(t, recCID)); err != nil {
		t.Fatal(err)
	}

	// A record signed by a key no authority accredited is refused, with
	// its code, and not stored.
	stranger, _ := newKey(t)
	_, other := newKey(t)
	badFile, badCID := signAccreditation(t, c, dir, "stranger", stranger, "DE", other)
	r := c.fails(1, "record", "submit", recFile, badFile, "--api", api, "--token-file", tokenFile)
	if !strings.Contains(r.stdout, badFile+": refused: unauthorized_issuer") {
		t.Errorf("stdout does not show the refusal code:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, recFile+": already held") {
		t.Errorf("a refusal stopped the other files:\n%s", r.stdout)
	}
	wantError(t, r, false, "1 of 2 records refused")
	if ok, _ := de.Store().Has(mustCID(t, badCID)); ok {
		t.Error("the DE node stored a refused record")
	}

	// A wrong token is refused as unauthorized.
	wrong := writeFile(t, dir, "wrong.token", strings.Repeat("0", 64)+"\n", 0o600)
	r = c.fails(1, "record", "submit", recFile, "--api", api, "--token-file", wrong)
	if !strings.Contains(r.stdout, "refused: unauthorized") {
		t.Errorf("a wrong token: stdout %q", r.stdout)
	}

	// Nothing listens: the error says so and hints at the address.
	gone := "127.0.0.1:" + portString(freePort(t))
	r = c.fails(1, "record", "submit", recFile, "--api", gone, "--token-file", tokenFile)
	wantError(t, r, true, "is a node's API listening at http://"+gone, "--api")
	// From a home whose node is not running: the command that starts it.
	home := filepath.Join(dir, "stopped")
	fedFile, _ := writeFederation(t, dir)
	c.ok("init", "--home", home, "--federation", fedFile, "--jurisdiction", "DE", "--api", gone)
	wantError(t, c.fails(1, "status", "--home", home), true, "is the node running?", "entente run --home "+home)

	// record show by CID, from another node than the one it was submitted to.
	// Records are for callers with a token: the public reads clear
	// incidents only, and an accreditation it may not see is not found.
	fr := n.NodeOf("FR")
	r = c.fails(1, "record", "show", recCID, "--api", fr.APIAddr())
	wantError(t, r, false, "not held by this node")
	frToken := filepath.Join(t.TempDir(), "fr.token")
	if err := os.WriteFile(frToken, []byte(fr.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = c.ok("record", "show", recCID, "--api", fr.APIAddr(), "--token-file", frToken)
	for _, want := range []string{
		"accreditation " + recCID,
		"issuer     " + n.Federation.Authorities()["DE"].String(),
		"signature  valid",
		"subject              \"" + subject.String() + "\"",
		`roles                ["node"]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("record show does not show %q:\n%s", want, out)
		}
	}
	// Times are shown readably too.
	if !strings.Contains(out, "valid_from") || !strings.Contains(out, "Z)") {
		t.Errorf("record show does not show valid_from as a time:\n%s", out)
	}

	// record show FILE gives the same view, without any node.
	if fileOut := c.ok("record", "show", recFile); fileOut != out {
		t.Errorf("record show FILE differs from record show CID:\n%s\n---\n%s", fileOut, out)
	}

	// --json is the record's DAG-JSON view: it parses back to the record.
	js := c.ok("record", "show", recCID, "--json", "--api", api, "--token-file", tokenFile)
	var view map[string]any
	if err := json.Unmarshal([]byte(js), &view); err != nil {
		t.Fatalf("record show --json is not JSON: %v\n%s", err, js)
	}
	if view["kind"] != "accreditation" || view["issuer"] != n.Federation.Authorities()["DE"].String() {
		t.Errorf("record show --json: kind %v issuer %v", view["kind"], view["issuer"])
	}
	back, err := protocol.RecordFromJSON([]byte(js))
	if err != nil {
		t.Fatalf("record show --json does not parse back: %v", err)
	}
	if back.CID().String() != recCID {
		t.Errorf("record show --json parses back to %s, want %s", back.CID(), recCID)
	}
	// A DAG-JSON file is shown as well.
	jsonFile := writeFile(t, dir, "rec.json", js, 0o644)
	if jsonOut := c.ok("record", "show", jsonFile); jsonOut != out {
		t.Errorf("record show of the --json file differs:\n%s\n---\n%s", jsonOut, out)
	}

	// A record a node does not hold: 404, exit 1. Not a CID nor a file: hint.
	wantError(t, c.fails(1, "record", "show", badCID, "--api", api), false, "404")
	wantError(t, c.fails(1, "record", "show", "not-a-cid", "--api", api), true, "not-a-cid")
	wantError(t, c.fails(1, "record", "show", badCID), true, "no node to talk to")

	// A file whose signature does not verify is shown, flagged.
	tampered := readRecord(t, recFile).Bytes()
	tampered = append([]byte(nil), tampered...)
	tampered[len(tampered)-1] ^= 1
	tamperedFile := writeFile(t, dir, "tampered.cbor", string(tampered), 0o644)
	if out := c.ok("record", "show", tamperedFile); !strings.Contains(out, "signature  INVALID") {
		t.Errorf("record show of a tampered record:\n%s", out)
	}

	// status, for people and as JSON.
	out = c.ok("status", "--api", api)
	for _, want := range []string{
		"node        " + de.ID().String(),
		"jurisdiction DE",
		n.Federation.Name,
		"peers       2 connected",
		n.NodeOf("FR").ID().String(),
		n.NodeOf("BR").ID().String(),
		"founding node",
		"accreditation  1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	js = c.ok("status", "--api", api, "--json")
	var st node.Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, js)
	}
	if st.PeerID != de.ID().String() || st.Jurisdiction != "DE" || len(st.Peers) != 2 || st.Records["accreditation"] != 1 {
		t.Errorf("status --json: %+v", st)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal([]byte(js), &raw)
	for _, k := range []string{"peer_id", "jurisdiction", "federation", "peers", "records", "log"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status --json has no %q", k)
		}
	}
	wantError(t, c.fails(1, "status"), true, "no node to talk to")

	// A record issued 30 minutes ago is refused as stale; the operator
	// imports it.
	oldFile := filepath.Join(dir, "old.cbor")
	oldCID := firstLine(c.ok("record", "sign", "--kind", "accreditation", "--key", filepath.Join(dir, "new-node.key"),
		"--body", filepath.Join(dir, "new-node.toml"), "--out", oldFile, "--issued-at", time.Now().Add(-30*time.Minute).UTC().Format(time.RFC3339)))
	r = c.fails(1, "record", "submit", oldFile, "--api", api, "--token-file", tokenFile)
	if !strings.Contains(r.stdout, oldFile+": refused: clock_skew") {
		t.Errorf("a stale record: stdout %q", r.stdout)
	}
	if out := c.ok("record", "submit", "--import", oldFile, "--api", api, "--token-file", tokenFile); firstLine(out) != oldFile+": accepted "+oldCID {
		t.Errorf("import printed %q", out)
	}
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := protocol.ParseCID(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return c
}
