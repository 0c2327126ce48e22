package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
	"github.com/entente-net/entente/testnet"
)

func init() {
	register(&command{
		name: "demo",
		summary: "build a whole federation on this machine and narrate what happens in it\n\n" +
			"Three jurisdictions (DE, FR, BR) with their authorities, one founding node each,\n" +
			"accredited platforms and a regulator, rule sets, a consent and its amendment, an\n" +
			"incident and a revocation; and records the nodes refuse. With --serve the federation\n" +
			"keeps running, and its federation file and authority keys stay in --dir.",
		usage: "demo [--serve [--every DURATION]] [--dir DIR]",
		run:   runDemo,
	})
}

func runDemo(env *cliEnv, args []string) error {
	c := findCommand("demo")
	flags := newFlags(env, c)
	serve := flags.Bool("serve", false, "keep the federation running, publishing a record now and then, until interrupted")
	dir := flags.String("dir", "", "directory for the federation file, keys and node data (default: a new temporary one; with --serve it is kept)")
	every := flags.Duration("every", 15*time.Second, "with --serve: how often an authority publishes a new record")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *dir == "" && *serve {
		if *dir, err = os.MkdirTemp("", "entente-demo-*"); err != nil {
			return err
		}
	}
	d := &demo{w: env.stdout, start: time.Now()}
	ctx := env.ctx
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			return err
		}
		if testnet.Kept(*dir) {
			if !*serve {
				return withHint(fmt.Errorf("%s holds a demo federation", *dir),
					"resume it with 'entente demo --serve --dir "+*dir+"', or give --dir a new or empty directory")
			}
			if err := d.resume(ctx, *dir); err != nil {
				return err
			}
			return d.serveOrClose(ctx, *dir, *every)
		}
		if entries, _ := os.ReadDir(*dir); len(entries) > 0 {
			return withHint(fmt.Errorf("%s is not empty", *dir), "give --dir a new or empty directory")
		}
	}
	if err := d.run(ctx, *dir, *serve); err != nil {
		if d.net != nil {
			d.net.Close()
		}
		return err
	}
	if !*serve {
		d.say("\nThe demo is over: %d records signed in 3 jurisdictions and spread between them in %s. Nodes stopped.", d.published, time.Since(d.start).Round(time.Millisecond))
		d.say("Run 'entente demo --serve' to keep the federation running: it prints an 'entente verify' command to ask it yourself.")
		return d.net.Close()
	}
	if err := d.keepAsk(*dir); err != nil {
		d.net.Close()
		return err
	}
	return d.serveOrClose(ctx, *dir, *every)
}

// demo narrates a federation's life.
type demo struct {
	w         io.Writer
	net       *testnet.Net
	start     time.Time
	step      int
	published int
	parties   map[string]*testnet.Party
	// audited is the allowed resale, for the auditor's step.
	audited struct {
		m       *testnet.Member
		receipt cid.Cid
		item    int
	}
	// What the acts pass on: the consent as first given, its amendment,
	// the open incident and the transfer the nodes allow.
	consent  *protocol.Consent
	amended  *protocol.Record
	incident *protocol.Incident
	breach   *protocol.Record // its latest notice
	// The DE desk's incident stream.
	events     chan streamEvent
	stopFollow context.CancelFunc
	allowed    protocol.TransferRequest
	// ask is a transfer of a consent left live, for the user to ask
	// about; askToken is the sender's token on the DE node.
	ask      protocol.TransferRequest
	askToken string
	// deskToken is the DE desk's (a regulator's) token on the DE node.
	deskToken string
	// The resale chain: the tier-1 and tier-2 decisions, and the tier-2
	// request.
	tier1, tier2 protocol.DecisionRef
	resale       protocol.TransferRequest
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.w, format+"\n", args...) }

