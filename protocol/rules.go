package protocol

import (
	"container/list"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/ipfs/go-cid"
)

// A ruleset's conditions are CEL expressions (https://cel.dev) over three
// variables: transfer, the request; consent, the consent's body and
// envelope; now, the decision time. docs/rules.md is the reference for
// people who write them.

// RuleCostLimit bounds the work of one condition's evaluation, in CEL's
// runtime cost units (roughly one per operation, one per element a
// comprehension visits or a string function reads). A condition that
// goes over it fails.
const RuleCostLimit = 10_000

// DefaultRuleCacheSize is the capacity of a RuleEngine made with a
// capacity <= 0: compiled conditions held at once.
const DefaultRuleCacheSize = 4096

// maxComprehensionNesting bounds nested macros (all, exists, map...).
const maxComprehensionNesting = 3

// Side names a ruleset's rules: those for data leaving its jurisdiction,
// or those for data arriving in it.
type Side string

// The sides of a ruleset.
const (
	SideExport Side = "export"
	SideImport Side = "import"
)

// rules returns the ruleset's rules of side s.
func (r *Ruleset) rules(s Side) (*Rules, bool) {
	switch s {
	case SideExport:
		return &r.Export.Rules, true
	case SideImport:
		return &r.Import.Rules, true
	}
	return nil, false
}

// celTransfer and celConsent are what the variables transfer and consent
// hold; the cel tags are the names conditions use.
type celTransfer struct {
	From          string    `cel:"from"`
	To            string    `cel:"to"`
	Sender        string    `cel:"sender"`
	Recipient     string    `cel:"recipient"`
	Purpose       string    `cel:"purpose"`
	Categories    []string  `cel:"categories"`
	Tier          int64     `cel:"tier"`
	RetentionDays int64     `cel:"retention_days"`
	At            time.Time `cel:"at"`
	// Parent is the parent decision; its receipt is "" when there is none.
	Parent celParent `cel:"parent"`
}

type celParent struct {
	Receipt string `cel:"receipt"`
	Item    int64  `cel:"item"`
}

type celConsent struct {
	Jurisdiction  string    `cel:"jurisdiction"`
	Categories    []string  `cel:"categories"`
	Purposes      []string  `cel:"purposes"`
	MaxTier       int64     `cel:"max_tier"`
	Destinations  []string  `cel:"destinations"`
	RetentionDays int64     `cel:"retention_days"`
	ExpiresAt     time.Time `cel:"expires_at"`
	Method        string    `cel:"method"`
	Issuer        string    `cel:"issuer"`
	IssuedAt      time.Time `cel:"issued_at"`
}

// CEL names of the variables' object types (package alias and type name,
// as ext.NativeTypes derives them).
const (
	celTransferType = "protocol.celTransfer"
	celConsentType  = "protocol.celConsent"
)

// ruleEnv is the one CEL environment of conditions: built on first use,
// then shared (a cel.Env is safe for concurrent use).
var ruleEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[celTransfer](), reflect.TypeFor[celParent](), reflect.TypeFor[celConsent](), ext.ParseStructTags(true)),
		cel.Variable("transfer", cel.ObjectType(celTransferType)),
		cel.Variable("consent", cel.ObjectType(celConsentType)),
		cel.Variable("now", cel.TimestampType),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateComprehensionNestingLimit(maxComprehensionNesting),
			deterministicValidator{},
		),
	)
})

// deterministicValidator refuses what could make two nodes disagree:
// time-zone arguments (they load the host's time-zone database, which
// differs between hosts and versions) and a list built by iterating a map
// (CEL leaves map order unspecified). Order-insensitive macros over maps
// (all, exists, exists_one) remain.
type deterministicValidator struct{}

func (deterministicValidator) Name() string { return "entente.deterministic" }

func (deterministicValidator) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	refs := a.ReferenceMap()
	ids := make([]int64, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, o := range refs[id].OverloadIDs {
			if strings.HasSuffix(o, "_tz") { // timestamp_to_hours_with_tz...
				iss.ReportErrorAtID(id, "time-zone arguments are not allowed: times are UTC on every node")
				break
			}
		}
	}
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.ComprehensionKind)) {
		c := e.AsComprehension()
		k := a.GetType(c.IterRange().ID()).Kind()
		if (k == types.MapKind || k == types.DynKind) && a.GetType(e.ID()).Kind() != types.BoolKind {
			iss.ReportErrorAtID(e.ID(), "a map's iteration order is unspecified: only all, exists and exists_one may range over a map (or a dyn value)")
		}
	}
}

