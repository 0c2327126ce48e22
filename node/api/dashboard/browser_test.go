package dashboard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/witness"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireChromium, when set (CI sets it), makes a missing browser fail the
// browser test instead of skipping it.
const requireChromium = "ENTENTE_REQUIRE_CHROMIUM"

// screenshots, when set to a directory, has the browser test save a PNG of
// each view there, to look at the layout.
const screenshots = "ENTENTE_DASHBOARD_SCREENSHOTS"

// chromium is the path of the browser: Debian's /usr/bin/chromium, or a
// chromium on PATH.
func chromium(t *testing.T) string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv(requireChromium) != "" {
		t.Fatalf("%s is set but chromium is not installed (apt-get install chromium): the dashboard's browser test must run", requireChromium)
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): skipping the dashboard's browser test; CI runs it")
	return ""
}

// browser is one headless Chromium tab on the dashboard, which records
// every console error, warning, uncaught exception and browser log error
// (but network ones: a 401 the page shows is not a fault of the page).
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, ctx context.Context, base string) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: bctx, base: base}
	if err := chromedp.Listen(bctx, b.listen); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

// listen runs on chromedp's reading goroutine: it only records.
func (b *browser) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			p = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := ""
		if d.Exception != nil {
			desc = d.Exception.Description
		}
		p = fmt.Sprintf("uncaught exception at %s:%d: %s %s", d.URL, d.LineNumber, d.Text, desc)
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Level == log.EntryLevelError && e.Source != log.EntrySourceNetwork {
			p = fmt.Sprintf("browser log (%s): %s %s", e.Source, e.Text, e.URL)
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// clean fails the test if the page logged a problem so far.
func (b *browser) clean(where string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Fatalf("%s: the page logged %d problem(s):\n%s", where, len(b.problems), strings.Join(b.problems, "\n"))
	}
}

// domWait bounds each step of the browser: what the page shows within
// a second on an idle machine may take much longer on a loaded CI runner,
// and a generous bound costs nothing when it holds.
const domWait = 30 * time.Second

// do runs actions within domWait, and fails the test with what it was
// doing and what the page logged.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, domWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed")
		b.mu.Lock()
		defer b.mu.Unlock()
		b.t.Fatalf("%s: %v\nthe page logged:\n%s", what, err, strings.Join(b.problems, "\n"))
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, domWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (b *browser) text(what, sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, domWait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return s
}