func (d *demo) title(format string, args ...any) {
	d.step++
	d.say("\n[%d] %s", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context, dir string, serve bool) error {
	d.say("entente demo: a federation of data-protection authorities, on this machine")
	if err := d.startFederation(ctx, dir, serve); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, act := range []func(context.Context) error{
		d.accredit, d.publishRules, d.giveConsent, d.reportBreach, d.askTransfers, d.resell,
		d.withdrawConsent, d.fileRedNotice, d.resolveBreach,
		func(context.Context) error {
			d.title("An auditor re-checks a receipt offline, from its bundle and the federation file alone")
			return d.audit()
		},
		func(ctx context.Context) error {
			d.title("Records the nodes refuse, and why")
			return d.refusals(ctx, d.parties["nordlicht"].Key, d.consent)
		},
		d.leaveLiveConsent,
	} {
		if err := act(ctx); err != nil {
			return err
		}
	}
	d.summary()
	if d.stopFollow != nil {
		d.stopFollow()
	}
	return nil
}

// startFederation starts the three nodes and waits for their mesh.
func (d *demo) startFederation(ctx context.Context, dir string, serve bool) error {
	// With --serve the keys are kept in dir, so that a second run resumes.
	opts := testnet.Options{Name: "demo-federation", Jurisdictions: []string{"DE", "FR", "BR"}, Dir: dir, API: true, QUIC: false, Keep: serve}
	t0 := time.Now()
	net, err := testnet.Start(opts)
	if err != nil {
		return err
	}
	d.net = net
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := net.WaitConnected(wctx); err != nil {
		return err
	}
	d.title("The federation %q: three jurisdictions, each an authority key and a founding node", net.Federation.Name)
	for _, j := range net.Federation.Jurisdictions {
		m := net.NodeOf(j.Code)
		d.say("    %s %-8s authority %s", j.Code, j.Name, j.Authority)
		d.say("                node      %s", m.Addrs()[0]) // it ends in the node's peer ID
	}
	d.say("    the nodes admit only each other (and keys their authorities accredit as nodes); mesh formed in %s", time.Since(t0).Round(time.Millisecond))
	return nil
}

// accredit has the authorities accredit the platforms and a regulator.
func (d *demo) accredit(wctx context.Context) error {
	net := d.net
	d.title("Authorities accredit their platforms and regulators (each signs with its own key)")
	d.parties = map[string]*testnet.Party{}
	for _, p := range []struct {
		key, j, name string
		roles        []protocol.Role
	}{
		{"nordlicht", "DE", "Nordlicht Biometrik GmbH", []protocol.Role{protocol.RoleController}},
		{"lumiere", "FR", "Lumière Analytics SAS", []protocol.Role{protocol.RoleController}},
		{"riovision", "BR", "Rio Vision Ltda.", []protocol.Role{protocol.RoleController}},
		{"sudeste", "BR", "Sudeste Dados S.A.", []protocol.Role{protocol.RoleController}},
		{"mercado", "BR", "Mercado Visão Ltda.", []protocol.Role{protocol.RoleController}},
		{"atelier", "FR", "Atelier Visages SAS", []protocol.Role{protocol.RoleController}},
		{"fr-regulator", "FR", "FR incident desk", []protocol.Role{protocol.RoleRegulator}},
		{"de-regulator", "DE", "DE data-protection desk", []protocol.Role{protocol.RoleRegulator}},
	} {
		party, err := net.NewParty(wctx, p.j, p.name, p.roles...)
		if err != nil {
			return err
		}
		d.parties[p.key] = party
		if err := d.spread(wctx, party.Accreditation, net.NodeOf(p.j), fmt.Sprintf("%s authority accredits %q as %s", p.j, p.name, joinRoles(p.roles, "+")), true); err != nil {
			return err
		}
	}

	return nil
}

// publishRules has each authority publish its rule set.
func (d *demo) publishRules(wctx context.Context) error {
	net := d.net
	d.title("Each jurisdiction publishes its minimum standards (rule sets for export and import)")
	for _, rs := range demoRulesets() {
		rec, err := testnet.Sign(net.Authorities[rs.Jurisdiction], rs)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%s authority publishes rule set v%d: export to %s up to tier %d, blocks on %s incidents",
			rs.Jurisdiction, rs.Version, strings.Join(rs.Export.Destinations, ","), rs.Export.MaxTier, rs.Export.BlockOnIncident)
		if err := d.spread(wctx, rec, net.NodeOf(rs.Jurisdiction), desc, false); err != nil {
			return err
		}
	}

	return nil
}

// giveConsent has a person consent, then amend the consent.
func (d *demo) giveConsent(wctx context.Context) error {
	net := d.net
	d.title("A person gives Nordlicht (DE) explicit consent for one resale tier")
	nord := d.parties["nordlicht"]
	subject := pseudonym("nordlicht-secret", "person-4711")
	d.say("    the person is named only by a keyed hash the platform keeps: %x…", subject[:8])
	consent := &protocol.Consent{
		Subject: subject, Jurisdiction: "DE", Categories: []string{"face"}, Purposes: []string{"research"},
		MaxTier: 1, Destinations: []string{"FR"}, RetentionDays: 90,
		ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "in-app explicit opt-in, one screen per tier",
	}
	c1, err := testnet.Sign(nord.Key, consent)
	if err != nil {
		return err
	}
	if err := d.spread(wctx, c1, net.NodeOf("DE"), "Nordlicht signs consent: face data, research only, tier 1, to FR, 90 days", false); err != nil {
		return err
	}

	d.title("The person amends the consent: Brazil and the US too, security research, and resale up to tier 3")
	amended := *consent
	amended.Destinations = []string{"BR", "FR", "US"}
	amended.Purposes = []string{"research", "security"}
	amended.MaxTier = 3
	amended.Supersedes = protocol.LinkPtr(c1.CID())
	c2, err := testnet.Sign(nord.Key, &amended)
	if err != nil {
		return err
	}
	if err := d.spread(wctx, c2, net.NodeOf("DE"), "Nordlicht signs the amendment, superseding "+c1.CID().String(), false); err != nil {
		return err
	}

	d.consent, d.amended = consent, c2
	return nil
}