// RuleProgram is a compiled, type-checked condition, ready to evaluate.
// It is safe for concurrent use.
type RuleProgram struct {
	expr string
	prg  cel.Program
}

// Expr is the condition's source.
func (p *RuleProgram) Expr() string { return p.expr }

// CompileCondition parses and type-checks expr in the conditions'
// environment (docs/rules.md) and plans its evaluation. It fails when
// the expression does not parse, refers to an unknown variable, field or
// function, applies one to the wrong types, uses what could make nodes
// disagree, or does not return bool. The error message quotes CEL's,
// with line and column. Compiling is pure.
func CompileCondition(expr string) (*RuleProgram, error) {
	env, err := ruleEnv()
	if err != nil {
		return nil, fmt.Errorf("rule environment: %w", err)
	}
	checked, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("does not compile: %s", celIssues(iss))
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("returns %s, not bool", t)
	}
	prg, err := env.Program(checked, cel.CostLimit(RuleCostLimit))
	if err != nil {
		return nil, fmt.Errorf("does not compile: %w", err)
	}
	return &RuleProgram{expr: expr, prg: prg}, nil
}

// celIssues renders CEL's errors on one line each: "line:column: message".
func celIssues(iss *cel.Issues) string {
	var parts []string
	for _, e := range iss.Errors() {
		parts = append(parts, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
	}
	return strings.Join(parts, "; ")
}

// ErrCostLimit is wrapped by evaluation errors of a condition that went
// over RuleCostLimit.
var ErrCostLimit = errors.New("cost limit exceeded")

// Eval evaluates the condition on vars. A condition holds only when it
// returns true: an evaluation error (a missing variable, an overflow, a
// cost over RuleCostLimit...) is returned as an error, never as true.
func (p *RuleProgram) Eval(vars *RuleVars) (ok bool, err error) {
	if vars == nil {
		return false, errors.New("no variables")
	}
	defer func() {
		// cel-go recovers its own panics; this guards the adapters.
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("evaluation failed: %v", r)
		}
	}()
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
			return false, fmt.Errorf("%w (%d)", ErrCostLimit, RuleCostLimit)
		}
		return false, fmt.Errorf("evaluation failed: %v", err)
	}
	b, isBool := out.Value().(bool)
	if !isBool {
		return false, fmt.Errorf("returned %s, not bool", out.Type().TypeName())
	}
	return b, nil
}

// RuleVars are the variables of one decision's conditions, prepared once
// and shared by every condition the decision evaluates. It is a CEL
// activation: resolving a name neither allocates nor fails.
type RuleVars struct {
	transfer *celTransfer
	consent  *celConsent // nil: unbound
	now      types.Timestamp
}

// NewRuleVars prepares the variables of conditions deciding req: transfer
// (req, its at as a timestamp), consent (the consent record's body with
// its issuer and issued_at; left unbound when consent is nil or not a
// consent, so that a condition reading it fails) and now (req.At).
func NewRuleVars(req *TransferRequest, consent *Record) *RuleVars {
	issuer := ""
	if consent != nil {
		issuer = consent.Issuer().String()
	}
	return newRuleVars(req, consent, issuer)
}

// newRuleVars is NewRuleVars with the consent issuer's string form, which
// the caller may already have.
func newRuleVars(req *TransferRequest, consent *Record, issuer string) *RuleVars {
	now := time.UnixMilli(req.At).UTC()
	v := &RuleVars{
		transfer: &celTransfer{
			From:          req.From,
			To:            req.To,
			Sender:        req.Sender,
			Recipient:     req.Recipient,
			Purpose:       req.Purpose,
			Categories:    slices.Clone(req.Categories),
			Tier:          req.Tier,
			RetentionDays: req.RetentionDays,
			At:            now,
		},
		now: types.Timestamp{Time: now},
	}
	if p := req.Parent; p != nil {
		v.transfer.Parent = celParent{Receipt: p.Receipt.String(), Item: p.Item}
	}
	if consent != nil {
		if c, ok := consent.Consent(); ok {
			v.consent = &celConsent{
				Jurisdiction:  c.Jurisdiction,
				Categories:    slices.Clone(c.Categories),
				Purposes:      slices.Clone(c.Purposes),
				MaxTier:       c.MaxTier,
				Destinations:  slices.Clone(c.Destinations),
				RetentionDays: c.RetentionDays,
				ExpiresAt:     time.UnixMilli(c.ExpiresAt).UTC(),
				Method:        c.Method,
				Issuer:        issuer,
				IssuedAt:      time.UnixMilli(consent.IssuedAt()).UTC(),
			}
		}
	}
	return v
}

