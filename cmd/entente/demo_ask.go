package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Files demo --serve keeps in its directory for the transfer it invites
// the user to ask about: the request, and its sender's API token; and,
// to act as two of the demo's parties, their keys and tokens on the DE
// node: Nordlicht (a DE controller) and the DE desk (a DE regulator).
const (
	askRequestFile = "verify.json"
	askTokenFile   = "nordlicht.token"
	askKeyFile     = "nordlicht.key"
	deskKeyFile    = "de-regulator.key"
	deskTokenFile  = "de-regulator.token"
)

// leaveLiveConsent has a second person consent, asks the nodes about a
// transfer under it, and keeps the request: the consent is never
// withdrawn, so the same question still gets allow from the federation
// demo --serve leaves running.
func (d *demo) leaveLiveConsent(wctx context.Context) error {
	nord, rio := d.parties["nordlicht"], d.parties["riovision"]
	d.title("Another person consents, and nobody withdraws it: a consent left live to ask about")
	consent := &protocol.Consent{
		Subject: pseudonym("nordlicht-secret", "person-4712"), Jurisdiction: "DE", Categories: []string{"face"},
		Purposes: []string{"research"}, MaxTier: 1, Destinations: []string{"BR", "FR"}, RetentionDays: 90,
		ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "in-app explicit opt-in, one screen per tier",
	}
	rec, err := testnet.Sign(nord.Key, consent)
	if err != nil {
		return err
	}
	if err := d.spread(wctx, rec, d.net.NodeOf("DE"), "Nordlicht signs consent: face data, research, tier 1, to BR and FR, 90 days", false); err != nil {
		return err
	}
	d.ask = protocol.TransferRequest{
		Consent: protocol.LinkTo(rec.CID()), From: "DE", To: "BR", Sender: nord.ID.String(), Recipient: rio.ID.String(),
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 60,
	}
	v, err := d.verify(wctx, "Nordlicht → Rio Vision (BR), research, tier 1, 60 days", d.ask, "DE", "BR")
	if err != nil {
		return err
	}
	if !v.Decision.Allowed() {
		return fmt.Errorf("demo: the transfer under the live consent is denied")
	}
	return nil
}

// keepAsk writes the request and its sender's token to dir, for printAsk
// now and when the federation is resumed.
func (d *demo) keepAsk(dir string) error {
	req, err := d.ask.JSON()
	if err != nil {
		return err
	}
	if err := config.WriteFileAtomic(filepath.Join(dir, askRequestFile), append(req, '\n'), 0o644); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		key  crypto.PrivKey
	}{{askKeyFile, d.parties["nordlicht"].Key}, {deskKeyFile, d.parties["de-regulator"].Key}} {
		if err := config.WriteKey(filepath.Join(dir, f.name), f.key); err != nil {
			return err
		}
	}
	if err := config.WriteTokenFile(filepath.Join(dir, deskTokenFile), d.deskToken); err != nil {
		return err
	}
	return config.WriteTokenFile(filepath.Join(dir, askTokenFile), d.askToken)
}

// printParties says which of the demo's parties the user may act as, with
// the files demo --serve kept, and a command to start with.
func (d *demo) printParties(dir string) {
	de := d.net.NodeOf("DE")
	d.say("Act as two of its parties, with their keys and their tokens on the DE node (docs/operating.md, \"Access\"):")
	d.say("    Nordlicht, a DE controller     key %s, token %s", filepath.Join(dir, askKeyFile), filepath.Join(dir, askTokenFile))
	d.say("    the DE desk, a DE regulator    key %s, token %s", filepath.Join(dir, deskKeyFile), filepath.Join(dir, deskTokenFile))
	d.say("    entente incident list --api %s --token-file %s", de.APIAddr(), shellQuote(filepath.Join(dir, deskTokenFile)))
}

// resume starts again the federation an earlier demo --serve kept in dir.
func (d *demo) resume(ctx context.Context, dir string) error {
	d.say("entente demo: resuming the federation kept in %s", dir)
	raw, err := os.ReadFile(filepath.Join(dir, askRequestFile))
	if err != nil {
		return withHint(err, "this directory was not made by 'entente demo --serve'; give --dir a new or empty directory")
	}
	req, err := protocol.ParseTransferRequestJSON(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, askRequestFile), err)
	}
	d.ask = *req
	t0 := time.Now()
	if d.net, err = testnet.Reopen(testnet.Options{Dir: dir, API: true}); err != nil {
		return withHint(err, "another program may hold the ports its federation file names; stop it, or start afresh with a new --dir")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.net.WaitConnected(ctx); err != nil {
		d.net.Close()
		return err
	}
	for _, m := range d.net.Nodes {
		d.say("    %s node %s: %d records in its log", m.Jurisdiction(), m.ID(), m.Store().Len())
	}
	d.say("    the three nodes are up again and meshed, in %s", time.Since(t0).Round(time.Millisecond))
	return nil
}

// printAsk prints the commands that ask the DE node about the kept
// transfer, as its sender: entente verify, and the same with curl.
func (d *demo) printAsk(dir string) error {
	de := d.net.NodeOf("DE")
	tokenFile := filepath.Join(dir, askTokenFile)
	body, err := d.ask.JSON()
	if err != nil {
		return err
	}
	r := d.ask
	args := []string{"entente", "verify", "--api", de.APIAddr(), "--token-file", tokenFile,
		"--consent", r.Consent.String(), "--from", r.From, "--to", r.To, "--sender", r.Sender, "--recipient", r.Recipient,
		"--purpose", r.Purpose}
	for _, c := range r.Categories {
		args = append(args, "--category", c)
	}
	args = append(args, "--tier", strconv.FormatInt(r.Tier, 10), "--retention-days", strconv.FormatInt(r.RetentionDays, 10))
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	d.say("Ask the DE node yourself whether Nordlicht may send the live consent's data to Rio Vision (allow), with Nordlicht's token:")
	d.say("    %s", strings.Join(args, " "))
	d.say("    curl -s -H \"Authorization: Bearer $(cat %s)\" -H 'Content-Type: application/json' -d %s http://%s/v1/transfers/verify",
		shellQuote(tokenFile), shellQuote(string(body)), de.APIAddr())
	d.say("    (without a built binary: go run ./cmd/entente verify ...; change --purpose or --to to see a deny)")
	return nil
}

// shellSafe are the words a POSIX shell reads as they are.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell, when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