// reportBreach has the FR regulator open an incident and follow it up.
func (d *demo) reportBreach(wctx context.Context) error {
	net := d.net
	d.title("A breach at Lumière (FR): the FR regulator tells every authority at once")
	reg, lum := d.parties["fr-regulator"], d.parties["lumiere"]
	if err := d.followIncidents(wctx); err != nil {
		return err
	}
	inc := &protocol.Incident{
		Ref: "FR-2026-0042", Jurisdiction: "FR", Severity: protocol.SeverityHigh, Status: protocol.StatusOpen,
		TLP: protocol.TLPAmber, Affected: []string{lum.ID.String()}, Categories: []string{"breach"},
		DetectedAt: time.Now().Add(-2 * time.Hour).UnixMilli(), Summary: "Face templates exposed by a misconfigured storage bucket.",
	}
	i1, err := testnet.Sign(reg.Key, inc)
	if err != nil {
		return err
	}
	if err := d.spread(wctx, i1, net.NodeOf("FR"), "FR regulator opens incident FR-2026-0042 (high, TLP:AMBER) naming Lumière", false); err != nil {
		return err
	}
	if err := d.streamed(wctx, i1); err != nil {
		return err
	}
	contained := *inc
	contained.Status = protocol.StatusContained
	contained.Summary = "Bucket closed; affected people are being notified."
	contained.Follows = protocol.LinkPtr(i1.CID())
	i2, err := testnet.Sign(reg.Key, &contained)
	if err != nil {
		return err
	}
	if err := d.spread(wctx, i2, net.NodeOf("FR"), "FR regulator follows up: contained", false); err != nil {
		return err
	}
	if err := d.streamed(wctx, i2); err != nil {
		return err
	}
	d.breach = i2

	d.incident = inc
	return nil
}

// askTransfers has platforms ask for transfers the nodes allow and deny.
func (d *demo) askTransfers(wctx context.Context) error {
	lum, c2 := d.parties["lumiere"], d.amended
	d.title("Platforms ask their nodes whether transfers may go ahead")
	rio := d.parties["riovision"]
	base := protocol.TransferRequest{
		Consent: protocol.LinkTo(c2.CID()), From: "DE", To: "BR", Sender: d.parties["nordlicht"].ID.String(), Recipient: rio.ID.String(),
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 60,
	}
	allowed := base
	v, err := d.verify(wctx, "Nordlicht → Rio Vision (BR), research, tier 1, 60 days", allowed, "DE", "BR")
	if err != nil {
		return err
	}
	d.tier1 = protocol.DecisionRef{Receipt: protocol.LinkTo(v.Receipt.CID()), Item: int64(v.Item)}
	marketing := base
	marketing.Purpose = "marketing"
	tier2 := base
	tier2.Tier = 2
	us := base
	us.To = "US"
	toLumiere := base
	toLumiere.To, toLumiere.Recipient = "FR", lum.ID.String()
	for _, c := range []struct {
		what string
		req  protocol.TransferRequest
	}{
		{"the same, for marketing", marketing},
		{"the same, as a tier-2 resale that names no parent decision", tier2},
		{"to the US, which DE's export rules do not name", us},
		{"to Lumière (FR), under the open breach", toLumiere},
	} {
		if _, err := d.verify(wctx, c.what, c.req, "DE"); err != nil {
			return err
		}
	}

	d.allowed = allowed
	return nil
}

