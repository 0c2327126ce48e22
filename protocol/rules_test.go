package protocol

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ruleFixture is the transfer and consent of docs/rules.md's worked
// examples.
func ruleFixture(t testing.TB) (*TransferRequest, *Record) {
	t.Helper()
	issued := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).UnixMilli()
	consent := consentBy(t, ctrlDE, issued, func(c *Consent) {
		c.ExpiresAt = time.Date(2027, 11, 24, 10, 0, 0, 0, time.UTC).UnixMilli()
	})
	req := baseRequest()
	req.Consent = LinkTo(consent.CID())
	req.At = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixMilli()
	return &req, consent
}

type ruleExample struct {
	title, expr, result string
}

var ruleExampleRE = regexp.MustCompile("(?s)### ([^\n]+)\n.*?```cel\n(.*?)\n```\\s*\nResult: \\*\\*(true|false|error|refused)\\*\\*")

func ruleDocExamples(t *testing.T) (string, []ruleExample) {
	t.Helper()
	b, err := os.ReadFile("../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []ruleExample
	for _, m := range ruleExampleRE.FindAllStringSubmatch(string(b), -1) {
		out = append(out, ruleExample{title: m[1], expr: m[2], result: m[3]})
	}
	return string(b), out
}

// TestRulesDocExamples evaluates every worked example of docs/rules.md
// against its fixture and checks the documented result.
func TestRulesDocExamples(t *testing.T) {
	doc, examples := ruleDocExamples(t)
	if len(examples) < 12 {
		t.Fatalf("found %d worked examples in docs/rules.md, want at least 12", len(examples))
	}
	req, consent := ruleFixture(t)

	// The fixture the doc shows is the one evaluated here.
	jsonBlock := regexp.MustCompile("(?s)```json\n(\\{\"consent\".*?)\n```").FindStringSubmatch(doc)
	if jsonBlock == nil {
		t.Fatal("docs/rules.md: no transfer request JSON block")
	}
	parsed, err := ParseTransferRequestJSON([]byte(strings.Replace(jsonBlock[1], "bafy...", consent.CID().String(), 1)))
	if err != nil {
		t.Fatalf("docs/rules.md: the fixture request does not parse: %v", err)
	}
	if got, want := mustJSON(t, parsed), mustJSON(t, req); got != want {
		t.Errorf("docs/rules.md fixture request\n%s\nis not the test's\n%s", got, want)
	}
	c, _ := consent.Consent()
	for _, s := range []string{
		consent.Issuer().String(), fmtTime(consent.IssuedAt()), fmtTime(c.ExpiresAt),
		fmt.Sprintf("%q", c.Method), fmt.Sprintf("`%d`", c.RetentionDays),
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/rules.md does not show the fixture consent's %s", s)
		}
	}

	if limit := fmt.Sprintf("**%d %03d**", RuleCostLimit/1000, RuleCostLimit%1000); !strings.Contains(doc, limit) {
		t.Errorf("docs/rules.md does not give the cost limit as %s", limit)
	}

	vars := NewRuleVars(req, consent)
	for _, ex := range examples {
		t.Run(ex.title, func(t *testing.T) {
			p, err := CompileCondition(ex.expr)
			if ex.result == "refused" {
				if err == nil {
					t.Fatalf("%s compiles; the doc says it is refused", ex.expr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", ex.expr, err)
			}
			got, err := p.Eval(vars)
			switch {
			case ex.result == "error":
				if err == nil {
					t.Fatalf("%s = %v; the doc says it errors", ex.expr, got)
				}
			case err != nil:
				t.Fatalf("%s: %v", ex.expr, err)
			case fmt.Sprint(got) != ex.result:
				t.Fatalf("%s = %v; the doc says %s", ex.expr, got, ex.result)
			}
		})
	}
}

func mustJSON(t *testing.T, r *TransferRequest) string {
	t.Helper()
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// longList is a CEL list literal of n ints.
func longList(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprint(i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestCompileCondition(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string // substring of the error; "" compiles
	}{
		{"transfer.tier <= consent.max_tier", ""},
		{`transfer.from == "DE" && transfer.to in consent.destinations`, ""},
		{`transfer.at == now && consent.issued_at < now`, ""},
		{`consent.expires_at - now > duration("720h")`, ""},
		{`transfer.categories.all(c, consent.categories.exists(d, d == c))`, ""},
		{`{"a": 1}.all(k, k == "a")`, ""},
		{`now.getHours() < 18`, ""},
		{"transfer.tier <=", "does not compile: 1:17: Syntax error"},
		{"transfer.tierr <= 1", "does not compile: 1:9: undefined field 'tierr'"},
		{"subject == 1", "undeclared reference to 'subject'"},
		{`transfer.tier == "1"`, "no matching overload"},
		{"transfer.tier", "returns int, not bool"},
		{"transfer.categories", "returns list(string), not bool"},
		{"dyn(transfer.tier)", "returns dyn, not bool"},
		{`now.getHours("Europe/Berlin") < 18`, "time-zone arguments are not allowed"},
		{`consent.expires_at.getFullYear("UTC") > 2026`, "time-zone arguments are not allowed"},
		{`{"a": 1, "b": 2}.map(k, k)[0] == "a"`, "iteration order is unspecified"},
		{`size({"a": 1}.filter(k, true)) == 1`, "iteration order is unspecified"},
		{`dyn({"a": 1}).map(k, k) == ["a"]`, "iteration order is unspecified"},
		{`transfer.categories.map(c, c + "!") == ["face!"]`, ""},
		{`{"a": 1}.exists_one(k, k == "a")`, ""},
		{`duration("3 days") > duration("1h")`, "invalid duration"},
		{`transfer.purpose.matches("(")`, "invalid matches"},
		{"[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))", "nesting"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			p, err := CompileCondition(tc.expr)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.Expr() != tc.expr {
					t.Errorf("Expr() = %q", p.Expr())
				}
				return
			}
			if err == nil {
				t.Fatalf("compiled; want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestRuleProgramEval(t *testing.T) {
	req, consent := ruleFixture(t)
	vars := NewRuleVars(req, consent)
	noConsent := NewRuleVars(req, nil)
	cases := []struct {
		name string
		expr string
		vars *RuleVars
		want bool
		err  string // substring; "" no error
	}{
		{"true", "transfer.tier <= consent.max_tier", vars, true, ""},
		{"false", "transfer.tier > consent.max_tier", vars, false, ""},
		{"division by zero", "transfer.tier / (transfer.tier - 1) > 0", vars, false, "division by zero"},
		{"index out of range", "transfer.categories[3] == \"face\"", vars, false, "index"},
		{"overflow", "9223372036854775807 + transfer.tier > 0", vars, false, "overflow"},
		{"cost limit", longList(120) + ".all(x, " + longList(120) + ".all(y, x + y >= 0))", vars, false, "cost limit exceeded"},
		{"consent not bound", "consent.max_tier >= 1", noConsent, false, "consent"},
		{"consent not needed", "transfer.tier == 1", noConsent, true, ""},
		{"error absorbed by ||", "transfer.tier / 0 > 0 || true", vars, true, ""},
		{"no variables", "true", nil, false, "no variables"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := CompileCondition(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Eval(tc.vars)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Eval = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Eval = %v, %v; want an error with %q", got, err, tc.err)
			}
			if got {
				t.Fatal("an erroring condition returned true")
			}
		})
	}
	p, _ := CompileCondition(cases[5].expr)
	if _, err := p.Eval(vars); !errors.Is(err, ErrCostLimit) {
		t.Errorf("cost limit error %v is not ErrCostLimit", err)
	}
}

// rulesetWith signs a DE ruleset whose export conditions are exprs (valid
// ones: Sign validates).
func rulesetWith(t testing.TB, exprs ...string) *Record {
	t.Helper()
	b := baseRuleset()
	b.Supersedes = nil
	b.Export.Conditions = nil
	for i, e := range exprs {
		b.Export.Conditions = append(b.Export.Conditions, Condition{ID: fmt.Sprintf("c%d", i), Description: "test", Expr: e})
	}
	return mustSign(t, authDE, t0-day, b)
}

// signUnchecked signs a body without validating it, as a faulty or
// hostile issuer would.
func signUnchecked(t *testing.T, body Body) []byte {
	t.Helper()
	key := authDE
	rawBody, err := encMode.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	u := unsignedEnvelope{V: FormatVersion, Kind: body.Kind(), Issuer: keyID(key).String(), IssuedAt: t0, Body: rawBody}
	msg, err := signingInput(&u)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := encMode.Marshal(&envelope{V: u.V, Kind: u.Kind, Issuer: u.Issuer, IssuedAt: u.IssuedAt, Body: u.Body, Sig: sig})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A ruleset whose condition does not compile is refused at decode with
// invalid_body naming the condition's expr.
func TestRulesetConditionRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mut   func(*Ruleset)
		field string
		msg   string
	}{
		{"export, unknown field", func(r *Ruleset) { r.Export.Conditions[0].Expr = "transfer.retention <= 30" },
			"body.export.conditions[0].expr", `condition "tier-within-consent" does not compile: 1:9: undefined field 'retention'`},
		{"import, not bool", func(r *Ruleset) {
			r.Import.Conditions = append(r.Import.Conditions, Condition{ID: "z-count", Description: "d", Expr: "size(transfer.categories)"})
		}, "body.import.conditions[1].expr", `condition "z-count" returns int, not bool`},
		{"export, syntax", func(r *Ruleset) { r.Export.Conditions[0].Expr = "transfer.tier <= (" },
			"body.export.conditions[0].expr", "Syntax error"},
		{"import, time zone", func(r *Ruleset) { r.Import.Conditions[0].Expr = `now.getHours("Europe/Paris") < 18` },
			"body.import.conditions[0].expr", "time-zone arguments are not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := baseRuleset()
			tc.mut(b)
			_, err := Decode(signUnchecked(t, b))
			checkErr(t, "Decode", err, CodeInvalidBody, tc.field)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err, tc.msg)
			}
			_, err = Sign(authDE, t0, b)
			checkErr(t, "Sign", err, CodeInvalidBody, tc.field)
		})
	}
}

func TestRuleEngineCache(t *testing.T) {
	req, consent := ruleFixture(t)
	vars := NewRuleVars(req, consent)
	a := rulesetWith(t, "transfer.tier <= 1", "transfer.tier > 1")
	b := rulesetWith(t, "transfer.to == \"FR\"")
	e := NewRuleEngine(2)

	for _, tc := range []struct {
		rs   *Record
		side Side
		i    int
		want bool
	}{
		{a, SideExport, 0, true},
		{a, SideExport, 1, false},
		{a, SideImport, 0, true}, // the base import condition: tier <= consent.max_tier
		{b, SideExport, 0, true},
	} {
		got, err := e.Eval(tc.rs, tc.side, tc.i, vars)
		if err != nil || got != tc.want {
			t.Errorf("Eval(%s, %s, %d) = %v, %v; want %v", tc.rs.CID(), tc.side, tc.i, got, err, tc.want)
		}
		if e.Len() > 2 {
			t.Fatalf("Len = %d over capacity 2", e.Len())
		}
	}
	// b's program is cached: the same pointer comes back.
	p1, _ := e.Program(b, SideExport, 0)
	p2, _ := e.Program(b, SideExport, 0)
	if p1 != p2 {
		t.Error("a cached program was recompiled")
	}
	// The least recently used entry (a, export, 0) was evicted.
	e.mu.Lock()
	_, held := e.entries[ruleKey{a.CID(), SideExport, 0}]
	e.mu.Unlock()
	if held {
		t.Error("the least recently used program was not evicted")
	}

	for _, tc := range []struct {
		name string
		rs   *Record
		side Side
		i    int
		want string
	}{
		{"not a ruleset", consent, SideExport, 0, "not a ruleset"},
		{"bad side", a, Side("sideways"), 0, "neither export nor import"},
		{"index out of range", a, SideExport, 2, "no condition 2"},
		{"negative index", a, SideExport, -1, "no condition -1"},
	} {
		if ok, err := e.Eval(tc.rs, tc.side, tc.i, vars); ok || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Eval = %v, %v; want an error with %q", tc.name, ok, err, tc.want)
		}
	}

	var nilEngine *RuleEngine
	if ok, err := nilEngine.Eval(a, SideExport, 0, vars); !ok || err != nil {
		t.Errorf("nil engine: Eval = %v, %v", ok, err)
	}
	if NewRuleEngine(0).capacity != DefaultRuleCacheSize {
		t.Error("capacity 0 does not mean the default")
	}
}

func TestRuleEngineConcurrent(t *testing.T) {
	req, consent := ruleFixture(t)
	vars := NewRuleVars(req, consent)
	rs := []*Record{
		rulesetWith(t, "transfer.tier <= 1", "transfer.tier > 1"),
		rulesetWith(t, "transfer.to == \"FR\"", "transfer.purpose == \"research\""),
	}
	e := NewRuleEngine(3)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r := rs[(g+i)%2]
				want := (g+i)%2 == 1 || i%2 == 0
				got, err := e.Eval(r, SideExport, i%2, vars)
				if err != nil || got != want {
					errs <- fmt.Errorf("Eval = %v, %v; want %v", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if e.Len() > 3 {
		t.Fatalf("Len = %d over capacity", e.Len())
	}
}

func BenchmarkRuleEval(b *testing.B) {
	req, consent := ruleFixture(b)
	vars := NewRuleVars(req, consent)
	rs := rulesetWith(b, "transfer.categories.all(c, c in consent.categories) && consent.expires_at - now > duration(\"720h\")")
	e := NewRuleEngine(0)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := e.Eval(rs, SideExport, 0, vars); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	reportRate(b, "evals/s")
}

func BenchmarkCompileCondition(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileCondition("transfer.tier <= consent.max_tier || transfer.purpose == \"research\""); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "compiles/s")
}

// FuzzCompileCondition: compiling any text never panics, and what
// compiles evaluates without panicking, within the cost limit, to a bool
// or an error (never both true and an error).
func FuzzCompileCondition(f *testing.F) {
	for _, e := range []string{
		"transfer.tier <= consent.max_tier",
		`transfer.categories.all(c, c in consent.categories)`,
		`consent.expires_at - now > duration("720h")`,
		`transfer.purpose.matches("^r.*")`,
		`[1, 2, 3].exists(x, x == transfer.tier)`,
		`{"a": transfer.tier}.all(k, k == "a")`,
		`transfer.retention_days / (transfer.tier - 1) < 100`,
		`now.getHours("Europe/Berlin") < 18`,
	} {
		f.Add(e)
	}
	req, consent := ruleFixture(f)
	vars := NewRuleVars(req, consent)
	f.Fuzz(func(t *testing.T, expr string) {
		if len(expr) > maxTextLen {
			return
		}
		p, err := CompileCondition(expr)
		if err != nil {
			return
		}
		if ok, err := p.Eval(vars); ok && err != nil {
			t.Fatalf("%s: true with an error %v", expr, err)
		}
	})
}
