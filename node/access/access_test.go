package access

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

type trust struct {
	*protocol.RecordView
	codes []string
}

func (t trust) Jurisdictions() []string { return t.codes }

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, err := config.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

// TestResolve: the operator, the public, granted callers whose
// accreditation is live (a regulator of the node's jurisdiction, a
// controller of any), those whose is not (forbidden, named), unknown
// tokens; and the file applied again when it changes, or refused whole
// when it no longer loads.
func TestResolve(t *testing.T) {
	now := time.Now()
	authDE, authDEID := newKey(t)
	authFR, authFRID := newKey(t)
	_, reg := newKey(t)
	_, ctrlFR := newKey(t)
	_, regFR := newKey(t)
	accredit := func(auth crypto.PrivKey, subject peer.ID, j string, role protocol.Role) *protocol.Record {
		r, err := protocol.Sign(auth, now.Add(-time.Hour).UnixMilli(), &protocol.Accreditation{Subject: subject.String(), Jurisdiction: j,
			Roles: []protocol.Role{role}, Name: "x", ValidFrom: now.Add(-time.Hour).UnixMilli(), ValidUntil: now.Add(time.Hour).UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	view := protocol.NewRecordView(protocol.StaticAnchors{Authorities: map[string]peer.ID{"DE": authDEID, "FR": authFRID}},
		[]*protocol.Record{accredit(authDE, reg, "DE", protocol.RoleRegulator), accredit(authFR, ctrlFR, "FR", protocol.RoleController),
			accredit(authFR, regFR, "FR", protocol.RoleRegulator)})
	path := filepath.Join(t.TempDir(), config.AccessFile)
	a := &config.Access{}
	grant := func(name, role string, id peer.ID) string {
		tok, err := a.Add(name, role, id, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Write(path); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	regTok := grant("de-desk", "regulator", reg)
	ctrlTok := grant("fr-platform", "controller", ctrlFR)
	frTok := grant("fr-desk", "regulator", regFR)
	s, err := New(Config{Path: path, OperatorToken: "operator-secret", Trust: trust{view, []string{"DE", "FR"}}, Jurisdiction: "DE", Reload: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer s.Close() // idempotent

	for token, want := range map[string]service.Identity{
		"":                Public,
		"operator-secret": Operator,
		regTok:            {Name: "de-desk", Caller: protocol.Caller{Role: protocol.RoleRegulator, Peer: reg, Jurisdiction: "DE"}},
		ctrlTok:           {Name: "fr-platform", Caller: protocol.Caller{Role: protocol.RoleController, Peer: ctrlFR}},
	} {
		if got, err := s.Resolve(token); err != nil || got != want {
			t.Errorf("Resolve(%.8q) = %+v, %v; want %+v", token, got, err, want)
		}
	}
	// An FR regulator is no regulator of a DE node.
	if got, err := s.Resolve(frTok); !errors.Is(err, service.ErrForbidden) || got.Name != "fr-desk" || got.Caller != (protocol.Caller{}) {
		t.Errorf("the FR regulator on the DE node: %+v, %v", got, err)
	}
	for _, bad := range []string{"operator-secretx", regTok + "x", config.TokenSHA256(regTok)} {
		if _, err := s.Resolve(bad); !errors.Is(err, service.ErrUnauthorized) {
			t.Errorf("Resolve(%.12q): %v, want unauthorized", bad, err)
		}
	}
	// A new grant works from its first use, without waiting for the
	// reload (see TestNewGrantAtOnce for a service that never reloads).
	// A revocation written to the file applies within the reload period.
	if err := a.Remove("de-desk"); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(path); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { _, err := s.Resolve(regTok); return errors.Is(err, service.ErrUnauthorized) })
	// A file that does not load grants no one; the operator still works.
	if err := os.WriteFile(path, []byte("[[caller"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { _, err := s.Resolve(ctrlTok); return errors.Is(err, service.ErrUnauthorized) })
	if id, err := s.Resolve("operator-secret"); err != nil || id != Operator {
		t.Errorf("the operator with a broken access file: %+v, %v", id, err)
	}
	// A node refuses to start on a file that does not load.
	if _, err := New(Config{Path: path, OperatorToken: "x", Trust: trust{view, nil}, Jurisdiction: "DE"}); err == nil {
		t.Error("New accepted a broken access file")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond) // polling the service's reload, which has no event
	}
}

// TestNewGrantAtOnce: a token granted after the service loaded the file
// is known at its first use, though the periodic reload has not run; an
// unknown token with the file unchanged stays unauthorized.
func TestNewGrantAtOnce(t *testing.T) {
	now := time.Now()
	auth, authID := newKey(t)
	_, reg := newKey(t)
	acc, err := protocol.Sign(auth, now.Add(-time.Hour).UnixMilli(), &protocol.Accreditation{Subject: reg.String(), Jurisdiction: "DE",
		Roles: []protocol.Role{protocol.RoleRegulator}, Name: "x", ValidFrom: now.Add(-time.Hour).UnixMilli(), ValidUntil: now.Add(time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	view := protocol.NewRecordView(protocol.StaticAnchors{Authorities: map[string]peer.ID{"DE": authID}}, []*protocol.Record{acc})
	path := filepath.Join(t.TempDir(), config.AccessFile)
	s, err := New(Config{Path: path, OperatorToken: "operator-secret", Trust: trust{view, []string{"DE"}}, Jurisdiction: "DE", Reload: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := &config.Access{}
	tok, err := a.Add("de-desk", "regulator", reg, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(tok); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("before the grant is written: %v", err)
	}
	if err := a.Write(path); err != nil {
		t.Fatal(err)
	}
	want := service.Identity{Name: "de-desk", Caller: protocol.Caller{Role: protocol.RoleRegulator, Peer: reg, Jurisdiction: "DE"}}
	if got, err := s.Resolve(tok); err != nil || got != want {
		t.Fatalf("right after the grant: %+v, %v; want %+v", got, err, want)
	}
	if s.reload() {
		t.Error("an unchanged file was loaded again")
	}
	if _, err := s.Resolve(tok + "x"); !errors.Is(err, service.ErrUnauthorized) {
		t.Errorf("an unknown token: %v", err)
	}
}