// resell follows the data from tier to tier: each resale names the
// decision through which its seller received the data, and stays within
// it; the node of the resale holds the parent by delivery (or fetches the
// lineage it lacks from members).
func (d *demo) resell(wctx context.Context) error {
	rio, sudeste, mercado := d.parties["riovision"], d.parties["sudeste"], d.parties["mercado"]
	br := d.net.NodeOf("BR")
	d.title("The data is resold from tier to tier; each resale names the decision it comes from")
	tier2 := protocol.TransferRequest{
		Consent: protocol.LinkTo(d.amended.CID()), From: "BR", To: "BR", Sender: rio.ID.String(), Recipient: sudeste.ID.String(),
		Purpose: "research", Categories: []string{"face"}, Tier: 2, RetentionDays: 45, Parent: &d.tier1,
	}
	// The tier-1 decision concerns BR: the DE node delivers its receipt
	// and block to the BR node, which registers it.
	if err := d.net.WaitDelivered(wctx, d.net.NodeOf("DE"), d.tier1.Receipt.Cid, "BR"); err != nil {
		return err
	}
	d.say("    the DE node delivered its receipt of the tier-1 decision %s to the BR node, which the transfer concerns (BR signed the acknowledgement)", d.tier1.Receipt.String())
	v2, err := d.verify(wctx, "Rio Vision → Sudeste Dados (BR), research, tier 2, 45 days, parent: the tier-1 decision", tier2, "BR")
	if err != nil {
		return err
	}
	if !v2.Decision.Allowed() {
		return fmt.Errorf("demo: the tier-2 resale is denied")
	}
	d.tier2 = protocol.DecisionRef{Receipt: protocol.LinkTo(v2.Receipt.CID()), Item: int64(v2.Item)}
	d.audited.m, d.audited.receipt, d.audited.item = br, v2.Receipt.CID(), v2.Item

	tier3 := tier2
	tier3.Sender, tier3.Recipient, tier3.Tier, tier3.RetentionDays, tier3.Parent = sudeste.ID.String(), mercado.ID.String(), 3, 30, &d.tier2
	// The third jurisdiction: Sudeste resells to Atelier Visages (FR); the
	// BR node delivers its receipt to the FR node, which the decision
	// concerns.
	toFR := tier3
	toFR.To, toFR.Recipient = "FR", d.parties["atelier"].ID.String()
	v3, err := d.verify(wctx, "Sudeste Dados → Atelier Visages (FR), research, tier 3, 30 days, parent: the tier-2 decision", toFR, "BR")
	if err != nil {
		return err
	}
	if !v3.Decision.Allowed() {
		return fmt.Errorf("demo: the tier-3 resale to FR is denied")
	}
	if err := d.net.WaitDelivered(wctx, br, v3.Receipt.CID(), "FR"); err != nil {
		return err
	}
	d.say("    the BR node delivered that receipt to the FR node: the data has crossed three jurisdictions, each step tied to the one before")
	wider := tier3
	wider.Purpose = "security" // the consent allows it, the parent decision did not
	if _, err := d.verify(wctx, "Sudeste Dados → Mercado Visão (BR), tier 3, for security research: wider than its parent's purpose", wider, "BR"); err != nil {
		return err
	}
	denied := tier2
	denied.RetentionDays = 400 // over the consent's 90 days
	vd, err := d.verify(wctx, "Rio Vision → Sudeste Dados, tier 2, kept 400 days", denied, "BR")
	if err != nil {
		return err
	}
	underDenied := tier3
	underDenied.Parent = &protocol.DecisionRef{Receipt: protocol.LinkTo(vd.Receipt.CID()), Item: int64(vd.Item)}
	if _, err := d.verify(wctx, "Sudeste Dados → Mercado Visão, tier 3, naming that denied decision as its parent", underDenied, "BR"); err != nil {
		return err
	}
	d.resale = tier2
	return nil
}

