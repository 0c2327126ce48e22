package protocol

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestCallersMayRead tries every caller against every kind, every TLP
// level and decisions of every party: the table of DESIGN.md §8.
func TestCallersMayRead(t *testing.T) {
	ctrl, other := seedID(seedControllerDE), seedID(0x51)
	callers := map[string]Caller{
		"public":          {},
		"controller":      {Role: RoleController, Peer: ctrl},
		"other ctrl":      {Role: RoleController, Peer: other},
		"regulator DE":    {Role: RoleRegulator, Peer: seedID(0x52), Jurisdiction: "DE"},
		"regulator BR":    {Role: RoleRegulator, Peer: seedID(0x53), Jurisdiction: "BR"},
		"auditor FR":      {Role: RoleAuditor, Peer: seedID(0x54), Jurisdiction: "FR"},
		"auditor BR":      {Role: RoleAuditor, Peer: seedID(0x55), Jurisdiction: "BR"},
		"operator":        {Operator: true},
		"role, no peer":   {Role: RoleController},
		"unknown role":    {Role: RoleNode, Peer: ctrl, Jurisdiction: "DE"},
		"auditor nowhere": {Role: RoleAuditor, Peer: seedID(0x56)},
	}
	incident := func(tlp string, recipients ...string) *Record {
		b := baseIncident()
		b.TLP, b.Recipients, b.Follows = tlp, recipients, nil
		return mustSign(t, seedKey(0x52), t0, b)
	}
	decision := baseDecision() // DE → FR, sender ctrl
	blocks := map[cid.Cid]*DecisionBlock{fakeCID("decision 0"): decision}
	block := func(l Link) (*DecisionBlock, error) {
		if b, ok := blocks[l.Cid]; ok {
			return b, nil
		}
		return nil, errors.New("not held")
	}
	receipt := mustSign(t, seedKey(0x60), t0, baseReceipt()) // decision 1 is not held
	unheld := mustSign(t, seedKey(0x60), t0, NewReceipt([]cid.Cid{fakeCID("decision 1")}, Checkpoint{Size: 1, Root: sha("x")}))
	// Who may read: the callers named, everybody else not.
	for _, c := range []struct {
		name string
		rec  *Record
		who  []string
	}{
		{"consent", mustSign(t, seedKey(seedControllerDE), t0, baseConsent()),
			[]string{"controller", "other ctrl", "regulator DE", "regulator BR", "auditor FR", "auditor BR", "operator", "role, no peer", "unknown role", "auditor nowhere"}},
		{"incident clear", incident(TLPClear), []string{"public", "controller", "other ctrl", "regulator DE", "regulator BR", "auditor FR", "auditor BR", "operator", "role, no peer", "auditor nowhere"}},
		{"incident green", incident(TLPGreen), []string{"controller", "other ctrl", "regulator DE", "regulator BR", "auditor FR", "auditor BR", "operator", "role, no peer", "auditor nowhere"}},
		{"incident amber", incident(TLPAmber), []string{"controller", "regulator DE", "regulator BR", "auditor FR", "auditor BR", "operator", "auditor nowhere"}},
		{"incident amber+strict", incident(TLPAmberStrict), []string{"regulator DE", "regulator BR", "operator"}},
		{"incident red to FR from DE", incident(TLPRed, "FR"), []string{"regulator DE", "operator"}},
		{"incident red to BR", incident(TLPRed, "BR"), []string{"regulator DE", "regulator BR", "operator"}},
		{"receipt of a DE → FR decision", receipt, []string{"controller", "regulator DE", "auditor FR", "operator"}},
		{"receipt whose decision is not held", unheld, []string{"operator"}},
	} {
		for name, caller := range callers {
			want := false
			for _, w := range c.who {
				want = want || w == name
			}
			if got := MayRead(caller, c.rec, block); got != want {
				t.Errorf("%s: %s may read it: %v, want %v", c.name, name, got, want)
			}
			if want && !MayReadKind(caller, c.rec.Kind()) {
				t.Errorf("%s: %s may read it, but not its kind %s", c.name, name, c.rec.Kind())
			}
		}
	}
	// The kinds: the public reads incidents only, every other caller some
	// of each kind.
	for _, k := range Kinds {
		for name, caller := range callers {
			if got, want := MayReadKind(caller, k), name != "public" || k == KindIncident; got != want {
				t.Errorf("%s may read kind %s: %v, want %v", name, k, got, want)
			}
		}
	}
	// A decision: its parties, its jurisdictions' regulators and auditors.
	for name, want := range map[string]bool{"public": false, "controller": true, "other ctrl": false, "regulator DE": true,
		"regulator BR": false, "auditor FR": true, "auditor BR": false, "operator": true, "role, no peer": false, "unknown role": false, "auditor nowhere": false} {
		if got := MayReadDecision(callers[name], decision); got != want {
			t.Errorf("decision DE → FR: %s may read it: %v, want %v", name, got, want)
		}
	}
	recipient := decision.Request
	recipient.Sender, recipient.Recipient = other.String(), ctrl.String()
	if !MayReadDecision(callers["controller"], &DecisionBlock{Request: recipient}) {
		t.Error("the recipient may not read its decision")
	}
}

// TestCallersMayWrite: the operator anything, a controller or a regulator
// what it issues; verify with oneself as sender.
func TestCallersMayWrite(t *testing.T) {
	ctrl := seedID(seedControllerDE)
	own := mustSign(t, seedKey(seedControllerDE), t0, baseConsent())
	for _, c := range []struct {
		caller          Caller
		write, verifyIt bool
	}{
		{Caller{}, false, false},
		{Caller{Operator: true}, true, true},
		{Caller{Role: RoleController, Peer: ctrl}, true, true},
		{Caller{Role: RoleController, Peer: seedID(0x51)}, false, false},
		{Caller{Role: RoleRegulator, Peer: ctrl, Jurisdiction: "DE"}, true, false},
		{Caller{Role: RoleAuditor, Peer: ctrl, Jurisdiction: "DE"}, false, false},
	} {
		if got := MayWrite(c.caller, own); got != c.write {
			t.Errorf("%+v may write the consent: %v, want %v", c.caller, got, c.write)
		}
		if got := MayVerify(c.caller, ctrl.String()); got != c.verifyIt {
			t.Errorf("%+v may verify with sender %s: %v, want %v", c.caller, ctrl, got, c.verifyIt)
		}
	}
}
