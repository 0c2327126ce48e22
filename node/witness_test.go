package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/witness"
	"github.com/entente-net/entente/protocol"
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
	origin := protocol.CheckpointOrigin(tn.Federation.Name, m.ID())
	cp := protocol.LogCheckpoint{Origin: origin, Size: size, Root: root}
	msg, err := note.Sign(&note.Note{Text: cp.Text()}, newTestNoteSigner(t, origin, m.Key))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// grow submits k records to m and has m sign a checkpoint covering them.
func grow(t *testing.T, tn *testnet.Net, m *testnet.Member, k int) protocol.SignedCheckpoint {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	for i := 0; i < k; i++ {
		if _, err := m.Services().Ingest.SubmitRecord(ctx, freshAccreditation(t, tn, m.Jurisdiction(), "filler")); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := m.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func witnessedSize(n *node.Node, m *testnet.Member) uint64 {
	for _, w := range n.Status(false).Witnessed {
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
		if err := a.Services().Witness.Peer(ctx, b.ID()); err != nil {
			t.Fatalf("round %d: witness: %v", round, err)
		}
		if got := witnessedSize(a.Node, b); got != sc.Size {
			t.Fatalf("round %d: witnessed size %d, want %d", round, got, sc.Size)
		}
	}
	if al := a.Status(false).Alerts; len(al) != 0 {
		t.Fatalf("alerts for an honest peer: %+v", al)
	}
	if v := metricValue(t, a.Registry(), "entente_equivocations_total", nil); v != 0 {
		t.Fatalf("entente_equivocations_total = %v", v)
	}
	// The kept note carries B's signature and A's cosignature.
	msg, ok := a.Services().Witness.Note(b.ID())
	if !ok {
		t.Fatal("no witnessed note")
	}
	fed := tn.Federation.Name
	vb, _ := protocol.CheckpointVerifierKey(fed, b.ID())
	va, _ := protocol.CheckpointVerifierKey(fed, a.ID())
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
	if len(nt.Sigs) != 1 || nt.Sigs[0].Name != verB.Name() {
		t.Fatalf("cosigned note has %d verified signatures, want B's", len(nt.Sigs))
	}
	if _, _, err := protocol.VerifyCosignature(msg, fed, a.ID()); err != nil {
		t.Fatalf("A's cosignature: %v", err)
	}
	// Asking again with nothing new is a no-op.
	if err := a.Services().Witness.Peer(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
}

func TestWitnessEquivocationSameSize(t *testing.T) {
	tn := startNet(t, 3)
	a, b, c := tn.Nodes[0], tn.Nodes[1], tn.Nodes[2]
	ctx := testCtx(t, 30*time.Second)
	sc := grow(t, tn, b, 3)
	if err := a.Services().Witness.Peer(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	if got := witnessedSize(a.Node, b); got != sc.Size {
		t.Fatalf("witnessed size %d, want %d", got, sc.Size)
	}
	var other tlog.Hash
	copy(other[:], sc.Root[:])
	other[0] ^= 0xff
	forged := forgeCheckpoint(t, tn, b, sc.Size, other)
	_, err := a.Services().Witness.Observe(ctx, b.ID(), forged, nil)
	if !errors.Is(err, witness.ErrEquivocation) {
		t.Fatalf("ObserveCheckpoint of a second root for size %d: %v, want ErrEquivocation", sc.Size, err)
	}
	// Once per (peer, size).
	if _, err := a.Services().Witness.Observe(ctx, b.ID(), forged, nil); !errors.Is(err, witness.ErrEquivocation) {
		t.Fatalf("second observation: %v", err)
	}
	if v := metricValue(t, a.Registry(), "entente_equivocations_total", nil); v != 1 {
		t.Fatalf("entente_equivocations_total = %v, want 1", v)
	}
	if v := metricValue(t, a.Registry(), "entente_equivocations", nil); v != 1 {
		t.Fatalf("entente_equivocations = %v, want 1", v)
	}
	notes, ok := a.Services().Witness.Evidence(b.ID(), sc.Size)
	if !ok || len(notes) != 2 || string(notes[1]) != string(forged) {
		t.Fatalf("evidence not kept: %v", ok)
	}
	if _, err := protocol.OpenCheckpoint(notes[0], tn.Federation.Name, b.ID()); err != nil {
		t.Fatalf("first evidence note: %v", err)
	}
	// The verified state is unchanged.
	if got := witnessedSize(a.Node, b); got != sc.Size {
		t.Fatalf("witnessed size %d after equivocation, want %d", got, sc.Size)
	}
	var alert witness.Alert
	eventually(t, 10*time.Second, "the incident to be issued", func() bool {
		al := a.Status(false).Alerts
		if len(al) == 1 && al[0].Incident != "" {
			alert = al[0]
			return true
		}
		return false
	})
	if alert.PeerID != b.ID().String() || alert.Kind != witness.EquivocationSameSize || alert.Size != sc.Size {
		t.Fatalf("alert %+v", alert)
	}
	// The alert carries the evidence: both notes open as B's checkpoints,
	// of one size and the two roots it names.
	if len(alert.Notes) != 2 {
		t.Fatalf("alert with %d notes, want 2", len(alert.Notes))
	}
	for i, n := range alert.Notes {
		got, err := protocol.OpenCheckpoint([]byte(n), tn.Federation.Name, b.ID())
		if err != nil {
			t.Fatalf("alert note %d: %v", i, err)
		}
		if got.Size != alert.Sizes[i] || got.Root.String() != alert.Roots[i] {
			t.Fatalf("alert note %d is of size %d root %s; the alert says %d and %s", i, got.Size, got.Root, alert.Sizes[i], alert.Roots[i])
		}
	}
	if alert.Roots[0] == alert.Roots[1] || alert.Sizes[0] != alert.Sizes[1] {
		t.Fatalf("same-size evidence of sizes %v and roots %v", alert.Sizes, alert.Roots)
	}
	ic, err := cid.Decode(alert.Incident)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*testnet.Member{b, c} {
		if err := m.Services().Ingest.WaitRecord(ctx, ic); err != nil {
			t.Fatalf("incident did not reach %s: %v", m.ID(), err)
		}
	}
	r, err := c.Store().Get(ic)
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
	if err := a.Services().Witness.Peer(ctx, b.ID()); err != nil {
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
	if _, err := a.Services().Witness.Observe(ctx, b.ID(), forged, proof); !errors.Is(err, witness.ErrEquivocation) {
		t.Fatalf("inconsistent checkpoint: %v, want ErrEquivocation", err)
	}
	al := a.Status(false).Alerts
	if len(al) != 1 || al[0].Kind != witness.EquivocationInconsistent || al[0].Size != next.Size {
		t.Fatalf("alerts %+v", al)
	}
	// The honest checkpoint of that size, with its proof, still verifies.
	if _, err := a.Services().Witness.Observe(ctx, b.ID(), next.Note, proof); err != nil {
		t.Fatalf("the honest checkpoint: %v", err)
	}
	if got := witnessedSize(a.Node, b); got != next.Size {
		t.Fatalf("witnessed size %d, want %d", got, next.Size)
	}
	// A note not signed by B's key is refused, not an equivocation.
	forgedByA := forgeCheckpoint(t, tn, a, next.Size+1, bad)
	if _, err := a.Services().Witness.Observe(context.Background(), b.ID(), forgedByA, nil); err == nil || errors.Is(err, witness.ErrEquivocation) {
		t.Fatalf("a note of another origin: %v", err)
	}
}

func TestWitnessCosignaturesReturned(t *testing.T) {
	tn := startNet(t, 3)
	a, b, c := tn.Nodes[0], tn.Nodes[1], tn.Nodes[2]
	ctx := testCtx(t, 30*time.Second)
	fed := tn.Federation.Name
	sc := grow(t, tn, a, 2)
	for _, w := range []*testnet.Member{b, c} {
		if err := w.Services().Witness.Peer(ctx, a.ID()); err != nil {
			t.Fatalf("%s witnessing A: %v", w.ID(), err)
		}
	}
	resp := newAPIClient(t, a).get("/v1/log/checkpoint", "")
	if resp.status != http.StatusOK {
		t.Fatalf("checkpoint: %d %s", resp.status, resp.body)
	}
	got, err := protocol.OpenCheckpoint(resp.body, fed, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != sc.Size || got.Root != sc.Root {
		t.Fatalf("checkpoint %d %s, want %d %s", got.Size, got.Root, sc.Size, sc.Root)
	}
	for _, w := range []*testnet.Member{b, c} {
		if _, _, err := protocol.VerifyCosignature(resp.body, fed, w.ID()); err != nil {
			t.Fatalf("cosignature of %s: %v", w.ID(), err)
		}
	}
	if n := strings.Count(string(resp.body), "\n— "); n != 3 {
		t.Fatalf("%d signature lines, want 3:\n%s", n, resp.body)
	}
	// Witnessing again keeps one cosignature per witness.
	if err := b.Services().Witness.Peer(ctx, a.ID()); err != nil {
		t.Fatal(err)
	}
	latest, err := a.Services().Checkpoints.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(latest.Note), "\n— "); n != 3 {
		t.Fatalf("%d signature lines after a second round, want 3", n)
	}
	// A cosignature in C's name with another key is refused, not kept.
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := sc.LogCheckpoint.Text()
	ts := uint64(time.Now().Unix())
	name := protocol.CheckpointOrigin(fed, c.ID())
	h := sha256.Sum256(append([]byte(name+"\n\x04"), c.ID()[len(c.ID())-32:]...))
	sig := append(h[:4:4], binary.BigEndian.AppendUint64(nil, ts)...)
	sig = append(sig, ed25519.Sign(other, []byte("cosignature/v1\ntime "+strconv.FormatUint(ts, 10)+"\n"+body))...)
	forged := append(append([]byte{}, sc.Note...), "— "+name+" "+base64.StdEncoding.EncodeToString(sig)+"\n"...)
	if _, _, err := protocol.VerifyCosignature(forged, fed, c.ID()); err == nil {
		t.Fatal("VerifyCosignature accepted a forged cosignature")
	}
	if err := c.Services().Witness.SendCosignature(ctx, a.ID(), forged); !errors.Is(err, protocol.ErrBadCosignature) {
		t.Fatalf("forged cosignature: %v, want ErrBadCosignature", err)
	}
	after, err := a.Services().Checkpoints.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if string(after.Note) != string(latest.Note) {
		t.Fatalf("a refused cosignature changed the note:\n%s", after.Note)
	}
}

// TestBundleCarriesCosignatures: once a witness has cosigned the
// checkpoint that covers a receipt, the receipt's bundle carries that
// cosignature, and the bundle still checks.
func TestBundleCarriesCosignatures(t *testing.T) {
	tn := startNet(t, 2)
	a, b := tn.Nodes[0], tn.Nodes[1]
	ctx := testCtx(t, 30*time.Second)
	fed := tn.Federation.Name
	unknown := freshAccreditation(t, tn, "DE", "never submitted")
	v, err := a.Services().Verify.Verify(ctx, protocol.TransferRequest{Consent: protocol.LinkTo(unknown.CID()), From: "DE", To: "DE",
		Sender: b.ID().String(), Recipient: b.ID().String(), Purpose: "research", Categories: []string{"face"}, Tier: 0, RetentionDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Services().Checkpoints.Sign(); err != nil {
		t.Fatal(err)
	}
	if err := b.Services().Witness.Peer(ctx, a.ID()); err != nil {
		t.Fatal(err)
	}
	bundle, err := a.Services().Verify.Bundle(v.Receipt.CID(), v.Item)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := protocol.DecodeBundleManifest(bundle.Blocks[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := protocol.VerifyCosignature(manifest.Checkpoint, fed, b.ID()); err != nil {
		t.Fatalf("the bundle's checkpoint carries no cosignature of the witness: %v\n%s", err, manifest.Checkpoint)
	}
	car, err := bundle.MarshalCAR()
	if err != nil {
		t.Fatal(err)
	}
	if rep := protocol.CheckBundleCAR(car, protocol.NewBundleTrust(tn.Federation.Name, tn.Federation.Authorities(), tn.Federation.FoundingNodes())); !rep.OK() {
		t.Fatalf("the cosigned bundle does not check: %v", rep.Err())
	}
}