// withdrawConsent revokes the consent and asks the allowed transfer again.
func (d *demo) withdrawConsent(wctx context.Context) error {
	net, nord, c2, allowed := d.net, d.parties["nordlicht"], d.amended, d.allowed
	d.title("The person withdraws consent; the revocation reaches every jurisdiction, and the platforms that received the data are told")
	rev, err := testnet.Sign(nord.Key, &protocol.Revocation{Target: protocol.LinkTo(c2.CID()), Reason: "withdrawn by the person in the app", EffectiveAt: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	if err := d.spread(wctx, rev, net.NodeOf("DE"), "Nordlicht revokes consent "+c2.CID().String(), false); err != nil {
		return err
	}
	// The BR node tells the BR platforms that received data under the
	// consent, each on its notices stream.
	for _, p := range []struct{ party, j string }{{"riovision", "BR"}, {"sudeste", "BR"}, {"atelier", "FR"}} {
		if err := d.noticeOf(wctx, p.party, p.j); err != nil {
			return err
		}
	}

	if _, err := d.verify(wctx, "Nordlicht → Rio Vision again, after the withdrawal", allowed, "DE", "BR"); err != nil {
		return err
	}
	if _, err := d.verify(wctx, "Rio Vision → Sudeste Dados again: the resale falls with the consent", d.resale, "BR"); err != nil {
		return err
	}

	return nil
}

// fileRedNotice files a TLP:RED notice, which goes by direct delivery to
// its audience (FR, its jurisdiction, and DE, its recipient) only.
func (d *demo) fileRedNotice(wctx context.Context) error {
	net, reg, inc := d.net, d.parties["fr-regulator"], d.incident
	d.title("A TLP:RED notice goes to its audience only, by direct delivery, never by gossip")
	red := *inc
	red.Ref, red.TLP, red.Recipients, red.Follows = "FR-2026-0043", protocol.TLPRed, []string{"DE"}, nil
	red.Summary = "Suspected insider; details for DE only."
	redRec, err := testnet.Sign(reg.Key, &red)
	if err != nil {
		return err
	}
	if _, err := net.NodeOf("FR").Services().Ingest.SubmitRecord(wctx, redRec); err != nil {
		return err
	}
	d.published++
	if err := net.WaitDelivered(wctx, net.NodeOf("FR"), redRec.CID(), "DE"); err != nil {
		return err
	}
	d.say("    FR regulator files %s (TLP:RED, for DE): held by %s", redRec.CID().String(), d.holders(redRec))
	d.say("    the FR node pushed it to the DE node, which acknowledged it with a signature; BR never sees it")
	if err := d.streamed(wctx, redRec); err != nil {
		return err
	}
	// A platform of DE asks the DE node for it with its own token: to
	// it, the notice does not exist.
	tok, err := net.NodeOf("DE").Grant(wctx, "nordlicht", protocol.RoleController, d.parties["nordlicht"].ID)
	if err != nil {
		return err
	}
	d.askToken = tok
	cl := &apiClient{base: "http://" + net.NodeOf("DE").APIAddr(), token: tok, http: &http.Client{Timeout: 10 * time.Second}}
	_, _, err = cl.do(http.MethodGet, "/v1/incidents/"+redRec.CID().String(), "", "", nil)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		return fmt.Errorf("the platform's token read the TLP:RED notice: %v", err)
	}
	d.say("    Nordlicht (a DE platform) asks the DE node for it with its own token: %d %s, as for a notice the node does not hold", ae.Status, ae.Code)

	return nil
}

// noticeOf grants platform p a token on the node of jurisdiction j,
// reads the first event of its notices stream and narrates it.
func (d *demo) noticeOf(ctx context.Context, p, j string) error {
	br, party := d.net.NodeOf(j), d.parties[p]
	tok, err := br.Grant(ctx, p, protocol.RoleController, party.ID)
	if err != nil {
		return err
	}
	got := make(chan string, 1)
	f := &follower{cl: &apiClient{base: "http://" + br.APIAddr(), token: tok}, path: "/v1/notices/stream"}
	f.emit = func(id, event, data string) error {
		var n api.NoticeEvent
		if err := json.Unmarshal([]byte(data), &n); err != nil {
			return err
		}
		var ds []string
		for _, ref := range n.Decisions {
			ds = append(ds, fmt.Sprintf("%s:%d", ref.Receipt, ref.Item))
		}
		got <- fmt.Sprintf("event %s: %s, decisions %s", id, event, strings.Join(ds, ", "))
		return errStopFollowing
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go f.stream(sctx)
	select {
	case line := <-got:
		d.say("      ⇢ %s's notices stream on the %s node, %s: erase what it received under them", party.Name, j, line)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no notice reached %s: %w", party.Name, ctx.Err())
	}
}

// errStopFollowing ends a follower's stream from its emit.
var errStopFollowing = errors.New("stop following")

// resolveBreach has the FR regulator resolve the breach, which the DE
// desk's stream shows.
func (d *demo) resolveBreach(wctx context.Context) error {
	d.title("The FR regulator resolves the breach; the DE desk follows each step on its stream")
	b, _ := d.breach.Incident()
	resolved := *b
	resolved.Status, resolved.Summary, resolved.Follows = protocol.StatusResolved, "People notified; templates deleted; audit closed.", protocol.LinkPtr(d.breach.CID())
	rec, err := testnet.Sign(d.parties["fr-regulator"].Key, &resolved)
	if err != nil {
		return err
	}
	if err := d.spread(wctx, rec, d.net.NodeOf("FR"), "FR regulator follows up: resolved", false); err != nil {
		return err
	}
	if err := d.streamed(wctx, rec); err != nil {
		return err
	}
	d.say("    (entente incident follow --home DIR prints the same stream; it resumes after a dropped connection from its last event)")
	return nil
}

// followIncidents grants the DE desk a token on the DE node and follows
// the node's incident stream with it, as entente incident follow does;
// streamed shows its events.
func (d *demo) followIncidents(ctx context.Context) error {
	de := d.net.NodeOf("DE")
	desk := d.parties["de-regulator"]
	tok, err := de.Grant(ctx, "de-desk", protocol.RoleRegulator, desk.ID)
	if err != nil {
		return err
	}
	d.deskToken = tok
	d.say("    the DE node's operator grants the DE desk a token of its own (entente access grant); the desk follows the DE node's incident stream with it")
	d.events = make(chan streamEvent, 64)
	f := &follower{cl: &apiClient{base: "http://" + de.APIAddr(), token: tok}, path: "/v1/incidents/stream"}
	f.emit = func(id, _, data string) error {
		var e service.Incident
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return err
		}
		d.events <- streamEvent{id, e}
		return nil
	}
	sctx, cancel := context.WithCancel(context.Background())
	d.stopFollow = cancel
	ready := make(chan struct{})
	f.opened = func() { close(ready) }
	go f.stream(sctx)
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// streamEvent is an event of the incident stream: its ID and entry.
type streamEvent struct {
	id string
	e  service.Incident
}

// streamed waits for the DE desk's stream to show notice and narrates
// the event.
func (d *demo) streamed(ctx context.Context, notice *protocol.Record) error {
	for {
		select {
		case ev := <-d.events:
			e := ev.e
			if len(e.Notices) == 0 || e.Notices[len(e.Notices)-1] != notice.CID().String() {
				continue
			}
			d.say("      ⇢ the DE desk's stream, event %s: %s %s, %s, TLP:%s, %d %s", ev.id, e.Ref, e.Status, e.Severity, strings.ToUpper(e.TLP), len(e.Notices), plural(len(e.Notices), "notice", "notices"))
			return nil
		case <-ctx.Done():
			return fmt.Errorf("the DE desk's stream did not show %s: %w", notice.CID(), ctx.Err())
		}
	}
}

// summary shows what every node holds.
func (d *demo) summary() {
	d.title("Every node holds the same records, but for the TLP:RED notice, which BR does not")
	for _, m := range d.net.Nodes {
		counts := m.Store().Counts()
		var parts []string
		for _, k := range protocol.Kinds {
			if counts[k] > 0 && k != protocol.KindReceipt {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
			}
		}
		d.say("    %s node %s: %s", m.Jurisdiction(), m.ID().String(), strings.Join(parts, ", "))
		if n := counts[protocol.KindReceipt]; n > 0 {
			mine, _, err := m.Store().List(store.Query{Kind: protocol.KindReceipt, Issuer: m.ID(), Limit: store.MaxListLimit})
			if err != nil {
				continue
			}
			d.say("      and %d %s in its log: %d it signed, %d delivered to it or fetched (decisions that concern %s, and parents)", n, plural(int(n), "receipt", "receipts"), len(mine), int(n)-len(mine), m.Jurisdiction())
		}
	}
}

// spread submits rec to via and narrates how long it took to reach each
// node. already: the record was submitted by the caller.
func (d *demo) spread(ctx context.Context, rec *protocol.Record, via *testnet.Member, desc string, already bool) error {
	type arrival struct {
		j  string
		at time.Duration
	}
	// The node it is submitted to holds it once Submit returns (durably),
	// which is when the narration takes its time: a goroutine waiting on
	// that node could be woken later than one waiting on a peer.
	start := time.Now()
	if !already {
		if _, err := via.Services().Ingest.SubmitRecord(ctx, rec); err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
	}
	arrivals := []arrival{{via.Jurisdiction(), time.Since(start)}}
	d.published++
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(d.net.Nodes))
	for _, m := range d.net.Running() {
		if m == via {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Services().Ingest.WaitRecord(ctx, rec.CID()); err != nil {
				errs <- fmt.Errorf("%s node: %w", m.Jurisdiction(), err)
				return
			}
			mu.Lock()
			arrivals = append(arrivals, arrival{m.Jurisdiction(), time.Since(start)})
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i].at < arrivals[j].at })
	var parts []string
	for _, a := range arrivals {
		parts = append(parts, fmt.Sprintf("%s +%s", a.j, fmtDur(a.at)))
	}
	d.say("    %s", desc)
	d.say("      %s %s", rec.Kind(), rec.CID())
	d.say("      by %s, submitted to the %s node; held by %s", rec.Issuer(), via.Jurisdiction(), strings.Join(parts, ", "))
	return nil
}

