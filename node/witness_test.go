package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/testnet"
)

// testNoteSigner signs notes with a member's key, as the member's
// checkpoints are signed: the test plays an equivocating node.
type testNoteSigner struct {
	name string
	key  ed25519.PrivateKey
}

func newTestNoteSigner(t *testing.T, name string, k crypto.PrivKey) *testNoteSigner {
	t.Helper()
	raw, err := k.Raw()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == ed25519.SeedSize {
		raw = ed25519.NewKeyFromSeed(raw)
	}
	return &testNoteSigner{name: name, key: ed25519.PrivateKey(raw)}
}

func (s *testNoteSigner) Name() string { return s.name }
func (s *testNoteSigner) KeyHash() uint32 {
	h := sha256.New()
	h.Write([]byte(s.name))
	h.Write([]byte{'\n', 1})
	h.Write(s.key.Public().(ed25519.PublicKey))
	return binary.BigEndian.Uint32(h.Sum(nil))
}
func (s *testNoteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// forgeCheckpoint signs a checkpoint of m's origin with m's key.
func forgeCheckpoint(t *testing.T, tn *testnet.Net, m *testnet.Member, size uint64, root tlog.Hash) []byte {
	t.Helper()
	origin := node.CheckpointOrigin(tn.Federation.Name, m.ID())
	cp := node.Checkpoint{Origin: origin, Size: size, Root: root}
	msg, err := note.Sign(&note.Note{Text: cp.Text()}, newTestNoteSigner(t, origin, m.Key))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// grow submits k records to m and has m sign a checkpoint covering them.
func grow(t *testing.T, tn *testnet.Net, m *testnet.Member, k int) node.SignedCheckpoint {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	for i := 0; i < k; i++ {
		if _, err := m.SubmitRecord(ctx, freshAccreditation(t, tn, m.Jurisdiction(), "filler")); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := m.SignCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func witnessedSize(n *node.Node, m *testnet.Member) uint64 {
	for _, w := range n.Status().Witnessed {
		if w.PeerID == m.ID().String() {
			return w.Size
		}
	}
	return 0
}

func TestWitnessGrowingLogNoAlert(t *testing.T) {
	tn := startNet(t, 2)
	a, b := tn.Nodes[0], tn.Nodes[1]
	ctx := testCtx(t, 30*time.Second)
	for round := 0; round < 3; round++ {
		sc := grow(t, tn, b, 2)
		if err := a.WitnessPeer(ctx, b.ID()); err != nil {
			t.Fatalf("round %d: witness: %v", round, err)
		}
		if got := witnessedSize(a.Node, b); got != sc.Size {
			t.Fatalf("round %d: witnessed size %d, want %d", round, got, sc.Size)
		}
	}
	if al := a.Status().Alerts; len(al) != 0 {
		t.Fatalf("alerts for an honest peer: %+v", al)
	}
	if v := metricValue(t, a.Registry(), "entente_equivocations_total", nil); v != 0 {
		t.Fatalf("entente_equivocations_total = %v", v)
	}
	// The kept note carries B's signature and A's cosignature.
	msg, ok := a.WitnessedNote(b.ID())
	if !ok {
		t.Fatal("no witnessed note")
	}
	fed := tn.Federation.Name
	vb, _ := node.CheckpointVerifierKey(fed, b.ID())
	va, _ := node.CheckpointVerifierKey(fed, a.ID())
	verB, err := note.NewVerifier(vb)
	if err != nil {
		t.Fatal(err)
	}
	verA, err := note.NewVerifier(va)
	if err != nil {
		t.Fatal(err)
	}
	nt, err := note.Open(msg, note.VerifierList(verB, verA))
	if err != nil {
		t.Fatal(err)
	}
	if len(nt.Sigs) != 2 {
		t.Fatalf("cosigned note has %d verified signatures, want 2", len(nt.Sigs))
	}
	// Asking again with nothing new is a no-op.
	if err := a.WitnessPeer(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
}

func TestWitnessEquivocationSameSize(t *testing.T) {
	tn := startNet(t, 3)
	a, b, c := tn.Nodes[0], tn.Nodes[1], tn.Nodes[2]
	ctx := testCtx(t, 30*time.Second)
	sc := grow(t, tn, b, 3)
	if err := a.WitnessPeer(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	if got := witnessedSize(a.Node, b); got != sc.Size {
		t.Fatalf("witnessed size %d, want %d", got, sc.Size)
	}
	var other tlog.Hash
	copy(other[:], sc.Root[:])
	other[0] ^= 0xff
	forged := forgeCheckpoint(t, tn, b, sc.Size, other)
	_, err := a.ObserveCheckpoint(ctx, b.ID(), forged, nil)
	if !errors.Is(err, node.ErrEquivocation) {
		t.Fatalf("ObserveCheckpoint of a second root for size %d: %v, want ErrEquivocation", sc.Size, err)
	}
	// Once per (peer, size).
	if _, err := a.ObserveCheckpoint(ctx, b.ID(), forged, nil); !errors.Is(err, node.ErrEquivocation) {
		t.Fatalf("second observation: %v", err)
	}
	if v := metricValue(t, a.Registry(), "entente_equivocations_total", nil); v != 1 {
		t.Fatalf("entente_equivocations_total = %v, want 1", v)
	}
	if v := metricValue(t, a.Registry(), "entente_equivocations", nil); v != 1 {
		t.Fatalf("entente_equivocations = %v, want 1", v)
	}
	notes, ok := a.EquivocationEvidence(b.ID(), sc.Size)
	if !ok || len(notes) != 2 || string(notes[1]) != string(forged) {
		t.Fatalf("evidence not kept: %v", ok)
	}
	if _, err := node.OpenCheckpoint(notes[0], tn.Federation.Name, b.ID()); err != nil {
		t.Fatalf("first evidence note: %v", err)
	}
	// The verified state is unchanged.
	if got := witnessedSize(a.Node, b); got != sc.Size {
		t.Fatalf("witnessed size %d after equivocation, want %d", got, sc.Size)
	}
	var alert node.WitnessAlert
	eventually(t, 10*time.Second, "the incident to be issued", func() bool {
		al := a.Status().Alerts
		if len(al) == 1 && al[0].Incident != "" {
			alert = al[0]
			return true
		}
		return false
	})
	if alert.PeerID != b.ID().String() || alert.Kind != node.EquivocationSameSize || alert.Size != sc.Size {
		t.Fatalf("alert %+v", alert)
	}
	ic, err := cid.Decode(alert.Incident)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*testnet.Member{b, c} {
		if err := m.WaitRecord(ctx, ic); err != nil {
			t.Fatalf("incident did not reach %s: %v", m.ID(), err)
		}
	}
	r, err := c.Get(ic)
	if err != nil {
		t.Fatal(err)
	}
	inc, ok := r.Incident()
	if !ok {
		t.Fatalf("record %s is a %s", ic, r.Kind())
	}
	if r.Issuer() != a.ID() || len(inc.Affected) != 1 || inc.Affected[0] != b.ID().String() ||
		inc.Categories[0] != "equivocation" || inc.Jurisdiction != a.Jurisdiction() ||
		!strings.Contains(inc.Summary, sc.Root.String()) || !strings.Contains(inc.Summary, other.String()) {
		t.Fatalf("incident %+v by %s", inc, r.Issuer())
	}
}

func TestWitnessEquivocationInconsistent(t *testing.T) {
	tn := startNet(t, 2)
	a, b := tn.Nodes[0], tn.Nodes[1]
	ctx := testCtx(t, 30*time.Second)
	sc := grow(t, tn, b, 2)
	if err := a.WitnessPeer(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	// A newer tree that does not extend the verified one: a real proof
	// from the verified size to a grown tree, but a root that is not it.
	next := grow(t, tn, b, 2)
	proof, err := b.Store().ConsistencyProof(sc.Size, next.Size)
	if err != nil {
		t.Fatal(err)
	}
	var bad tlog.Hash
	copy(bad[:], next.Root[:])
	bad[31] ^= 1
	forged := forgeCheckpoint(t, tn, b, next.Size, bad)
	if _, err := a.ObserveCheckpoint(ctx, b.ID(), forged, proof); !errors.Is(err, node.ErrEquivocation) {
		t.Fatalf("inconsistent checkpoint: %v, want ErrEquivocation", err)
	}
	al := a.Status().Alerts
	if len(al) != 1 || al[0].Kind != node.EquivocationInconsistent || al[0].Size != next.Size {
		t.Fatalf("alerts %+v", al)
	}
	// The honest checkpoint of that size, with its proof, still verifies.
	if _, err := a.ObserveCheckpoint(ctx, b.ID(), next.Note, proof); err != nil {
		t.Fatalf("the honest checkpoint: %v", err)
	}
	if got := witnessedSize(a.Node, b); got != next.Size {
		t.Fatalf("witnessed size %d, want %d", got, next.Size)
	}
	// A note not signed by B's key is refused, not an equivocation.
	forgedByA := forgeCheckpoint(t, tn, a, next.Size+1, bad)
	if _, err := a.ObserveCheckpoint(context.Background(), b.ID(), forgedByA, nil); err == nil || errors.Is(err, node.ErrEquivocation) {
		t.Fatalf("a note of another origin: %v", err)
	}
}