// view opens a view by its link in the navigation, as a user would, and
// waits until sel shows.
func (b *browser) view(name, sel string) {
	b.t.Helper()
	b.do("opening the "+name+" view",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="`+name+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(sel)))
	b.shot(name)
	b.clean("the " + name + " view")
}

// shot saves a screenshot of the page when ENTENTE_DASHBOARD_SCREENSHOTS
// names a directory.
func (b *browser) shot(name string) {
	dir := os.Getenv(screenshots)
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "dashboard-"+name+".png"), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// css quotes s for a CSS attribute selector.
func css(s string) string { return fmt.Sprintf("%q", s) }

// TestDashboardInBrowser drives the dashboard of a real node (DE, in a DE
// and BR federation with the testnet's transfer world) in headless
// Chromium: every view loads without a console error or an uncaught
// exception; the public shell asks for a token where one is needed; the
// transfer check shows an allow and a deny with its failing checks; an
// incident published while the incidents view is open appears, and its
// follow-up updates it, without a reload.
func TestDashboardInBrowser(t *testing.T) {
	chromium(t) // skip early, before starting a federation
	net, err := testnet.Start(testnet.Options{Jurisdictions: []string{"DE", "BR"}, API: true, InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := testnet.NewTransferWorld(ctx, net)
	if err != nil {
		t.Fatal(err)
	}
	de, br := net.NodeOf("DE"), net.NodeOf("BR")
	regulator, err := net.NewParty(ctx, "DE", "DE DPA", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	// The platform's own token: a controller, which may check its transfers.
	token, err := de.Grant(ctx, "platform", protocol.RoleController, w.Platform.ID)
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, ctx, "http://"+de.APIAddr())
	b.do("loading the dashboard",
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#peers tr[data-peer=`+css(br.ID().String())+`]`)))
	if got := b.text("the node's jurisdiction", "#self-jurisdiction"); got != "DE" {
		t.Errorf("the federation view names the node's jurisdiction %q, want DE", got)
	}
	b.do("the jurisdictions", chromedp.WaitVisible(chromedp.CSS(`#jurisdictions tr[data-jurisdiction="BR"]`)))
	b.shot("public-federation")
	b.clean("the public federation view")

	// The public: records it may not read, and a route that needs a token.
	b.view("records", `#records`)
	b.view("receipts", `.error-box[data-status="401"] .sign-in-prompt`)
	if got := b.text("the 401 box", ".error-box"); !strings.Contains(got, "unauthorized") {
		t.Errorf("the receipts view without a token shows %q, want the unauthorized code", got)
	}
	b.shot("receipts-public")

	// A token the node does not know: 401 everywhere, and a prompt.
	b.signIn("ent1_not-a-token-of-this-node")
	b.view("federation", `.error-box[data-status="401"]`)
	b.badge("token unknown to this node")
	b.do("signing out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("token-input")))
	b.signIn(token)
	b.badge("platform · controller") // whose token it is, as the status names it

	t.Run("views", func(t *testing.T) {
		b.t = t
		b.view("federation", `#jurisdiction-records`)
		if got := b.text("the federation view", "#status"); !strings.Contains(got, "Equivocation") || !strings.Contains(got, "none seen") {
			t.Errorf("the federation view does not say no equivocation was seen:\n%s", got)
		}
		testCopyWholeIDs(t, b)
		b.view("log", `#signatures`)
		if size := b.text("the checkpoint size", "#checkpoint-size"); size == "" || size == "0" {
			t.Errorf("the checkpoint's size is %q", size)
		}
		b.view("records", `#records tr[data-cid=`+css(w.Consent.CID().String())+`]`)
		testRecords(t, b, w)
	})
	t.Run("transfer check", func(t *testing.T) {
		b.t = t
		testVerify(t, b, w)
	})
	t.Run("live incidents", func(t *testing.T) {
		b.t = t
		testIncidents(ctx, t, b, de, regulator)
	})
	t.Run("event stream client", func(t *testing.T) {
		b.t = t
		testEventStreamClient(t, b, token)
	})
	t.Run("lineage of a resale", func(t *testing.T) {
		b.t = t
		testResaleLineage(ctx, t, b, w, de)
	})
	t.Run("delivery of a TLP:RED notice", func(t *testing.T) {
		b.t = t
		testDelivery(ctx, t, b, de, regulator)
	})
	t.Run("equivocation evidence", func(t *testing.T) { // last: DE stops cosigning BR's checkpoints
		b.t = t
		testEquivocation(ctx, t, b, net, de, br)
	})
	b.t = t
	b.clean("the end")
}

// badge waits for the signed-in badge to say want.
func (b *browser) badge(want string) {
	b.t.Helper()
	b.do("the badge saying "+want, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById('token-badge').textContent === %q`, want)))
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.do("signing in",
		chromedp.SetValue(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("signed-in")))
	if got := eval[string](b, "the token kept", `sessionStorage.getItem('entente.token')`); got != token {
		b.t.Errorf("sessionStorage holds %q, want the token typed", got)
	}
}

// testRecords pages through the records and follows links between them.
func testRecords(t *testing.T, b *browser, w *testnet.TransferWorld) {
	consent := w.Consent.CID().String()
	b.do("the consent's record",
		chromedp.Click(chromedp.CSS(`#records tr[data-cid=`+css(consent)+`] a.cid`)),
		chromedp.WaitVisible(chromedp.CSS(`#record-json`)))
	if got := b.text("the record's CID", "#record-cid"); got != consent {
		t.Errorf("the record view shows %q, want %s", got, consent)
	}
	if got := b.text("the consent's JSON", "#record-json"); !strings.Contains(got, `"purposes"`) || !strings.Contains(got, w.Platform.ID.String()) {
		t.Errorf("the consent's JSON lacks its purposes or issuer: %q", got)
	}
	b.shot("record")

	// Pages of two: Next gives other records, Previous the first again.
	b.do("the first page of two",
		chromedp.Evaluate[chromedp.Void](`location.hash = '#/records?limit=2'`),
		chromedp.WaitVisible(chromedp.CSS(`#page-next`)))
	first := eval[[]string](b, "the first page", `[...document.querySelectorAll('#records tr[data-cid]')].map(r => r.dataset.cid)`)
	b.do("the second page", chromedp.Click(chromedp.ID("page-next")), chromedp.WaitVisible(chromedp.ID("page-prev")))
	second := eval[[]string](b, "the second page", `[...document.querySelectorAll('#records tr[data-cid]')].map(r => r.dataset.cid)`)
	if len(first) != 2 || len(second) == 0 || len(second) > 2 || first[0] == second[0] || len(second) > 1 && first[1] == second[1] {
		t.Errorf("pages of two: %v then %v", first, second)
	}
	b.do("back to the first page", chromedp.Click(chromedp.ID("page-prev")),
		chromedp.WaitVisible(chromedp.CSS(`#records tr[data-cid=`+css(first[0])+`]`)))
	b.clean("the record browser")
}

// verifyForm fills the transfer form with req.
func verifyForm(req protocol.TransferRequest) chromedp.Action[chromedp.Void] {
	fields := [][2]string{
		{"consent", req.Consent.String()}, {"from", req.From}, {"to", req.To}, {"sender", req.Sender}, {"recipient", req.Recipient},
		{"purpose", req.Purpose}, {"categories", strings.Join(req.Categories, ", ")}, {"tier", fmt.Sprint(req.Tier)},
		{"retention_days", fmt.Sprint(req.RetentionDays)}, {"at", ""}, {"parent_receipt", ""}, {"parent_item", ""},
	}
	var steps []chromedp.Action[chromedp.Void]
	for _, f := range fields {
		steps = append(steps, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			set := chromedp.SetValue(chromedp.ID("v-"+f[0]), f[1])
			if f[1] == "" {
				set = chromedp.Clear(chromedp.ID("v-" + f[0])) // SetValue reads "" back as a failure
			}
			if err := chromedp.Do(ctx, set); err != nil {
				return fmt.Errorf("the field %s: %w", f[0], err)
			}
			return nil
		}))
	}
	return chromedp.Steps(steps...)
}

func testVerify(t *testing.T, b *browser, w *testnet.TransferWorld) {
	b.view("verify", `#verify-form`)
	b.do("an allowed transfer", verifyForm(w.Request),
		chromedp.Click(chromedp.ID("verify-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#verdict[data-verdict="allow"]`)))
	checks := eval[[]string](b, "the checks", `[...document.querySelectorAll('#checks tr.check')].map(r => r.dataset.check + '=' + r.dataset.ok)`)
	if len(checks) != len(protocol.CheckIDs) {
		t.Errorf("the allow shows %d checks, want %d: %v", len(checks), len(protocol.CheckIDs), checks)
	}
	for _, c := range checks {
		if !strings.HasSuffix(c, "=true") {
			t.Errorf("an allow with a failed check: %v", checks)
			break
		}
	}
	receipt := eval[string](b, "the receipt", `document.querySelector('.verdict-card a.cid').dataset.cid`)
	b.shot("verify-allow")

	bad := w.Request
	bad.Purpose = "marketing" // neither consented nor allowed by the rule sets
	b.do("a denied transfer", verifyForm(bad),
		chromedp.Click(chromedp.ID("verify-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#verdict[data-verdict="deny"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#checks tr.check.fail`)))
	failed := eval[[]string](b, "the failed checks", `[...document.querySelectorAll('#checks tr.check.fail')].map(r => r.dataset.check + ': ' + r.querySelector('.reason').textContent)`)
	if len(failed) == 0 {
		t.Fatal("a deny shows no failed check")
	}
	for _, f := range failed {
		if strings.HasSuffix(f, ": ") {
			t.Errorf("a failed check without its reason: %v", failed)
		}
	}
	t.Logf("denied on %v", failed)
	b.shot("verify-deny")

	// Refusals: a malformed consent (400 bad_cid, the field marked), and a
	// sender other than the caller (403, with a prompt for another token).
	notCID := w.Request
	b.do("a request with a bad CID", verifyForm(notCID),
		chromedp.SetValue(chromedp.ID("v-consent"), "bafy-not-a-cid"),
		chromedp.Click(chromedp.ID("verify-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.error-box[data-code="bad_cid"]`)),
		chromedp.WaitReady(chromedp.CSS(`#v-consent[aria-invalid="true"]`)))
	other := w.Request
	other.Sender = w.Recipient.ID.String()
	b.do("a request for another sender", verifyForm(other),
		chromedp.Click(chromedp.ID("verify-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.error-box[data-status="403"] .sign-in-prompt`)))
	b.clean("the transfer check")

	// The allowed decision is in the register, and in its consent's lineage.
	b.view("receipts", `#receipts tr[data-receipt=`+css(receipt)+`]`)
	b.do("the lineage",
		chromedp.Click(chromedp.CSS(`#receipts tr[data-receipt=`+css(receipt)+`] a.lineage-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#lineage li.decision[data-receipt=`+css(receipt)+`]`)))
	b.shot("lineage")
	b.clean("the lineage")
}

// post submits a record through the node's API, with its operator token.
func post(ctx context.Context, t *testing.T, m *testnet.Member, rec *protocol.Record) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.APIAddr()+"/v1/records", bytes.NewReader(rec.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+m.Token)
	req.Header.Set("Content-Type", api.MediaDagCBOR)
	req.Close = true // no idle connection left for goleak to find
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/records: %s %s", resp.Status, body)
	}
}

func testIncidents(ctx context.Context, t *testing.T, b *browser, de *testnet.Member, regulator *testnet.Party) {
	b.view("incidents", `#stream-state[data-state="open"]`)
	b.do("marking the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	notice := &protocol.Incident{Ref: "DE-DASH-1", Jurisdiction: "DE", Severity: protocol.SeverityHigh, Status: protocol.StatusOpen,
		TLP: protocol.TLPClear, Affected: []string{}, Categories: []string{"face"}, DetectedAt: time.Now().UnixMilli(),
		Summary: "face templates exposed by a misconfigured bucket"}
	first, err := testnet.Sign(regulator.Key, notice)
	if err != nil {
		t.Fatal(err)
	}
	post(ctx, t, de, first)
	row := `tr.incident[data-id=` + css(first.CID().String()) + `]`
	b.do("the new incident, live", chromedp.WaitVisible(chromedp.CSS(row+`[data-status="open"]`)))
	if got := b.text("the incident's row", row); !strings.Contains(got, notice.Summary) {
		t.Errorf("the incident's row reads %q, want its summary", got)
	}

	followUp := *notice
	followUp.Status, followUp.Summary = protocol.StatusResolved, "bucket closed, templates rotated"
	follows := protocol.LinkTo(first.CID())
	followUp.Follows = &follows
	second, err := testnet.Sign(regulator.Key, &followUp)
	if err != nil {
		t.Fatal(err)
	}
	post(ctx, t, de, second)
	b.do("the follow-up, live", chromedp.WaitVisible(chromedp.CSS(row+`[data-status="resolved"][data-notices="2"]`)))
	if n := eval[int](b, "the rows", `document.querySelectorAll('tr.incident').length`); n != 1 {
		t.Errorf("%d incident rows, want 1 (the chain's)", n)
	}
	if !eval[bool](b, "the page's marker", `window.notReloaded === true`) {
		t.Error("the page was reloaded")
	}
	b.shot("incidents-live")

	// The follow-up's record links to the first notice.
	b.do("the follow-up's link to the first notice",
		chromedp.Click(chromedp.CSS(row+` ol li:nth-child(2) a.cid`)),
		chromedp.WaitVisible(chromedp.CSS(`#record-json a.cid[data-cid=`+css(first.CID().String())+`]`)),
		chromedp.Click(chromedp.CSS(`#record-json a.cid[data-cid=`+css(first.CID().String())+`]`)),
		chromedp.WaitVisible(chromedp.CSS(`#record-json`)))
	if got := b.text("the first notice's CID", "#record-cid"); got != first.CID().String() {
		t.Errorf("following the link shows %q, want %s", got, first.CID())
	}
	b.clean("the incidents")
}

// testEventStreamClient checks the page's event-stream client in the
// browser: the parser on chunks cut anywhere, and a dropped stream resumed
// with Last-Event-ID and the tab's token, then closed for good on 401.
func testEventStreamClient(t *testing.T, b *browser, token string) {
	got := eval[string](b, "the event-stream client", `(async () => {
  const {Parser, follow} = await import('/ui/js/sse.js');
  const events = [];
  const p = new Parser(ev => events.push(ev));
  for (const c of ['\ufeffevent: incident\r', '\nid: 7\ndata: {"a":', '1}\n\n', ': keepalive\n\n', 'data: x\r\ndata: y\r', '\r', 'id: 8\nevent: other\n\n', 'data: z\n\n'])
    p.push(c);
  const calls = [], states = [];
  const enc = new TextEncoder();
  const fetchFn = async (path, init) => {
    calls.push({path, headers: init.headers});
    if (calls.length === 1) {
      return new Response(new ReadableStream({start(c) {
        c.enqueue(enc.encode(': incidents after 4\n\nevent: incident\nid: 5\ndata: {}\n\n'));
        c.close();
      }}), {status: 200, headers: {'Content-Type': 'text/event-stream'}});
    }
    return new Response(JSON.stringify({error: 'unauthorized', message: 'unknown bearer token'}), {status: 401, headers: {'Content-Type': 'application/json'}});
  };
  const seen = [];
  const ac = new AbortController();
  await follow('/v1/incidents/stream', {signal: ac.signal, fetchFn, minDelay: 5, onEvent: ev => seen.push(ev.id), onState: s => states.push(s.state + (s.error && s.error.code ? ':' + s.error.code : ''))});
  return JSON.stringify({events, seen, states, calls});
})()`)
	want := `{"events":[{"type":"incident","data":"{\"a\":1}","id":"7"},{"type":"message","data":"x\ny","id":"7"},{"type":"message","data":"z","id":"8"}],` +
		`"seen":["5"],"states":["open","retrying","closed:unauthorized"],` +
		`"calls":[{"path":"/v1/incidents/stream","headers":{"Accept":"text/event-stream","Authorization":"Bearer ` + token + `"}},` +
		`{"path":"/v1/incidents/stream","headers":{"Accept":"text/event-stream","Authorization":"Bearer ` + token + `","Last-Event-ID":"5"}}]}`
	if got != want {
		t.Errorf("the event-stream client:\n got %s\nwant %s", got, want)
	}
	b.clean("the event-stream client")
}

// testResaleLineage: a resale decided under a tier-1 decision shows under
// it in the consent's lineage, to the operator (the platform's token sees
// only the decisions it is a party to).
func testResaleLineage(ctx context.Context, t *testing.T, b *browser, w *testnet.TransferWorld, de *testnet.Member) {
	tier2, err := w.Resale(ctx, de, 2)
	if err != nil {
		t.Fatal(err)
	}
	v, err := de.Services().Verify.Verify(ctx, tier2)
	if err != nil || v.Receipt == nil {
		t.Fatalf("the tier-2 decision: %v", err)
	}
	parent, child := tier2.Parent.Receipt.String(), v.Receipt.CID().String()
	b.do("signing out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("token-input")))
	b.signIn(de.Token)
	b.badge("operator")
	b.do("the lineage of the resale",
		chromedp.Evaluate[chromedp.Void](`location.hash = '#/receipts/lineage/`+w.Consent.CID().String()+`'`),
		chromedp.WaitVisible(chromedp.CSS(`li.decision[data-receipt=`+css(parent)+`] > ul > li.decision[data-receipt=`+css(child)+`]`)))
	b.shot("lineage-resale")
	b.clean("the lineage of a resale")
}

// testDelivery: the operator sees a TLP:RED notice for BR appear, and its
// direct delivery to BR go from pending to delivered, without a reload.
func testDelivery(ctx context.Context, t *testing.T, b *browser, de *testnet.Member, regulator *testnet.Party) {
	b.view("incidents", `#stream-state[data-state="open"]`)
	red, err := testnet.Sign(regulator.Key, &protocol.Incident{Ref: "DE-DASH-RED", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "for BR's eyes only", Recipients: []string{"BR"}})
	if err != nil {
		t.Fatal(err)
	}
	post(ctx, t, de, red)
	b.do("the delivery to BR", chromedp.WaitVisible(chromedp.CSS(
		`tr.incident[data-id=`+css(red.CID().String())+`] table.delivery tr[data-to="BR"][data-state="delivered"]`)))
	b.shot("incidents-red")
	b.clean("the delivery of a TLP:RED notice")
}

// testEquivocation has BR's key sign a second checkpoint of the size DE
// last verified, with another root: DE raises the alert, and the Log view
// shows it with the two signed notes that prove it.
func testEquivocation(ctx context.Context, t *testing.T, b *browser, net *testnet.Net, de, br *testnet.Member) {
	sc, err := br.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	if err := de.Services().Witness.Peer(ctx, br.ID()); err != nil {
		t.Fatal(err)
	}
	signer, err := protocol.NewCheckpointSigner(net.Federation.Name, br.Key)
	if err != nil {
		t.Fatal(err)
	}
	other := sc.Root
	other[0] ^= 1
	forged, err := signer.Sign(protocol.LogCheckpoint{Origin: signer.Name(), Size: sc.Size, Root: other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := de.Services().Witness.Observe(ctx, br.ID(), forged.Note, nil); !errors.Is(err, witness.ErrEquivocation) {
		t.Fatalf("a second root for size %d: %v, want an equivocation", sc.Size, err)
	}
	b.view("log", `#alerts details`)
	b.do("showing the evidence", chromedp.Click(chromedp.CSS(`#alerts details summary`)), chromedp.WaitVisible(chromedp.CSS(`#alerts details pre`)))
	notes := eval[[]string](b, "the notes shown", `[...document.querySelectorAll('#alerts details pre')].map(p => p.textContent)`)
	if len(notes) != 2 || notes[1] != string(forged.Note) {
		t.Fatalf("the Log view shows %d notes %q; want the verified one and the forged one", len(notes), notes)
	}
	for i, n := range notes {
		got, err := protocol.OpenCheckpoint([]byte(n), net.Federation.Name, br.ID())
		if err != nil || got.Size != sc.Size {
			t.Errorf("note %d shown does not open as BR's checkpoint of size %d: %v", i, sc.Size, err)
		}
	}
	b.shot("log-equivocation")
	// The view reads the status again every 10 s: the evidence opened
	// stays open.
	n := eval[int](b, "the reads so far", `Number(document.querySelector('#witness').dataset.refreshes)`)
	b.do("the Log view's next read", chromedp.Poll[chromedp.Void](fmt.Sprintf(`Number(document.querySelector('#witness').dataset.refreshes) > %d`, n)))
	if open := eval[bool](b, "the evidence still open", `document.querySelector('#alerts details').open`); !open {
		t.Error("the Log view's refresh closed the evidence the user opened")
	}
	b.clean("the equivocation evidence")
}

// testCopyWholeIDs: a peer ID or CID the page shows shortened is copied
// whole: selecting its text selects the whole ID, and it is shown short.
func testCopyWholeIDs(t *testing.T, b *browser) {
	type shown struct {
		Title, Selected string
		Width           float64
	}
	got := eval[[]shown](b, "the shortened IDs as selected", `[...document.querySelectorAll('.peer, a.cid')].filter(e => e.querySelector('.short')).map(e => {
		const r = document.createRange(); r.selectNodeContents(e);
		const s = getSelection(); s.removeAllRanges(); s.addRange(r);
		const selected = s.toString(); s.removeAllRanges();
		return {title: e.title, selected, width: e.getBoundingClientRect().width};
	})`)
	if len(got) == 0 {
		t.Fatal("the federation view shows no shortened peer ID or CID")
	}
	for _, g := range got {
		if g.Selected != g.Title {
			t.Errorf("selecting %s shown shortened copies %q", g.Title, g.Selected)
		}
		// 19 characters shown of a 52-character peer ID or 59-character CID.
		if max := 24 * 8.0; g.Width > max {
			t.Errorf("%s is shown %.0f px wide, more than the %.0f px of its shortened form", g.Title, g.Width, max)
		}
	}
}