func fmtDur(t time.Duration) string {
	if t < time.Millisecond {
		return fmt.Sprintf("%dµs", t.Microseconds())
	}
	return fmt.Sprintf("%.1fms", float64(t.Microseconds())/1000)
}

// verify asks the nodes of the given jurisdictions to decide req and
// narrates the verdict: every check when it allows, the failing ones when
// it denies, and whether the nodes agree.
func (d *demo) verify(ctx context.Context, what string, req protocol.TransferRequest, on ...string) (*service.Verdict, error) {
	var first *service.Verdict
	var agree []string
	for _, j := range on {
		req.At = 0
		v, err := d.net.NodeOf(j).Services().Verify.Verify(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if first == nil {
			first = v
		} else if diff := first.Decision.Diff(v.Block); diff != "" {
			return nil, fmt.Errorf("%s: the %s node decided differently from the %s node: %s", what, j, on[0], diff)
		}
		agree = append(agree, j)
	}
	dec := first.Decision
	d.say("    %s", what)
	verdict := strings.ToUpper(dec.Verdict)
	d.say("      %s — receipt %s signed by the %s node", verdict, first.Receipt.CID().String(), on[0])
	for _, c := range dec.Checks {
		if !c.OK {
			d.say("      failed %-21s [%s] %s", c.ID, c.Reason, c.Detail)
		}
	}
	if dec.Verdict == protocol.VerdictAllow {
		d.say("      all %d checks pass (consent, issuer, liveness, scope, export and import rules, sender, recipient, lineage, incidents)", len(dec.Checks))
	}
	if len(agree) > 1 {
		d.say("      the %s nodes give the same verdict and checks", strings.Join(agree, " and "))
	}
	return first, nil
}

// audit fetches the bundle of the allowed resale, checks it as entente
// receipt check does, then checks a copy with one byte of its parent
// decision changed.
func (d *demo) audit() error {
	m, c := d.audited.m, d.audited.receipt
	b, err := m.Services().Verify.Bundle(c, d.audited.item)
	if err != nil {
		return err
	}
	car, err := b.MarshalCAR()
	if err != nil {
		return err
	}
	trust := protocol.NewBundleTrust(d.net.Federation.Name, d.net.Federation.Authorities(), d.net.Federation.FoundingNodes())
	rep := protocol.CheckBundleCAR(car, trust)
	var ids []string
	for _, st := range rep.Steps {
		if st.OK {
			ids = append(ids, st.ID)
		}
	}
	if !rep.OK() {
		return fmt.Errorf("demo: the bundle of %s does not hold: %v", c, rep.Err())
	}
	d.say("    the %s node's bundle for receipt %s: %d bytes, %d blocks (CAR v1)", m.Jurisdiction(), c.String(), len(car), len(b.Blocks))
	d.say("    every step holds: %s", strings.Join(ids, ", "))
	d.say("    the decision recomputed from the bundle: %s, the same %d checks", strings.ToUpper(rep.Decision.Verdict), len(rep.Decision.Checks))
	for _, st := range rep.Steps {
		if st.ID == protocol.StepAncestor {
			d.say("    the lineage holds at %s", st.Detail)
		}
	}
	// One byte changed in the decision the resale comes from.
	bad, what := bytes.Clone(car), "one byte"
	at := len(bad) / 2
	if m := rep.Manifest; len(m.Lineage) > 0 {
		at, what = bytes.Index(bad, b.Blocks[3].Data)+len(b.Blocks[3].Data)/2, "one byte of the parent decision"
	}
	bad[at] ^= 0x01
	if failed, ok := protocol.CheckBundleCAR(bad, trust).FirstFailure(); ok {
		d.say("    with %s changed it fails at %s: %s", what, failed.ID, failed.Detail)
	}
	return nil
}

// holders lists the jurisdictions whose node holds rec.
func (d *demo) holders(rec *protocol.Record) string {
	var js []string
	for _, m := range d.net.Running() {
		if ok, _ := m.Store().Has(rec.CID()); ok {
			js = append(js, m.Jurisdiction()+" node")
		}
	}
	if len(js) == 0 {
		return "no node"
	}
	return strings.Join(js, ", ")
}

// refusals shows records a node refuses, with the code it answers.
func (d *demo) refusals(ctx context.Context, platform crypto.PrivKey, consent *protocol.Consent) error {
	stranger, err := config.GenerateKey()
	if err != nil {
		return err
	}
	forged, err := testnet.Sign(stranger, consent)
	if err != nil {
		return err
	}
	tampered, err := testnet.Sign(platform, consent)
	if err != nil {
		return err
	}
	raw := bytes.Clone(tampered.Bytes())
	raw[len(raw)-1] ^= 0x01 // the issued_at's last byte: the signature no longer covers the record
	lower := *consent
	lower.Jurisdiction = "de"
	future, err := protocol.Sign(platform, time.Now().Add(time.Hour).UnixMilli(), consent)
	if err != nil {
		return err
	}
	// Back-dated: a key can make a record look issued before it was
	// revoked; a node takes a new record only when fresh.
	past, err := protocol.Sign(platform, time.Now().Add(-30*time.Minute).UnixMilli(), consent)
	if err != nil {
		return err
	}
	de := d.net.NodeOf("DE")
	for _, c := range []struct {
		what string
		raw  []byte
	}{
		{"a consent signed by a key no authority accredited", forged.Bytes()},
		{"a consent altered after signing (one byte)", raw},
		{"a consent dated an hour in the future", future.Bytes()},
		{"a consent dated 30 minutes ago", past.Bytes()},
		{"three bytes that are not a record", []byte{0xa1, 0x61, 0x76}},
	} {
		_, err := de.Services().Ingest.Submit(ctx, c.raw)
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			return fmt.Errorf("demo: %s was not refused as expected (err=%v)", c.what, err)
		}
		d.say("    %-52s → refused: %s (%s)", c.what, pe.Code, pe.Msg)
	}
	if _, err := protocol.Sign(platform, time.Now().UnixMilli(), &lower); err != nil {
		d.say("    %-52s → cannot even be signed: %v", "a consent with a lower-case jurisdiction", err)
	}
	d.say("    nothing refused was stored or forwarded")
	return nil
}