// ResolveName implements cel.Activation.
func (v *RuleVars) ResolveName(name string) (any, bool) {
	switch name {
	case "transfer":
		return v.transfer, true
	case "consent":
		return v.consent, v.consent != nil
	case "now":
		return v.now, true
	}
	return nil, false
}

// Parent implements cel.Activation: there is none.
func (v *RuleVars) Parent() cel.Activation { return nil }

// RuleEngine compiles rulesets' conditions and keeps the programs, so
// that decisions do not recompile them: a cache keyed by ruleset CID,
// side and condition index, holding the most recently used Capacity
// programs. It is safe for concurrent use. A nil *RuleEngine compiles on
// every call.
type RuleEngine struct {
	mu       sync.Mutex
	capacity int
	order    *list.List // of *ruleEntry, most recently used first
	entries  map[ruleKey]*list.Element
}

type ruleKey struct {
	ruleset cid.Cid
	side    Side
	index   int
}

type ruleEntry struct {
	key  ruleKey
	prog *RuleProgram
}

// NewRuleEngine returns a RuleEngine caching up to capacity programs
// (DefaultRuleCacheSize when capacity <= 0).
func NewRuleEngine(capacity int) *RuleEngine {
	if capacity <= 0 {
		capacity = DefaultRuleCacheSize
	}
	return &RuleEngine{capacity: capacity, order: list.New(), entries: map[ruleKey]*list.Element{}}
}

// Len is the number of programs held.
func (e *RuleEngine) Len() int {
	if e == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.order.Len()
}

// Program returns the compiled condition i of ruleset's side rules,
// compiling it on a cache miss.
func (e *RuleEngine) Program(ruleset *Record, side Side, i int) (*RuleProgram, error) {
	rs, ok := ruleset.Ruleset()
	if !ok {
		return nil, fmt.Errorf("%s is a %s, not a ruleset", ruleset.CID(), ruleset.Kind())
	}
	rules, ok := rs.rules(side)
	if !ok {
		return nil, fmt.Errorf("side %q is neither export nor import", side)
	}
	if i < 0 || i >= len(rules.Conditions) {
		return nil, fmt.Errorf("%s rules of %s have no condition %d", side, ruleset.CID(), i)
	}
	if e == nil {
		return CompileCondition(rules.Conditions[i].Expr)
	}
	key := ruleKey{ruleset.CID(), side, i}
	e.mu.Lock()
	if el, ok := e.entries[key]; ok {
		e.order.MoveToFront(el)
		p := el.Value.(*ruleEntry).prog
		e.mu.Unlock()
		return p, nil
	}
	e.mu.Unlock()
	// Compile outside the lock: a miss does not hold up other decisions.
	// Two concurrent misses both compile; the programs are equivalent.
	p, err := CompileCondition(rules.Conditions[i].Expr)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.entries[key]; ok {
		e.order.MoveToFront(el)
		return el.Value.(*ruleEntry).prog, nil
	}
	e.entries[key] = e.order.PushFront(&ruleEntry{key: key, prog: p})
	for e.order.Len() > e.capacity {
		last := e.order.Back()
		delete(e.entries, last.Value.(*ruleEntry).key)
		e.order.Remove(last)
	}
	return p, nil
}

// Eval evaluates condition i of ruleset's side rules on vars: true when
// the condition holds; false with an error when it cannot be compiled or
// evaluated (see RuleProgram.Eval).
func (e *RuleEngine) Eval(ruleset *Record, side Side, i int, vars *RuleVars) (bool, error) {
	p, err := e.Program(ruleset, side, i)
	if err != nil {
		return false, err
	}
	return p.Eval(vars)
}