// joinRoles joins the names of roles with sep.
func joinRoles(roles []protocol.Role, sep string) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, sep)
}

// pseudonym is a platform's keyed hash of a person: the only way a consent
// names them.
func pseudonym(secret, person string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(person))
	return m.Sum(nil)
}

func demoRulesets() []*protocol.Ruleset {
	now := time.Now().Add(-time.Minute).UnixMilli()
	base := func(maxTier, retention int64, block protocol.Severity, prohibited ...string) protocol.Rules {
		if prohibited == nil {
			prohibited = []string{}
		}
		return protocol.Rules{MaxTier: maxTier, ProhibitedPurposes: prohibited, MaxRetentionDays: retention, BlockOnIncident: block, Conditions: []protocol.Condition{}}
	}
	return []*protocol.Ruleset{
		{Jurisdiction: "DE", Version: 1, EffectiveFrom: now,
			Export: protocol.ExportRules{Destinations: []string{"BR", "FR"}, Rules: base(2, 365, protocol.SeverityHigh, "marketing")},
			Import: protocol.ImportRules{Origins: []string{"*"}, Rules: base(2, 365, protocol.SeverityHigh, "marketing")}},
		{Jurisdiction: "FR", Version: 1, EffectiveFrom: now,
			Export: protocol.ExportRules{Destinations: []string{"DE"}, Rules: base(1, 180, protocol.SeverityMedium, "marketing", "profiling")},
			Import: protocol.ImportRules{Origins: []string{"BR", "DE"}, Rules: base(3, 180, protocol.SeverityMedium)}},
		{Jurisdiction: "BR", Version: 1, EffectiveFrom: now,
			Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: base(3, 730, protocol.SeverityCritical)},
			Import: protocol.ImportRules{Origins: []string{"*"}, Rules: base(3, 730, protocol.SeverityCritical)}},
	}
}

// serveOrClose is serve, closing the federation if serve fails.
func (d *demo) serveOrClose(ctx context.Context, dir string, every time.Duration) error {
	err := d.serve(ctx, dir, every)
	if err != nil {
		d.net.Close()
	}
	return err
}

// serve keeps the federation up, prints how to join it, and publishes a
// record every so often so a joining node has something to receive.
func (d *demo) serve(ctx context.Context, dir string, every time.Duration) error {
	net := d.net
	for _, m := range net.Nodes {
		if err := config.WriteFileAtomic(filepath.Join(dir, "node-"+m.Jurisdiction()+".token"), []byte(m.Token+"\n"), 0o600); err != nil {
			return err
		}
	}
	d.say("\nThe federation keeps running (Ctrl-C stops it). Its files are in %s:", dir)
	d.say("    federation file   %s", net.FederationPath)
	for _, j := range net.Federation.Codes() {
		m := net.NodeOf(j)
		d.say("    %s authority key  %s", j, filepath.Join(dir, fmt.Sprintf(testnet.AuthorityKeyFile, j)))
		d.say("    %s node API       http://%s  (token file %s)", j, m.APIAddr(), filepath.Join(dir, "node-"+j+".token"))
	}
	d.say("See README.md, \"Join the demo federation\", to accredit and run a node of your own.")
	if err := d.printAsk(dir); err != nil {
		return err
	}
	d.printParties(dir)
	d.say("An authority publishes a new accreditation every %s; 'entente demo --serve --dir %s' resumes the federation after Ctrl-C.", every, dir)

	sctx, stop := signalContext(ctx)
	defer stop()
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-sctx.Done():
			d.say("stopping the federation")
			return net.Close()
		case <-t.C:
		}
		j := net.Federation.Codes()[i%len(net.Federation.Codes())]
		party, err := net.NewParty(sctx, j, fmt.Sprintf("Platform %d (%s)", i, j), protocol.RoleController)
		if err != nil {
			if sctx.Err() != nil {
				continue
			}
			return err
		}
		if err := d.spread(sctx, party.Accreditation, net.NodeOf(j), fmt.Sprintf("%s authority accredits %q", j, party.Name), true); err != nil && sctx.Err() == nil {
			return err
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
